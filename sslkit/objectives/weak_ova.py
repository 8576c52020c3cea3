"""Weak supervision: a one-vs-all classifier trained on K inaccurate labels per row.

The seed formula (seed-notes, "Weakly-Supervised Learning")::

    argmin_theta  1/(nK) sum_i sum_k L(f(x_i), y_i^k) + lambda * Omega(theta)

with ``L`` the one-vs-all binomial loss: one sigmoid binary problem per class, summed over the
C classes, ``L(f, y) = -sum_c [ [y = c] log s(f_c) + [y != c] log(1 - s(f_c)) ]``. Missing labels
(``-1``) are dropped from both sums and from the count ``nK``. (``lambda * Omega`` is the recipe's
``regularizer``.)

Because ``L`` is linear in its one-hot target, ``sum_k L(f, y^k) = m * L(f, t)`` where ``m`` is the
number of labels of the row and ``t`` their vote fractions. The first three variants below are
therefore *label models* giving each row a target distribution ``t_i`` over classes and a weight
``w_i``, with the loss ``sum_i w_i L(f(x_i), t_i) / sum_i w_i``:

* ``pooled`` (default, the formula): ``t_i`` = vote fractions, ``w_i`` = number of labels.
* ``soft_vote``: the soft-label aggregate, ``t_i`` = vote fractions, ``w_i = 1``.
* ``dawid_skene``: ``t_i`` = the Dawid–Skene posterior of the row (annotators' confusion matrices
  fitted by EM on the training label matrix once, before training), so reliable annotators weigh more.
* ``crowd_layer``: per-annotator confusion matrices ``T_k`` learnt jointly with the classifier
  (a crowd layer): the classifier's class distribution ``p = softmax(f(x))`` predicts annotator
  k's label as ``pi^k = p T_k``, the loss is ``L`` on ``pi^k`` (probabilities instead of sigmoids)
  against each present ``y^k``, and after ``warmup_steps`` every step moves ``T_k`` towards the
  M-step estimate from the posterior ``q ∝ p prod_k T_k[c, y^k]``. The classifier can then be sure of
  the clean class while ``T_k`` explains each annotator's noise.
"""
from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..data.annotators import vote_counts
from ..data.dawid_skene import dawid_skene, estimate_confusion, one_hot_annotations, posterior
from ..data.stream import StreamSpec
from ..errors import ConfigError
from ..registry import register, registry
from ..schema import Count, NonNegativeInt, OpenProbability, PositiveProbability
from .base import Classifier, ObjectiveContext, Output
from .supervised import linear_head


def ova_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_i w_i L(f_i, t_i) / sum_i w_i`` with ``L(f, t) = sum_c BCE(sigmoid(f_c), t_c)``."""
    per_row = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(1)
    return (weights * per_row).sum() / weights.sum().clamp_min(1e-12)


def annotator_accuracy(confusion: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """``[K]`` p(annotator k is right) = sum_c prior_c confusion[k, c, c]."""
    return (confusion.diagonal(dim1=1, dim2=2) * prior).sum(1)


class Pooled(nn.Module):
    """Every label counts once: vote-fraction targets weighted by the row's number of labels."""

    def forward(self, logits, annotations, step):
        counts = vote_counts(annotations, logits.shape[1])
        m = counts.sum(1)
        targets = counts / m.clamp_min(1).unsqueeze(1)
        return ova_loss(logits, targets, m), targets


class SoftVote(nn.Module):
    """Every row counts once: its vote fractions are a soft label."""

    def forward(self, logits, annotations, step):
        counts = vote_counts(annotations, logits.shape[1])
        m = counts.sum(1)
        targets = counts / m.clamp_min(1).unsqueeze(1)
        return ova_loss(logits, targets, (m > 0).float()), targets


class DawidSkeneTargets(nn.Module):
    """Targets = the Dawid–Skene posterior of each row, from confusion matrices fitted once by EM on
    the training label matrix.

    train_annotations: ``[N, K]`` training labels. num_classes: C. iterations: EM iterations.
    """

    def __init__(self, train_annotations: torch.Tensor, num_classes: int, iterations: int):
        super().__init__()
        fit = dawid_skene(train_annotations, num_classes, iterations)
        self.register_buffer("confusion", fit.confusion)
        self.register_buffer("prior", fit.prior)

    def forward(self, logits, annotations, step):
        targets = posterior(annotations, self.confusion, self.prior)
        return ova_loss(logits, targets, (annotations >= 0).any(1).float()), targets


class CrowdLayer(nn.Module):
    """Per-annotator confusion matrices ``T_k`` learnt jointly with the classifier.

    The classifier's class distribution ``p = softmax(f(x))`` passes through each annotator's
    ``T_k`` (``T_k[c, j]`` = p(annotator k says j | class c)): ``pi^k = p T_k`` predicts that
    annotator's label, and the loss is the one-vs-all binomial loss of ``pi^k`` against ``y^k``,
    averaged over the present labels. The classifier thus learns the clean classes and the
    ``T_k`` absorb each annotator's noise. After ``warmup_steps``, each step moves ``T_k`` towards
    the batch M-step estimate from the posterior ``q ∝ p prod_k T_k[c, y^k]`` (rate ``momentum``).

    annotators: K. num_classes: C. init_accuracy: initial diagonal of every ``T_k`` (errors uniform).
    """

    def __init__(self, annotators: int, num_classes: int, init_accuracy: float, warmup_steps: int,
                 momentum: float):
        super().__init__()
        off = (1 - init_accuracy) / (num_classes - 1)
        eye = torch.eye(num_classes)
        self.register_buffer("confusion", (eye * init_accuracy + (1 - eye) * off).expand(annotators, -1, -1).clone())
        self.register_buffer("prior", torch.full((num_classes,), 1.0 / num_classes))
        self.warmup_steps, self.momentum = warmup_steps, momentum

    def forward(self, logits, annotations, step):
        p = torch.softmax(logits, 1)
        noisy = torch.einsum("nc,kcj->nkj", p, self.confusion).clamp(1e-6, 1 - 1e-6)  # [B, K, C]
        onehot = one_hot_annotations(annotations, logits.shape[1])
        valid = (annotations >= 0).float()
        per_label = F.binary_cross_entropy(noisy, onehot, reduction="none").sum(-1)  # [B, K]
        loss = (per_label * valid).sum() / valid.sum().clamp_min(1)
        q = posterior(annotations, self.confusion, self.prior, torch.log_softmax(logits.detach(), 1))
        if self.training and step >= self.warmup_steps:
            self.confusion.lerp_(estimate_confusion(annotations, q), self.momentum)
            self.prior.lerp_(q.mean(0), self.momentum)
        return loss, q


@register("objectives", "weak_ova")
class WeakOVA(Classifier):
    """One-vs-all sigmoid classifier trained on K inaccurate labels per row (the ``annotations``
    column, ``-1`` = missing): ``1/(nK) sum_i sum_k L(f(x_i), y_i^k)`` with ``L`` the one-vs-all
    binomial loss summed over classes (see the module docstring for the exact formula).

    labels: how the K labels become targets — ``pooled`` (the formula), ``soft_vote`` (one soft label
        per row), ``dawid_skene`` (posterior of Dawid–Skene EM on the label matrix), ``crowd_layer``
        (annotator confusion matrices learnt jointly with the classifier).
    head_hidden: width of a hidden layer in the head (default: a linear head).
    view: a registered view (e.g. ``weak``) applied to ``x`` before the encoder; null for none.
    em_iterations: Dawid–Skene EM iterations (``dawid_skene``).
    init_accuracy, warmup_steps, momentum: the ``crowd_layer``'s initial confusion diagonal, steps
        before its confusion matrices start moving, and their moving-average rate.
    """

    def __init__(self, ctx: ObjectiveContext, *,
                 labels: Literal["pooled", "soft_vote", "dawid_skene", "crowd_layer"] = "pooled",
                 head_hidden: Optional[Count] = None, view: Optional[str] = None, em_iterations: Count = 20,
                 init_accuracy: OpenProbability = 0.5, warmup_steps: NonNegativeInt = 200, momentum: PositiveProbability = 0.05):
        super().__init__()
        C = ctx.info.num_classes
        if not C:
            raise ConfigError(f"{ctx.path}.name", f"dataset '{ctx.info.name}' has no class labels to learn")
        train = ctx.data.train if ctx.data is not None else None
        if train is None or "annotations" not in train:
            raise ConfigError(f"{ctx.path}.name", f"'weak_ova' needs K labels per row (an 'annotations' column): "
                                                  f"set data.annotators, or give the csv dataset several label_columns")
        ann = train["annotations"]
        if ann.dim() != 2 or ann.shape[1] == 0:
            raise ConfigError(f"{ctx.path}.name", f"the 'annotations' column must be [N, K>0], got {tuple(ann.shape)}")
        bad = (ann < -1) | (ann >= C)
        if bad.any():
            row, k = (int(v) for v in torch.nonzero(bad)[0])
            raise ConfigError("data", f"training row {row}, annotation {k}: label {int(ann[row, k])} is outside "
                                      f"[0, {C}) (-1 = missing)")
        if view is not None:
            registry("views").get(view, f"{ctx.path}.view")
        self.view = view
        self.head = linear_head(ctx.encoder.out_dim, C, head_hidden)
        self.label_model = {
            "pooled": lambda: Pooled(),
            "soft_vote": lambda: SoftVote(),
            "dawid_skene": lambda: DawidSkeneTargets(ann, C, em_iterations),
            "crowd_layer": lambda: CrowdLayer(ann.shape[1], C, init_accuracy, warmup_steps, momentum),
        }[labels]()
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def streams(self):
        # rows with at least one label (their majority vote ``y`` is >= 0)
        return {"labeled": StreamSpec("labeled", views=(self.view,) if self.view else None)}

    def logits(self, x, encoder):
        return self.head(encoder(x))

    def forward(self, batch, encoder, player="model"):
        b = batch["labeled"]
        x = b["views"][0] if self.view else b["x"]
        logits = self.logits(x, encoder)
        loss, targets = self.label_model(logits.float(), b["annotations"], int(self.step))
        metrics = {"vote_agreement": (logits.argmax(1) == b["y"]).float().mean()}  # y: majority vote
        if "y_true" in b:  # diagnostics only: how clean the targets are
            metrics["target_accuracy"] = (targets.argmax(1) == b["y_true"]).float().mean()
        return Output(loss, metrics)

    def after_step(self, step, encoder):
        self.step.fill_(step + 1)

    def final_metrics(self) -> dict:
        model = self.label_model
        if not hasattr(model, "confusion"):
            return {}
        acc = annotator_accuracy(model.confusion, model.prior)
        return {f"annotator_{k}_accuracy": float(a) for k, a in enumerate(acc)}
