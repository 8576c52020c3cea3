"""Exponential moving averages of a module's weights: Mean Teacher's teacher, an EMA generator, the
teacher whose features a propagation graph is built on, and the whole model's average that a run with
``trainer.ema_decay`` evaluates and saves (USB's ``ema_m``, timm's ``ModelEmaV3``).

The average is a frozen copy of the module (:func:`ema_copy`) that its owner keeps as a submodule, so
that it moves with the model and goes into checkpoints under the owner's keys; :func:`ema_update`
moves it toward the module after each optimizer step with torch's own EMA update
(:func:`torch.optim.swa_utils.get_ema_multi_avg_fn`, the one ``AveragedModel`` applies).
"""
from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn


def ema_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with its own weights and no gradients: the average's starting point."""
    return copy.deepcopy(module).requires_grad_(False)


class AveragedWeights(nn.Module):
    """The parameters of ``module`` alone, copied without gradients: the starting point of an average of a
    whole model, whose objectives also hold things that are not weights (a dataset, a tokenizer, a
    rollout buffer) that :func:`ema_copy`'s deep copy would duplicate. Its parameters are in ``module``'s
    order, so :func:`ema_update` moves it like a copy of the module; it has no buffers, since the
    average's buffers would be the module's own (ema_update copies them), which
    :func:`averaged_weights_in` leaves in place.

    Parameters: ``module``, the module whose weights are averaged (its parameter names are kept in
    ``names``, for :meth:`named_weights`)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.names = [name for name, _ in module.named_parameters()]
        self.weights = nn.ParameterList([nn.Parameter(p.detach().clone(), requires_grad=False)
                                         for p in module.parameters()])

    def named_weights(self) -> dict:
        """``{parameter name in the module: averaged tensor}``."""
        return dict(zip(self.names, self.weights))

    @torch.no_grad()
    def load_named_weights(self, weights: dict) -> None:
        """Copy the averaged parameters of :meth:`named_weights` back in (a checkpoint's)."""
        missing = [n for n in self.names if n not in weights]
        if missing:
            raise KeyError(f"no averaged weight for '{missing[0]}'")
        for name, p in zip(self.names, self.weights):
            p.copy_(weights[name])


def warmup_decay(decay: float, updates: int) -> float:
    """The decay of update number ``updates`` (0 for the first) with timm's / TensorFlow's warm-up,
    ``min(decay, (1 + updates) / (10 + updates))``: the first updates follow the model closely, so an
    average started from a randomly initialised head does not keep its random weights for the first
    ~1 / (1 - decay) steps (it reaches ``decay`` after ``(10 decay - 1) / (1 - decay)`` updates)."""
    return min(decay, (1 + updates) / (10 + updates))


@contextlib.contextmanager
def averaged_weights_in(module: nn.Module, average: nn.Module):
    """Within the block, ``module``'s parameters hold ``average``'s values (an ``ema_copy`` of it or its
    :class:`AveragedWeights`); they are restored, bit for bit, on leaving (USB's ``apply_shadow`` /
    ``restore``). Everything else of ``module`` (its objectives' state, its buffers) stays its own."""
    params = list(module.parameters())
    with torch.no_grad():
        saved = [p.detach().clone() for p in params]
        for p, avg in zip(params, average.parameters()):
            p.copy_(avg)
    try:
        yield module
    finally:
        with torch.no_grad():
            for p, own in zip(params, saved):
                p.copy_(own)


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
