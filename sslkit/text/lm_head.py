"""Pieces shared by the language-model objectives: a weight-tied token head, a cross-entropy that
stays finite when a batch has no target, and a check that the encoder gives per-token states."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

IGNORE = -100  # label of positions that carry no target (PyTorch's ignore_index)


class TiedLMHead(nn.Module):
    """Token logits ``LN(act(W h)) E^T + b`` with the decoder tied to the encoder's embedding ``E``
    (BERT's transform + tied decoder). ``transform=False`` gives GPT-2's bare ``h E^T``.

    dim: hidden width. vocab_size: number of tokens. transform: add the dense + GELU + LayerNorm.
    """

    def __init__(self, dim: int, vocab_size: int, transform: bool = True):
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim)) if transform else nn.Identity()
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, h: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(h), embedding, self.bias)


def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple:
    """Mean cross-entropy over positions with ``labels != IGNORE`` and the number of such positions.
    A batch without any target gives a zero loss that still back-propagates (never NaN)."""
    flat = labels.reshape(-1)
    keep = flat != IGNORE
    n = int(keep.sum())
    if n == 0:
        return logits.sum() * 0.0, 0
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1])[keep], flat[keep]), n


def token_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    keep = labels != IGNORE
    if not keep.any():
        return torch.zeros((), device=logits.device)
    return (logits.argmax(-1)[keep] == labels[keep]).float().mean()


def token_encoder(encoder: nn.Module, path: str, name: str):
    """The encoder if it gives per-token states and has a token embedding ``tok``; else a ConfigError."""
    if not hasattr(encoder, "forward_tokens") or not hasattr(encoder, "tok"):
        raise ConfigError(f"{path}.name", f"'{name}' needs a text encoder with per-token states and a token "
                                          f"embedding (transformer, gpt, lstm), not {type(encoder).__name__}")
    return encoder


def embedding_of(encoder: nn.Module) -> torch.Tensor:
    return encoder.tok.weight
