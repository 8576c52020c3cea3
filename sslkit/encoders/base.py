"""The encoder interface."""
from __future__ import annotations

from abc import abstractmethod

from typing import Literal

import torch
from torch import nn

Activation = Literal["relu", "gelu", "silu", "tanh", "leaky_relu"]


class Encoder(nn.Module):
    """Maps ``x`` to features ``[B, out_dim]``.

    Text encoders also implement ``forward_tokens(x) -> [B, T, out_dim]`` for token-level
    objectives, and expose ``pad_id`` so padding is masked.
    """

    out_dim: int

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


def make_activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}[name]()
