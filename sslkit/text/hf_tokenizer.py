"""The tokenizer saved with a Hugging Face model, behind sslkit's :class:`~sslkit.text.tokenizers.Tokenizer`
interface, so every text dataset, view and objective uses the model's own ids.

Special ids: sslkit's five roles map to the tokenizer's own tokens. BERT-style tokenizers have all of
them. GPT-2/Llama-style ones have only ``bos``/``eos`` (and maybe ``unk``): ``cls`` is ``bos``, ``sep`` is
``eos``, ``pad`` is ``eos`` when there is no pad token (as TRL does), ``mask`` is ``unk`` (else ``eos``).
Rows are always right-padded whatever the tokenizer's ``padding_side``: sslkit's layouts (``prompt_len``,
pooling, causal sampling) assume it, and right padding needs no attention mask in a causal model.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConfigError
from ..registry import register
from .masking import BOUNDARY, CONTINUE, START
from .tokenizers import Tokenizer

HF_EXTRA = "pip install 'sslkit[hf]' (transformers, tokenizers, safetensors)"


def require_transformers(path: str):
    """The ``transformers`` module, or a ConfigError at ``path`` saying how to install it."""
    try:
        import transformers
    except ImportError:
        raise ConfigError(path, f"needs the optional Hugging Face packages: {HF_EXTRA}") from None
    return transformers


def check_source(source: str, allow_download: bool, path: str) -> dict:
    """``from_pretrained`` keyword arguments for ``source``: a local folder (``local_files_only``), or a Hub
    name, which is tried only when ``allow_download`` (sslkit never downloads unasked)."""
    if Path(source).is_dir():
        return {"local_files_only": True}
    if allow_download:
        return {}
    raise ConfigError(path, f"folder not found: {source} (a Hugging Face Hub name is downloaded only with "
                            f"allow_download: true)")


def load_hf_tokenizer(source: str, allow_download: bool = False, path: str = "data.tokenizer.model"):
    """``AutoTokenizer.from_pretrained(source)`` with clear errors."""
    transformers = require_transformers(path)
    kwargs = check_source(source, allow_download, path)
    try:
        return transformers.AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(path, f"cannot load a tokenizer from {source}: {' '.join(str(exc).split())[:300]}") from None


def _first(*ids):
    return next((i for i in ids if i is not None), None)


@register("tokenizers", "hf")
class HFTokenizer(Tokenizer):
    """A Hugging Face tokenizer (``AutoTokenizer``) loaded from ``model``, a folder saved with
    ``save_pretrained`` (a Hub name only with ``allow_download: true``). It is not fitted on the corpus.
    Texts get the tokenizer's own special tokens (BERT: ``[CLS] text [SEP]``; GPT-2: none; Llama: ``<s>``),
    are truncated to the row length and right-padded. An ``hf`` encoder sets this tokenizer itself.

    model: folder (or Hub name) holding the tokenizer. allow_download: allow fetching a Hub name.
    """

    name = "hf"

    def __init__(self, texts=(), *, model: str, allow_download: bool = False):
        tok = load_hf_tokenizer(model, allow_download)
        self._tok = tok
        eos = _first(tok.eos_token_id, tok.sep_token_id)
        self.cls_id = _first(tok.cls_token_id, tok.bos_token_id, eos)
        self.sep_id = _first(tok.sep_token_id, eos, self.cls_id)
        if self.cls_id is None:
            raise ConfigError("data.tokenizer.model", f"the tokenizer of {model} has none of cls, bos, sep or eos "
                                                      f"tokens; sslkit needs one to mark the ends of a text")
        self.pad_id = _first(tok.pad_token_id, self.sep_id)  # pad = eos without a pad token, as TRL does
        self.unk_id = _first(tok.unk_token_id, self.pad_id)
        self.mask_id = _first(tok.mask_token_id, self.unk_id)
        self.vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
        self.has_pad_token = tok.pad_token_id is not None

    @property
    def hf_tokenizer(self):
        """The wrapped ``transformers`` tokenizer (what ``save_pretrained`` writes on export)."""
        return self._tok

    @property
    def special_ids(self) -> tuple:
        own = {self.pad_id, self.cls_id, self.sep_id, self.unk_id, self.mask_id}
        return tuple(sorted(own | set(self._tok.all_special_ids)))

    def encode(self, text: str, add_special: bool = True) -> list:
        return self._tok(text, add_special_tokens=add_special)["input_ids"]

    def decode(self, ids) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=True)

    def encode_batch(self, texts, max_length: int) -> torch.Tensor:
        """``[N, max_length]`` ids with the tokenizer's special tokens, truncated and right-padded."""
        ids = self._tok(list(texts), add_special_tokens=True, truncation=True, max_length=max_length)["input_ids"]
        out = torch.full((len(ids), max_length), self.pad_id, dtype=torch.long)
        for i, row in enumerate(ids):
            out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        return out

    def token_kinds(self) -> torch.Tensor:
        """Word boundaries from the token strings: WordPiece marks continuations with ``##``; byte-level BPE
        (``Ġ``) and SentencePiece (``▁``) mark word starts (see :func:`sslkit.text.masking.token_kinds`)."""
        wordpiece = any(t.startswith("##") for t in self.vocab)
        kinds = torch.full((len(self.vocab),), CONTINUE, dtype=torch.long)
        for i, t in enumerate(self.vocab):
            if wordpiece:
                kinds[i] = CONTINUE if t.startswith("##") else START
            elif t[:1] in ("Ġ", "▁", "Ċ", "ĉ"):
                kinds[i] = BOUNDARY if set(t) <= {"Ġ", "▁", "Ċ", "ĉ"} else START
        kinds[list(self.special_ids)] = BOUNDARY
        return kinds

    def state(self) -> dict:
        return {"name": self.name, "vocab": list(self.vocab), "specials": [self.pad_id, self.cls_id, self.sep_id,
                                                                           self.mask_id, self.unk_id]}
