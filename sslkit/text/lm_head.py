"""Pieces shared by the language-model objectives: a weight-tied token head, a cross-entropy that
stays finite when a batch has no target, and the tied embedding of a token encoder."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


def embedding_of(encoder: nn.Module) -> torch.Tensor:
    """The weight of a token encoder's input embedding (the tied output layer of LM heads)."""
    return encoder.token_embedding().weight
