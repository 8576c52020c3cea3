"""Confidence-thresholded pseudo-labels (Lee 2013; FixMatch, Sohn et al. 2020)."""
from __future__ import annotations

import torch

from ..registry import register
from ..schema import Positive, Probability
from .base import Relation, RelationContext, RelationInput, Targets, confidence_mask


@register("relations", "confidence")
class Confidence(Relation):
    """Target ``p = softmax(f(weak(z)) / T)``; weight ``1[max_c p_c >= threshold]``.

    With ``loss: hard`` the pseudo-label is ``argmax p`` (FixMatch when the objective trains on the
    strong view). threshold: confidence a prediction needs to be used (0 keeps every sample).
    temperature: softmax temperature T of the targets.
    """

    reads_batch = False  # each row's target is its own prediction's

    def __init__(self, ctx: RelationContext, *, threshold: Probability = 0.95, temperature: Positive = 1.0):
        super().__init__()
        self.threshold, self.temperature = threshold, temperature

    @torch.no_grad()
    def forward(self, inp: RelationInput) -> Targets:
        probs = torch.softmax(inp.logits.float() / self.temperature, dim=1)
        return Targets(probs, confidence_mask(probs, self.threshold))
