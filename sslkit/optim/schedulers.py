"""Learning-rate schedules as ``LambdaLR`` multipliers of the optimizer's ``lr``, stepped once per
optimizer step. ``total_steps`` is supplied by the trainer."""
from __future__ import annotations

import math

from torch.optim.lr_scheduler import LambdaLR

from ..registry import register
from ..schema import NonNegativeInt, Probability


def _warmup(step: int, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


@register("schedulers", "constant")
def constant(optimizer, total_steps: int, *, warmup_steps: NonNegativeInt = 0) -> LambdaLR:
    """Constant learning rate after an optional linear warm-up of ``warmup_steps``."""
    return LambdaLR(optimizer, lambda s: _warmup(s, warmup_steps))


@register("schedulers", "cosine")
def cosine(optimizer, total_steps: int, *, warmup_steps: NonNegativeInt = 0, min_lr_ratio: Probability = 0.0) -> LambdaLR:
    """Linear warm-up, then cosine decay to ``min_lr_ratio * lr`` at the last step."""

    def f(s):
        if s < warmup_steps:
            return _warmup(s, warmup_steps)
        t = min(1.0, (s - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return LambdaLR(optimizer, f)


@register("schedulers", "linear")
def linear(optimizer, total_steps: int, *, warmup_steps: NonNegativeInt = 0, min_lr_ratio: Probability = 0.0) -> LambdaLR:
    """Linear warm-up, then linear decay to ``min_lr_ratio * lr`` at the last step (BERT's schedule)."""

    def f(s):
        if s < warmup_steps:
            return _warmup(s, warmup_steps)
        t = min(1.0, (s - warmup_steps) / max(1, total_steps - warmup_steps))
        return 1 - (1 - min_lr_ratio) * t

    return LambdaLR(optimizer, f)
