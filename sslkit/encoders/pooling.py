"""Pooling per-token states ``[B, T, D]`` into one feature vector per row ``[B, D]``, ignoring padding.

Shared by every token encoder's ``forward`` so ``pooling: mean | cls | last`` means the same everywhere.
"""
from __future__ import annotations

from typing import Literal

import torch

Pooling = Literal["mean", "cls", "last"]


def pool(h: torch.Tensor, real: torch.Tensor, how: str) -> torch.Tensor:
    """Pool states ``h`` ``[B, T, D]`` given ``real`` ``[B, T]`` (True at real tokens, False at padding).

    how: ``mean`` over the real tokens, ``cls`` the first state, ``last`` the last real token's state
    (what a causal model has read the whole row into; position 0 for an all-padding row).
    """
    if how == "cls":
        return h[:, 0]
    if how == "last":
        last = real.long().cumsum(1).argmax(1)
        return h[torch.arange(len(h), device=h.device), last]
    if how == "mean":
        w = real.unsqueeze(-1).to(h.dtype)
        return (h * w).sum(1) / w.sum(1).clamp_min(1.0)
    raise ValueError(f"unknown pooling '{how}' (mean, cls, last)")
