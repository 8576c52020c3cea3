"""Exponential moving averages of a module's weights: Mean Teacher's teacher, an EMA generator, the
teacher whose features a propagation graph is built on.

The average is a frozen copy of the module (:func:`ema_copy`) that its owner keeps as a submodule, so
that it moves with the model and goes into checkpoints under the owner's keys; :func:`ema_update`
moves it toward the module after each optimizer step with torch's own EMA update
(:func:`torch.optim.swa_utils.get_ema_multi_avg_fn`, the one ``AveragedModel`` applies).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn


def ema_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with its own weights and no gradients: the average's starting point."""
    return copy.deepcopy(module).requires_grad_(False)


@torch.no_grad()
def ema_update(average: nn.Module, module: nn.Module, decay: float) -> None:
    """``theta_avg <- decay * theta_avg + (1 - decay) * theta`` for every parameter of ``average``
    and the matching one of ``module`` (same architecture); buffers (BatchNorm statistics) are
    copied, since averaging running statistics of different weights describes neither."""
    params = list(average.parameters())
    if params:
        get_ema_multi_avg_fn(decay)(params, [p.detach() for p in module.parameters()], None)
    for avg, buf in zip(average.buffers(), module.buffers()):
        avg.copy_(buf)
