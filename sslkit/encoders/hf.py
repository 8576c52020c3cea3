"""A Hugging Face ``transformers`` model as an sslkit encoder (optional extra ``hf``).

``encoder: {name: hf, model: FOLDER}`` loads a model saved with ``save_pretrained`` together with its
tokenizer, which then tokenizes the run's text (the class declares it through ``data_tokenizer``, which
``sslkit.runner.build_data`` consults). ``config: {model_type: bert, ...}`` builds one with random weights
instead, tokenized by the data's own tokenizer (or by ``tokenizer: FOLDER``).

The model is loaded with its language-model head when it has one (``...ForMaskedLM``, ``...ForCausalLM``,
chosen from ``config.architectures``); LM objectives then train that head (capability ``LM_HEAD``) rather
than adding their own. A causal model also decodes with its key/value cache (capability ``KV_CACHE``).
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Literal, Optional

import torch
from torch import nn

from ..data import DataInfo
from ..errors import ConfigError
from ..schema import Range
from ..registry import register
from ..text.hf_tokenizer import HFTokenizer, check_source, require_transformers
from .base import Encoder
from .pooling import pool

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def _model_class(transformers, cfg):
    """``AutoModelForMaskedLM``, ``AutoModelForCausalLM`` or ``AutoModel`` for a config: from the saved
    ``architectures`` when there are any, else from what the model type supports."""
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    arch = (getattr(cfg, "architectures", None) or [""])[0]
    if arch.endswith(("ForMaskedLM", "ForPreTraining")):
        return transformers.AutoModelForMaskedLM
    if arch.endswith(("ForCausalLM", "LMHeadModel")):
        return transformers.AutoModelForCausalLM
    if arch:
        return transformers.AutoModel
    if cfg.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(cfg, "is_decoder", False):
        return transformers.AutoModelForMaskedLM
    if cfg.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return transformers.AutoModelForCausalLM
    return transformers.AutoModel


def _is_causal(cfg) -> bool:
    """Whether position ``t`` sees only positions ``<= t``: decoders, and model types without a masked-LM form."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return bool(getattr(cfg, "is_decoder", False)) or cfg.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def _positions(cfg) -> Optional[int]:
    return getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)


@register("encoders", "hf")
class HFEncoder(Encoder):
    """A ``transformers`` model over token ids: ``forward_tokens`` gives its last hidden states, ``forward``
    pools them (``cls`` first token, ``mean`` over real tokens, ``last`` real token).

    model: a folder saved with ``save_pretrained`` (loaded with ``local_files_only``), or a Hub name when
    ``allow_download`` is true. config: instead, ``{model_type: ..., **keys}`` of a model built with random
    weights (``vocab_size`` defaults to the tokenizer's). tokenizer: a folder holding the tokenizer when it
    is not the model's (default: ``model``'s; with ``config`` and no tokenizer, the data's own).
    pooling: ``cls``/``mean``/``last`` (default: ``last`` for causal models, ``cls`` otherwise).
    freeze: train nothing of the model (only the objectives' heads). lr_decay: layer-wise learning-rate
    decay: block ``i`` of ``L`` trains at ``lr * lr_decay ** (L - i)``, the embeddings at
    ``lr * lr_decay ** (L + 1)``, the final norm and heads at ``lr`` (ELECTRA). gradient_checkpointing:
    recompute activations in the backward pass to save memory. allow_download: allow Hub names.
    """

    pad_id: int
    max_length: int
    causal: bool
    has_lm_head: bool

    def __init__(self, info: DataInfo, *, model: Optional[str] = None, config: Optional[dict] = None,
                 tokenizer: Optional[str] = None, pooling: Optional[Literal["cls", "mean", "last"]] = None,
                 freeze: bool = False, lr_decay: Optional[Annotated[float, Range(0, 1, min_open=True)]] = None, gradient_checkpointing: bool = False,
                 allow_download: bool = False):
        super().__init__()
        transformers = require_transformers("encoder.name")
        if (model is None) == (config is None):
            raise ConfigError("encoder.model", "give exactly one of model (a folder saved with save_pretrained) "
                                               "and config (a model with random weights)")
        if info.modality != "text" or info.tokenizer is None:
            raise ConfigError("encoder.name", f"'hf' takes text data, not {info.modality}")
        tok = info.tokenizer
        self.model = (self._load(transformers, model, allow_download) if model is not None
                      else self._from_config(transformers, config, tok))
        cfg = self.model.config
        self.causal = _is_causal(cfg)
        self.pooling = pooling or ("last" if self.causal else "cls")
        self.pad_id = tok.pad_id
        self.out_dim = cfg.hidden_size
        self.max_length = self._max_length(cfg, tok)
        self.lr_decay = lr_decay
        # transformers 5.2x renamed past_key_values to cache
        self._cache_arg = "cache" if "cache" in inspect.signature(self.backbone.forward).parameters else "past_key_values"
        self._export_tokenizer = tok.hf_tokenizer if isinstance(tok, HFTokenizer) else None
        heads = [n for n, m in self.model.named_children()
                 if m is not self.model.base_model and any(True for _ in m.parameters())]
        # the LM head is whatever the LM model adds to its base model, when that is one module
        self._head_name = heads[0] if self.model is not self.model.base_model and len(heads) == 1 else None
        self.has_lm_head = self._head_name is not None
        rows = self.token_embedding().num_embeddings
        if tok.vocab_size > rows:
            where = "encoder.tokenizer" if tokenizer else ("encoder.model" if model else "encoder.config.vocab_size")
            raise ConfigError(where, f"the tokenizer has {tok.vocab_size} ids but the model's embedding has {rows} "
                                     f"rows; use the tokenizer the model was trained with")
        if info.input_shape[0] > self.max_length:
            raise ConfigError("data.max_length", f"rows of {info.input_shape[0]} ids exceed the model's "
                                                 f"{self.max_length} positions; set data.max_length <= {self.max_length}")
        if gradient_checkpointing:
            if hasattr(self.model, "activation_checkpointing_enable"):  # its name from transformers 5.2x
                self.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if freeze:
            self.model.requires_grad_(False)

    # ------------------------------------------------------------------ building
    @classmethod
    def data_tokenizer(cls, params: dict) -> Optional[dict]:
        """The model's own tokenizer (``tokenizer`` or ``model`` folder); None for a ``config`` model
        without ``tokenizer`` (the data's tokenizer sizes it)."""
        key = "tokenizer" if params.get("tokenizer") else "model"
        source = params.get(key)
        if source is None:
            return None
        check_source(source, bool(params.get("allow_download", False)), f"encoder.{key}")  # the user's key
        return {"name": "hf", "model": source, "allow_download": bool(params.get("allow_download", False))}

    @staticmethod
    def _load(transformers, source: str, allow_download: bool):
        kwargs = check_source(source, allow_download, "encoder.model")
        try:
            cfg = transformers.AutoConfig.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as exc:
            raise ConfigError("encoder.model", f"{source} holds no model config: {' '.join(str(exc).split())[:300]}") \
                from None
        if Path(source).is_dir() and not any((Path(source) / f).is_file() for f in WEIGHT_FILES):
            raise ConfigError("encoder.model", f"{source} has a config.json but no weights ({', '.join(WEIGHT_FILES[::2])}); "
                                               f"write the folder with save_pretrained, or use config: for random weights")
        transformers.utils.logging.disable_progress_bar()  # sslkit prints its own progress
        try:
            return _model_class(transformers, cfg).from_pretrained(source, config=cfg, **kwargs)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError("encoder.model", f"cannot load {source}: {' '.join(str(exc).split())[:300]}") from None

    @staticmethod
    def _from_config(transformers, config: dict, tok):
        config = dict(config)
        model_type = config.pop("model_type", None)
        if not model_type:
            raise ConfigError("encoder.config.model_type", "required: the transformers model type (bert, gpt2, llama, ...)")
        config.setdefault("vocab_size", tok.vocab_size)
        for key, value in (("pad_token_id", tok.pad_id), ("bos_token_id", tok.cls_id), ("eos_token_id", tok.sep_id)):
            config.setdefault(key, value)
        try:
            cfg = transformers.AutoConfig.for_model(model_type, **config)
        except (ValueError, TypeError) as exc:
            raise ConfigError("encoder.config", f"{' '.join(str(exc).split())[:300]}") from None
        return _model_class(transformers, cfg).from_config(cfg)

    @staticmethod
    def _max_length(cfg, tok) -> int:
        limits = [n for n in (_positions(cfg),) if n]
        if isinstance(tok, HFTokenizer) and tok.hf_tokenizer.model_max_length < 10**6:  # "no limit" is ~1e30
            limits.append(int(tok.hf_tokenizer.model_max_length))
        return min(limits) if limits else 10**9  # rotary models without a stated limit

    # ------------------------------------------------------------------ the encoder interface
    @property
    def backbone(self) -> nn.Module:
        """The model without its LM head (``BertModel``, ``GPT2Model``, ``LlamaModel`` ...)."""
        return self.model.base_model

    def token_embedding(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    def _check_length(self, T: int):
        if T > self.max_length:
            raise ValueError(f"sequence of {T} tokens exceeds the model's {self.max_length} positions")

    def forward_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        self._check_length(ids.shape[1])
        # right padding: a causal model's real tokens never see a later pad, so it needs no mask
        mask = None if self.causal else (ids != self.pad_id).long()
        return self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state

    def forward_tokens_cached(self, ids: torch.Tensor, cache=None) -> tuple:
        """States of ``ids`` after the tokens in ``cache`` (the model's own ``past_key_values``)."""
        self._check_length(ids.shape[1] + (cache.get_seq_length() if cache is not None else 0))
        out = self.backbone(input_ids=ids, use_cache=True, **{self._cache_arg: cache})
        return out.last_hidden_state, out[self._cache_arg]

    def lm_logits(self, h: torch.Tensor) -> torch.Tensor:
        if self._head_name is None:
            raise RuntimeError("this model was loaded without a language-model head")
        return getattr(self.model, self._head_name)(h)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return pool(self.forward_tokens(ids), ids != self.pad_id, self.pooling)

    def parameter_groups(self) -> list:
        """``[(parameters, lr_scale)]`` of layer-wise decay (empty without ``lr_decay``): see the class doc."""
        if self.lr_decay is None or self.lr_decay == 1:
            return []
        blocks = self._blocks()
        L = len(blocks)
        depth = {id(p): i + 1 for i, block in enumerate(blocks) for p in block.parameters()}
        groups, seen_block = {}, False
        for p in self.model.parameters():  # registration order: embeddings, blocks, then the top
            if id(p) in depth:
                seen_block, layer = True, depth[id(p)]
            else:
                layer = L + 1 if seen_block else 0
            groups.setdefault(layer, []).append(p)
        return [(params, self.lr_decay ** (L + 1 - layer)) for layer, params in sorted(groups.items(), reverse=True)]

    def _blocks(self) -> nn.ModuleList:
        n = self.model.config.num_hidden_layers
        for module in self.backbone.modules():
            if isinstance(module, nn.ModuleList) and len(module) == n:
                return module
        raise ConfigError("encoder.lr_decay", f"cannot find the {n} layers of {type(self.backbone).__name__}")

    def export(self, directory) -> None:
        """``save_pretrained`` of the model (with its LM head) and of its tokenizer when it has one."""
        self.model.save_pretrained(directory)
        tok = getattr(self, "_export_tokenizer", None)
        if tok is not None:
            tok.save_pretrained(directory)

    def load_export(self, directory) -> None:
        """Take the weights of a ``save_pretrained`` folder (``sslkit export`` of an ``hf`` encoder)."""
        try:
            other = type(self.model).from_pretrained(directory, local_files_only=True)
            self.model.load_state_dict(other.state_dict())
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError("encoder.init_from", f"{directory} does not hold weights for this model: "
                                                   f"{' '.join(str(exc).split())[:300]}") from None
