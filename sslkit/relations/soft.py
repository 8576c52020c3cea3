"""Sharpened soft targets with optional distribution alignment (MixMatch / ReMixMatch)."""
from __future__ import annotations

import torch

from ..registry import register
from ..schema import Positive, Probability, Rate
from .base import Relation, RelationContext, RelationInput, Targets, class_prior, confidence_mask, sharpen


@register("relations", "soft")
class Soft(Relation):
    """Target ``sharpen(p, T)`` with ``p = softmax(f(weak(z)))``; weight ``1[max_c p_c >= threshold]``.

    With ``align``, ``p`` is first multiplied by ``prior / running_mean(p)`` and renormalised
    (ReMixMatch's distribution alignment), so the pseudo-labels follow the labeled class
    frequencies; ``running_mean`` is an exponential moving average over batches.

    temperature: sharpening temperature T (1 keeps ``p``; -> 0 approaches one-hot).
    align: distribution alignment. momentum: EMA momentum of ``running_mean``.
    threshold: confidence of ``p`` needed to use a sample (0 keeps every sample).
    """

    def __init__(self, ctx: RelationContext, *, temperature: Positive = 0.5, align: bool = False,
                 momentum: Rate = 0.999, threshold: Probability = 0.0):
        super().__init__()
        self.temperature, self.align, self.momentum, self.threshold = temperature, align, momentum, threshold
        C = ctx.info.num_classes
        self.register_buffer("prior", class_prior(ctx))
        self.register_buffer("running_mean", torch.full((C,), 1.0 / C))

    @torch.no_grad()
    def forward(self, inp: RelationInput) -> Targets:
        probs = torch.softmax(inp.logits.float(), dim=1)
        if self.align:
            if self.training:
                self.running_mean.mul_(self.momentum).add_(probs.mean(0), alpha=1 - self.momentum)
            probs = probs * (self.prior / self.running_mean.clamp_min(1e-12))
            probs = probs / probs.sum(1, keepdim=True)
        return Targets(sharpen(probs, self.temperature), confidence_mask(probs, self.threshold))
