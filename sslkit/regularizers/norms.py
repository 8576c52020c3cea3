"""Norm penalties over the trained parameters."""
from __future__ import annotations

import torch
from torch import nn

from ..registry import register


@register("regularizers", "l2")
class L2(nn.Module):
    """Omega(theta) = sum of squared parameters, ||theta||_2^2 (over every parameter of the player being
    stepped, biases included, exactly as written; use ``trainer.optimizer.weight_decay`` for decoupled decay)."""

    def forward(self, params) -> torch.Tensor:
        return torch.stack([p.pow(2).sum() for p in params]).sum()


@register("regularizers", "l1")
class L1(nn.Module):
    """Omega(theta) = sum of absolute parameter values, ||theta||_1."""

    def forward(self, params) -> torch.Tensor:
        return torch.stack([p.abs().sum() for p in params]).sum()
