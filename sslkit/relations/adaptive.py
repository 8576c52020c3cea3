"""Self-adaptive per-class confidence thresholds (FreeMatch, Wang et al. 2023; FlexMatch, Zhang et al. 2021)."""
from __future__ import annotations

from typing import Literal

import torch

from ..registry import register
from ..schema import Probability, Rate
from .base import Relation, RelationContext, RelationInput, Targets


@register("relations", "adaptive")
class Adaptive(Relation):
    """Target ``p = softmax(f(weak(z)))``; weight ``1[max_c p_c >= tau(argmax p)]`` with per-class
    thresholds ``tau(c)`` that follow the model's learning status, updated once per training batch
    with exponential moving averages of momentum ``m`` (before the mask is computed).

    ``freematch`` (self-adaptive thresholding): ``t <- m t + (1-m) mean_b max_c p_bc`` (global
    confidence), ``q <- m q + (1-m) mean_b p_b`` (per-class mean probability), and
    ``tau(c) = t * q(c) / max_c q(c)``; ``t`` and ``q`` start at ``1/C``.

    ``flexmatch`` (curriculum pseudo-labelling): ``s(c) <- m s(c) + (1-m) * (fraction of the batch
    predicted as c with confidence >= threshold)``, ``beta(c) = s(c) / max(max_c s(c), 1 - sum_c s(c))``
    (the second term: the share still unused, FlexMatch's warm-up), and
    ``tau(c) = threshold * beta(c) / (2 - beta(c))``; ``s`` starts at 0, so early thresholds are low.
    FlexMatch counts over the whole unlabeled set; this batch-wise EMA needs no sample indices.

    mode: ``freematch`` or ``flexmatch``. momentum: EMA momentum m. threshold: the upper threshold
    of ``flexmatch`` (unused by ``freematch``).
    """

    def __init__(self, ctx: RelationContext, *, mode: Literal["freematch", "flexmatch"] = "freematch",
                 momentum: Rate = 0.999, threshold: Probability = 0.95):
        super().__init__()
        self.mode, self.momentum, self.threshold = mode, momentum, threshold
        C = ctx.info.num_classes
        self.register_buffer("global_conf", torch.tensor(1.0 / C))  # freematch's t
        self.register_buffer("class_prob", torch.full((C,), 1.0 / C))  # freematch's q
        self.register_buffer("class_share", torch.zeros(C))  # flexmatch's s

    def class_thresholds(self) -> torch.Tensor:
        """The current per-class thresholds ``tau(c)``."""
        if self.mode == "freematch":
            return self.global_conf * self.class_prob / self.class_prob.max()
        s = self.class_share
        beta = s / torch.maximum(s.max(), 1 - s.sum()).clamp_min(1e-12)
        return self.threshold * beta / (2 - beta)

    @torch.no_grad()
    def update(self, probs: torch.Tensor) -> None:
        """One EMA step of the learning-status estimates from a batch of probabilities."""
        m = self.momentum
        conf, pred = probs.max(1)
        if self.mode == "freematch":
            self.global_conf.mul_(m).add_(conf.mean(), alpha=1 - m)
            self.class_prob.mul_(m).add_(probs.mean(0), alpha=1 - m)
        else:
            confident = (conf >= self.threshold).to(probs.dtype)
            share = torch.zeros_like(self.class_share).index_add_(0, pred, confident) / len(probs)
            self.class_share.mul_(m).add_(share, alpha=1 - m)

    @torch.no_grad()
    def forward(self, inp: RelationInput) -> Targets:
        probs = torch.softmax(inp.logits.float(), dim=1)
        if self.training:
            self.update(probs)
        conf, pred = probs.max(1)
        return Targets(probs, (conf >= self.class_thresholds()[pred]).to(probs.dtype))
