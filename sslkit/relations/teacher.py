"""Targets from an exponential-moving-average copy of the model (Mean Teacher, Tarvainen & Valpola 2017)."""
from __future__ import annotations

import torch
from torch import nn

from ..ema import ema_copy, ema_update
from ..registry import register
from ..schema import Positive, Probability, Rate
from .base import Relation, RelationContext, RelationInput, Targets, confidence_mask


@register("relations", "teacher")
class Teacher(Relation):
    """Target ``p = softmax(g(weak(z)) / T)`` where ``g`` is the teacher: an EMA of the student's
    encoder and head, ``theta_g <- decay * theta_g + (1 - decay) * theta_f`` after every optimizer
    step (buffers such as BatchNorm statistics are copied). The teacher runs in eval mode and gets
    no gradient. Weight ``1[max_c p_c >= threshold]`` (0 keeps every sample, as in Mean Teacher).

    decay: EMA decay. threshold: confidence needed to use a sample. temperature: softmax temperature T.
    """

    reads_batch = False  # each row's target is its own prediction's

    def __init__(self, ctx: RelationContext, *, decay: Rate = 0.99, threshold: Probability = 0.0,
                 temperature: Positive = 1.0):
        super().__init__()
        self.decay, self.threshold, self.temperature = decay, threshold, temperature
        # a copy, not the shared modules: the teacher's weights are its own state (checkpointed)
        self.teacher = ema_copy(nn.Sequential(ctx.encoder, ctx.head))

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # teacher predictions are deterministic (no dropout, running BN statistics)
        return self

    @torch.no_grad()
    def forward(self, inp: RelationInput) -> Targets:
        probs = torch.softmax(self.teacher(inp.x).float() / self.temperature, dim=1)
        return Targets(probs, confidence_mask(probs, self.threshold))

    @torch.no_grad()
    def after_step(self, encoder: nn.Module, head: nn.Module) -> None:
        ema_update(self.teacher, nn.Sequential(encoder, head), self.decay)
