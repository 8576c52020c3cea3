"""Pseudo-labels from the nearest class centroid of the labeled features (prototypical networks)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..registry import register
from ..schema import Positive, Probability
from .base import Relation, RelationContext, RelationInput, Targets, confidence_mask


def class_centroids(features: torch.Tensor, y: torch.Tensor, num_classes: int):
    """``(centroids [C, D], present [C])``: the mean feature of each class in the batch, and
    whether the class occurs in it."""
    sums = torch.zeros(num_classes, features.shape[1], device=features.device, dtype=features.dtype)
    sums.index_add_(0, y, features)
    counts = torch.bincount(y, minlength=num_classes).to(features.dtype)
    return sums / counts.clamp_min(1)[:, None], counts > 0


@register("relations", "prototype")
class Prototype(Relation):
    """Target ``p = softmax_c(cos(h(z), mu_c) / T)`` where ``h(z)`` is the student's feature of the
    weak view and ``mu_c`` the mean of the L2-normalised features of the labeled batch's class ``c``
    (classes absent from the batch get probability 0). The hard pseudo-label is the nearest
    centroid. Weight ``1[max_c p_c >= threshold]``.

    temperature: softmax temperature T over cosine similarities. threshold: confidence needed to use
    a sample (0 keeps every sample).
    """

    def __init__(self, ctx: RelationContext, *, temperature: Positive = 0.1, threshold: Probability = 0.0):
        super().__init__()
        self.temperature, self.threshold = temperature, threshold
        self.num_classes = ctx.info.num_classes

    @torch.no_grad()
    def forward(self, inp: RelationInput) -> Targets:
        labeled = F.normalize(inp.labeled_features.float(), dim=1)
        mu, present = class_centroids(labeled, inp.labeled_y, self.num_classes)
        sim = F.normalize(inp.features.float(), dim=1) @ F.normalize(mu, dim=1).T
        sim = sim.masked_fill(~present[None, :], float("-inf"))
        probs = torch.softmax(sim / self.temperature, dim=1)
        return Targets(probs, confidence_mask(probs, self.threshold))
