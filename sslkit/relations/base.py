"""The relation interface: ``R(z, X)`` of the semi-supervised objective.

The pseudo-label objective minimises

    (1/n) sum_i L(f(x_i), y_i) + lambda_u (1/m) sum_j w_j L'(f(strong(z_j)), R(z_j, X))

A relation (registered under ``relations``) turns each unlabeled ``z_j`` — seen through the
student's logits and features on its weak view — and the labeled batch ``X`` (its features and
labels) into a target distribution over the classes and a per-sample weight ``w_j`` in [0, 1]
(0 = masked out). The objective turns the distribution into a hard label (``loss: hard``) or uses
it as is (``loss: soft``). Relations are ``nn.Module``s so that their state (running averages,
an EMA teacher) moves to the device and goes into checkpoints.
"""
from __future__ import annotations

from abc import abstractmethod

from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
from torch import nn

from ..data import DataInfo, TensorData


@dataclass
class RelationContext:
    """What a relation may use to build itself: the data description, the student's encoder and
    classification head (an EMA teacher copies them), the labeled training rows (class priors),
    the recipe path of the relation for error messages, and every training row (hidden labels -1),
    in the order whose indices arrive as :attr:`RelationInput.rows` (a relation over the whole
    training set computes its targets from them once)."""

    info: DataInfo
    encoder: nn.Module
    head: nn.Module
    labeled: Optional[TensorData] = None
    path: str = "objectives[0].relation"
    train: Optional[TensorData] = None


class RelationInput(NamedTuple):
    """One training step's view of the data, as a relation sees it (all detached).

    x: the weak view of the unlabeled batch ``z`` (``[B, ...]``).
    logits: the student's logits on ``x`` (``[B, C]``).
    features: the student's encoder features on ``x`` (``[B, D]``).
    (``x``, ``logits`` and ``features`` are ``None`` for a relation whose ``reads_weak_view`` is False:
    the weak view is then neither drawn nor encoded.)
    labeled_x: the labeled batch ``X`` as the student saw it (``[n, ...]``).
    labeled_features: the student's features of ``X`` (``[n, D]``).
    labeled_y: the labels of ``X`` (``[n]``).
    rows: the indices of ``z``'s rows in the training rows (``[B]``; ``None`` when the caller has none).
    """

    x: Optional[torch.Tensor]
    logits: Optional[torch.Tensor]
    features: Optional[torch.Tensor]
    labeled_x: torch.Tensor
    labeled_features: torch.Tensor
    labeled_y: torch.Tensor
    rows: Optional[torch.Tensor] = None


class Targets(NamedTuple):
    """A relation's answer: ``probs`` ``[B, C]`` (rows sum to 1; the hard pseudo-label is their
    argmax) and ``weight`` ``[B]`` in [0, 1] (0 masks the sample out of the unlabeled loss)."""

    probs: torch.Tensor
    weight: torch.Tensor


class Relation(nn.Module):
    """Base class: ``forward(RelationInput) -> Targets`` under ``torch.no_grad``.

    ``after_step(encoder, head)`` runs after every optimizer step (EMA teachers).
    ``reads_weak_view``: whether the relation looks at the weak view of ``z`` (its pixels or tokens, or
    the student's logits and features on it). A relation whose targets come from elsewhere (a fit over the
    training rows, looked up by :attr:`RelationInput.rows`) sets it False, and the objective then skips
    drawing and encoding that view: a third of a FixMatch-shaped step.
    ``reads_batch``: whether a row's target depends on the other rows of the batch (a graph over it) or on
    state updated from it (running class statistics). Such a relation sees the global batch under
    ``torchrun`` (every rank's rows, gathered), so its targets and state do not depend on the number of
    processes; a row-wise relation (False) sees this rank's rows and needs no gathering.
    """

    reads_weak_view: bool = True
    reads_batch: bool = True

    @abstractmethod
    def forward(self, inp: RelationInput) -> Targets:  # pragma: no cover - interface
        raise NotImplementedError

    def after_step(self, encoder: nn.Module, head: nn.Module) -> None:
        """Update state that follows the student's weights; nothing by default."""


def class_prior(ctx: RelationContext) -> torch.Tensor:
    """The class frequencies of the labeled training rows (``[C]``, sums to 1); uniform when the
    context has none."""
    C = ctx.info.num_classes
    if ctx.labeled is not None and "y" in ctx.labeled and len(ctx.labeled):
        counts = torch.bincount(ctx.labeled["y"], minlength=C).float()
        return counts / counts.sum()
    return torch.full((C,), 1.0 / C)


def confidence_mask(probs: torch.Tensor, threshold) -> torch.Tensor:
    """``1.0`` where ``max_c probs`` reaches ``threshold`` (a number or a per-sample tensor), else ``0.0``."""
    return (probs.max(1).values >= threshold).to(probs.dtype)


def sharpen(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """``p^(1/T) / sum_c p_c^(1/T)`` (MixMatch's sharpening), computed in log space for stability."""
    return torch.softmax(torch.log(probs.clamp_min(1e-12)) / temperature, dim=1)
