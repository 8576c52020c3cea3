"""Pseudo-labels only where several relations agree: co-training's two views of the data (Blum & Mitchell
1998), each relation's mistakes filtered by the others (tri-training, Zhou & Li 2005)."""
from __future__ import annotations

import dataclasses
from typing import Annotated

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import register
from ..schema import Part, build
from .base import Relation, RelationContext, RelationInput, Targets


@register("relations", "agreement")
class Agreement(Relation):
    """Targets from two or more relations, kept where they agree: ``p`` is the mean of their distributions
    and the weight is the product of their weights times ``1[their hard labels are the same]``, so a row
    on which they disagree is masked out of the unlabeled loss (where all agree, the mean's argmax is that
    label). Relations that look at the data differently err on different rows: a k-NN graph on learned
    features and label spreading on the raw inputs, or on the words of a text, agree on most rows and
    are right there more often than either alone. The rows it masks are those between the classes, though:
    on the shipped digits and text recipes it scored below their single relation (BENCHMARKS.md).

    relations: the relations (at least two), each written as ``pseudo_label``'s ``relation`` is; they get
    the same inputs, and each keeps its own state (an EMA teacher, a fitted graph).
    """

    def __init__(self, ctx: RelationContext, *, relations: list[Annotated[dict, Part("relations")]]):
        super().__init__()
        if len(relations) < 2:
            raise ConfigError(f"{ctx.path}.relations", f"agreement needs at least two relations, got {len(relations)}")
        parts = []
        for i, spec in enumerate(relations):
            path = f"{ctx.path}.relations[{i}]"
            parts.append(build("relations", spec, dataclasses.replace(ctx, path=path), path=path))
        self.relations = nn.ModuleList(parts)
        # the weak view is drawn and encoded when any of them reads it
        self.reads_weak_view = any(r.reads_weak_view for r in parts)
        self.reads_batch = any(r.reads_batch for r in parts)

    @torch.no_grad()
    def forward(self, inp: RelationInput) -> Targets:
        answers = [relation(inp) for relation in self.relations]
        labels = torch.stack([a.probs.argmax(1) for a in answers])
        agree = (labels == labels[0]).all(0)
        probs = torch.stack([a.probs for a in answers]).mean(0)
        weight = torch.stack([a.weight for a in answers]).prod(0) * agree.to(probs.dtype)
        return Targets(probs, weight)

    def after_step(self, encoder: nn.Module, head: nn.Module) -> None:
        for relation in self.relations:
            relation.after_step(encoder, head)
