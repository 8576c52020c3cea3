"""Supervised cross-entropy on the labeled rows."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..registry import register
from ..schema import Count, Rate
from .base import Classifier, ObjectiveContext, Output


def linear_head(in_dim: int, out_dim: int, hidden: int | None = None) -> nn.Module:
    """A linear layer, or ``Linear -> ReLU -> Linear`` when ``hidden`` is given."""
    if hidden:
        return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
    return nn.Linear(in_dim, out_dim)


@register("objectives", "supervised")
class Supervised(Classifier):
    """Mean cross-entropy ``(1/n) sum_i L(f(x_i), y_i)`` of a classification head over the labeled rows.

    label_smoothing: as in ``torch.nn.functional.cross_entropy``.
    head_hidden: width of a hidden layer in the head (default: a linear head).
    """

    def __init__(self, ctx: ObjectiveContext, *, label_smoothing: Rate = 0.0, head_hidden: Count | None = None):
        super().__init__()
        if not ctx.info.num_classes:
            raise ConfigError(f"{ctx.path}.name", f"dataset '{ctx.info.name}' has no class labels to learn")
        self.label_smoothing = label_smoothing
        self.head = linear_head(ctx.encoder.out_dim, ctx.info.num_classes, head_hidden)

    def logits(self, x, encoder):
        return self.head(encoder(x))

    def forward(self, batch, encoder, player="model"):
        b = batch["labeled"]
        logits = self.logits(b["x"], encoder)
        loss = F.cross_entropy(logits, b["y"], label_smoothing=self.label_smoothing)
        logits = logits.detach()
        return Output(loss, {"accuracy": lambda: (logits.argmax(1) == b["y"]).float().mean()})
