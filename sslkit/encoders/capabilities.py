"""What an encoder can do beyond ``forward(x) -> [B, out_dim]``, as runtime-checkable protocols, and
what an objective needs of its encoder.

An encoder provides a capability by having its members (structural typing: no base class to inherit,
so a Hugging Face or timm wrapper plugs in by implementing them). An objective lists what it needs in
its class attribute ``requires``; :func:`check_requirements` runs once when a recipe is built, so a
mismatched pair stops with one line naming the recipe key instead of an ``AttributeError`` deep inside
a training step::

    objectives[0]: 'mlm' needs a bidirectional token encoder; encoder 'mlp' is not one
    (bidirectional token encoders: hf, lstm, seq2seq, transformer)
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, runtime_checkable

import torch
from torch import nn

from ..errors import ConfigError


@runtime_checkable
class TokenEncoder(Protocol):
    """Per-token states over token ids.

    pad_id: the id of padding (masked from attention and pooling). max_length: the number of positions
    it can take. causal: True when position ``t`` sees positions ``<= t`` only (GPT), False when it sees
    the whole sequence (BERT).
    """

    pad_id: int
    max_length: int
    causal: bool

    def forward_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` ids -> ``[B, T, out_dim]`` states."""

    def token_embedding(self) -> nn.Embedding:
        """The input token embedding; language-model heads tie their output layer to its weight."""


@runtime_checkable
class EncoderDecoder(TokenEncoder, Protocol):
    """A token encoder with a decoder that attends to its states (BART-style)."""

    def decode(self, targets_in: torch.Tensor, memory: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Decoder states ``[B, T, out_dim]`` for shifted targets, attending to ``memory`` of ``source``."""


@runtime_checkable
class DirectionalEncoder(TokenEncoder, Protocol):
    """A token encoder with separate left-to-right and right-to-left states (ELMo's biLM)."""

    def forward_directions(self, ids: torch.Tensor) -> tuple:
        """``(forward, backward)`` states, each ``[B, T, D]``."""


@runtime_checkable
class TwoStreamEncoder(TokenEncoder, Protocol):
    """A token encoder that runs XLNet's two-stream self-attention with its own weights: a content stream
    and a query stream that reads the content stream (permuted language modelling)."""

    def embed(self, ids, positions, start=None) -> torch.Tensor:
        """Block input from token ids (or the vectors ``start``) and the position ids ``positions``."""

    def forward_two_stream(self, h, g, content_mask, query_mask) -> torch.Tensor:
        """The final query stream after every block (content/query masks: True = may attend)."""


@runtime_checkable
class ImageEncoder(Protocol):
    """An encoder of images ``[B, C, H, W]``.

    input_shape: the ``(C, H, W)`` it was built for (a dataset of another shape is refused at build time).
    """

    input_shape: tuple


@runtime_checkable
class Exportable(Protocol):
    """An encoder that writes itself in a format other tools load without sslkit (``sslkit export``);
    encoders without it are exported as safetensors plus a JSON config of their recipe keys."""

    def export(self, directory) -> None:
        """Write the encoder's weights and config into the (new, empty) folder ``directory``."""


@runtime_checkable
class LanguageModel(TokenEncoder, Protocol):
    """A token encoder with its own language-model head (a Hugging Face ``...ForMaskedLM`` or
    ``...ForCausalLM``); LM objectives use it instead of adding a head tied to the embedding
    (:func:`sslkit.text.lm_head.lm_head` makes that choice). ``has_lm_head`` may be False on an instance
    loaded without one."""

    def lm_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Token logits ``[..., V]`` of states ``h`` ``[..., out_dim]`` from :meth:`forward_tokens`."""


@runtime_checkable
class IncrementalDecoder(TokenEncoder, Protocol):
    """A causal token encoder that decodes step by step with a key/value cache (used by every sampling
    path through :func:`sslkit.text.generate.lm_stepper`)."""

    def forward_tokens_cached(self, ids: torch.Tensor, cache: Any) -> tuple:
        """``(states [B, t, out_dim], cache)`` of the ``t`` ids that follow those already in ``cache``
        (``None``: none yet); the returned cache holds all of them."""


@runtime_checkable
class BringsTokenizer(Protocol):
    """An encoder whose data must be tokenized with a tokenizer it names (a pretrained model's own).
    ``sslkit.runner.build_data`` asks the encoder class before the dataset tokenizes its text."""

    @classmethod
    def data_tokenizer(cls, params: dict) -> Optional[dict]:
        """The ``data.tokenizer`` spec the data must use, given the encoder's recipe keys (None: any)."""


@runtime_checkable
class ParameterGroups(Protocol):
    """An encoder whose parameters train at different learning rates (layer-wise decay); the trainer's
    optimizer applies the scales to its ``lr``."""

    def parameter_groups(self) -> list:
        """``[(parameters, lr_scale), ...]``; parameters not listed train at scale 1."""


@dataclass(frozen=True)
class Capability:
    """A named requirement on the encoder: a protocol and, optionally, a condition on the built encoder.

    name: how error messages and ``sslkit describe`` call it. protocol: the runtime-checkable protocol.
    condition: a further test of the built encoder (e.g. that it is causal). unmet: what a built encoder that
    has the protocol but fails the condition is, for the error (e.g. "causal": a property of its model).
    """

    name: str
    protocol: type
    condition: Optional[Callable[[Any], bool]] = None
    unmet: str = ""

    def met_by(self, encoder: nn.Module) -> bool:
        return isinstance(encoder, self.protocol) and (self.condition is None or bool(self.condition(encoder)))

    def may_be_met_by(self, cls: type) -> bool:
        """Whether instances of the encoder class ``cls`` can meet it: its methods exist on the class, and a
        condition is tested on the class only when the class fixes the attributes it reads."""
        methods, data = _members(self.protocol)
        declared = {n for klass in cls.__mro__ for n in getattr(klass, "__annotations__", {})}
        if not all(callable(getattr(cls, m, None)) for m in methods):
            return False
        if not all(hasattr(cls, m) or m in declared for m in data):  # set in __init__: declared on the class
            return False
        if self.condition is None:
            return True
        try:
            return bool(self.condition(cls))
        except AttributeError:  # decided per instance (e.g. lstm's ``bidirectional`` key)
            return True


def _members(protocol: type) -> tuple:
    """(method names, data member names) of a protocol and the protocols it extends."""
    methods, data = [], []
    for klass in protocol.__mro__:
        if not getattr(klass, "_is_protocol", False) or klass is Protocol:
            continue
        methods += [m for m, v in vars(klass).items() if inspect.isfunction(v) and not m.startswith("_")]
        data += list(getattr(klass, "__annotations__", {}))
    return methods, data


TOKEN = Capability("token encoder", TokenEncoder)
_CAUSAL = "causal: each token sees only the tokens before it"
_BIDIRECTIONAL = "bidirectional: each token sees the whole row"
CAUSAL = Capability("causal token encoder", TokenEncoder, lambda e: e.causal, _BIDIRECTIONAL)
BIDIRECTIONAL = Capability("bidirectional token encoder", TokenEncoder, lambda e: not e.causal, _CAUSAL)
ENCODER_DECODER = Capability("encoder-decoder", EncoderDecoder)
DIRECTIONAL = Capability("bidirectional encoder with separate directions", DirectionalEncoder,
                         lambda e: not e.causal, _CAUSAL)
TWO_STREAM = Capability("bidirectional two-stream encoder", TwoStreamEncoder, lambda e: not e.causal, _CAUSAL)
IMAGE = Capability("image encoder", ImageEncoder)
LM_HEAD = Capability("token encoder with its own language-model head", LanguageModel,
                     lambda e: getattr(e, "has_lm_head", True))
KV_CACHE = Capability("causal token encoder with a key/value cache", IncrementalDecoder, lambda e: e.causal)
CAPABILITIES = (TOKEN, CAUSAL, BIDIRECTIONAL, ENCODER_DECODER, DIRECTIONAL, TWO_STREAM, IMAGE, LM_HEAD, KV_CACHE)


def encoders_with(capability: Capability) -> list:
    """Names of the registered encoders whose class can provide ``capability``."""
    from ..registry import registry

    reg = registry("encoders")
    return [n for n in reg.names() if inspect.isclass(reg.get(n).target) and capability.may_be_met_by(reg.get(n).target)]


def capabilities_of(cls: type) -> list:
    """Names of the capabilities an encoder class can provide (shown by ``sslkit describe``)."""
    return [c.name for c in CAPABILITIES if inspect.isclass(cls) and c.may_be_met_by(cls)]


def check_requirements(objective_cls: type, encoder: nn.Module, encoder_name: str, objective_name: str,
                       path: str) -> None:
    """Raise a ConfigError at ``path`` if ``encoder`` lacks a capability that ``objective_cls.requires`` names."""
    for capability in getattr(objective_cls, "requires", ()):
        if not capability.met_by(encoder):
            article = "an" if capability.name[0] in "aeiou" else "a"
            if capability.unmet and isinstance(encoder, capability.protocol):  # this model decides, not the name
                able = ", ".join(f"{n} with another model" if n == encoder_name else n
                                 for n in encoders_with(capability))
                raise ConfigError(path, f"'{objective_name}' needs {article} {capability.name}; this '{encoder_name}' "
                                        f"encoder is {capability.unmet} ({capability.name}s: {able})")
            raise ConfigError(path, f"'{objective_name}' needs {article} {capability.name}; encoder '{encoder_name}' "
                                    f"is not one ({capability.name}s: {', '.join(encoders_with(capability))})")
