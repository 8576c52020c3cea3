"""Semi-supervised learning with pseudo-labels from a pluggable relation ``R(z, X)``."""
from __future__ import annotations

import warnings
from typing import Annotated, Literal, Optional

import torch
import torch.nn.functional as F

from ..data.base import ROW
from ..data.stream import StreamSpec
from ..distributed import all_sum, gather_rows, my_rows, world_size
from ..errors import ConfigError
from ..registry import register
from ..relations.base import RelationContext, RelationInput
from ..schema import Count, NonNegative, NonNegativeInt, Part, Positive, build
from .base import Classifier, ObjectiveContext, Output
from .supervised import linear_head

RelationSpec = Annotated[dict, Part("relations", default="confidence")]
WeakView = Annotated[dict, Part("views", default="weak")]
StrongView = Annotated[dict, Part("views", default="strong")]


@register("objectives", "pseudo_label")
class PseudoLabel(Classifier):
    """The seed's semi-supervised objective with a classification head ``f``::

        (1/n) sum_i CE(f(x_i), y_i) + lambda_u * r(t) * (1/m) sum_j w_j L'(f(strong(z_j)), R(z_j, X))

    over a labeled batch ``X = {(x_i, y_i)}`` of ``n`` rows and an unlabeled batch of
    ``m = unlabeled_ratio * n`` rows ``z_j`` drawn from every training row (hidden labels included).
    The relation ``R`` (registered under ``relations``) sees the weak view of ``z`` through the
    student and the features of ``X``, and returns a target distribution ``p_j`` and a weight
    ``w_j`` (0 masks ``z_j`` out). ``L'`` is cross-entropy with the hard label ``argmax p_j``
    (``loss: hard``) or with ``p_j`` itself (``loss: soft``). Labeled, weak and strong inputs go
    through the encoder in one batch (shared BatchNorm statistics, as in FixMatch); a relation whose
    ``reads_weak_view`` is False (its targets are looked up by row) gets no weak view of ``z``, which
    is then neither drawn nor encoded. ``r(t)`` ramps
    linearly from 0 to 1 over ``rampup_steps`` optimizer steps.

    Logged every step: ``mask_rate`` (fraction of ``z`` with ``w > 0``) and ``pseudo_accuracy``
    (pseudo-labels of the kept ``z`` against the hidden truth ``y_true`` — a diagnostic, never used
    for training — over the rows whose truth is known, ``y_true >= 0``; not reported when none is). Final metrics add the run's ``mean_mask_rate`` and ``pseudo_label_accuracy``, so a
    threshold that masks everything shows as ``mean_mask_rate: 0`` (and a warning). For 2-D tabular
    data, the ``decision_boundary`` reporter (a default) draws ``decision_boundary.png``.

    relation: the relation R (default ``confidence``). loss: ``hard`` or ``soft`` targets.
    unlabeled_ratio: mu, unlabeled rows per labeled row in a step (FixMatch: 7).
    unlabeled_weight: lambda_u. rampup_steps: steps to ramp lambda_u up (0: none).
    weak / strong: the views for the relation's input and for the trained prediction.
    augment_labeled: apply the weak view to the labeled batch too.
    head_hidden: width of a hidden layer in the head (default: linear).
    """

    reporters = ("decision_boundary",)

    def __init__(self, ctx: ObjectiveContext, *, relation: RelationSpec = "confidence",
                 loss: Literal["hard", "soft"] = "hard", unlabeled_ratio: Positive = 7.0,
                 unlabeled_weight: NonNegative = 1.0, rampup_steps: NonNegativeInt = 0, weak: WeakView = "weak",
                 strong: StrongView = "strong", augment_labeled: bool = True, head_hidden: Optional[Count] = None):
        super().__init__()
        if not ctx.info.num_classes:
            raise ConfigError(f"{ctx.path}.name", f"dataset '{ctx.info.name}' has no class labels to learn")
        self.path, self.loss_kind = ctx.path, loss
        self.mu, self.lambda_u, self.rampup_steps = unlabeled_ratio, unlabeled_weight, rampup_steps
        self.views, self.augment_labeled = (weak, strong), augment_labeled
        self.head = linear_head(ctx.encoder.out_dim, ctx.info.num_classes, head_hidden)
        labeled = ctx.data.labeled if ctx.data is not None else None
        train = ctx.data.train if ctx.data is not None else None
        rctx = RelationContext(ctx.info, ctx.encoder, self.head, labeled, f"{ctx.path}.relation", train)
        self.relation = build("relations", relation, rctx, path=f"{ctx.path}.relation")
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        # running sums over the run: mask rate, forward passes, correct kept pseudo-labels, kept samples
        # with a known true label
        self.register_buffer("totals", torch.zeros(4, dtype=torch.float64))

    def streams(self):
        # a relation that never looks at the weak view (its targets are looked up by row) gets no weak view
        unlabeled_views = self.views if self.relation.reads_weak_view else self.views[1:]
        return {
            "labeled": StreamSpec("labeled", 1.0, (self.views[0],) if self.augment_labeled else None),
            "unlabeled": StreamSpec("all", self.mu, unlabeled_views),
        }

    def logits(self, x, encoder):
        return self.head(encoder(x))

    def unlabeled_loss(self, logits: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Per-sample ``L'``: cross-entropy with ``argmax probs`` (hard) or with ``probs`` (soft)."""
        if self.loss_kind == "hard":
            return F.cross_entropy(logits, probs.argmax(1), reduction="none")
        return -(probs * F.log_softmax(logits.float(), dim=1)).sum(1)

    def forward(self, batch, encoder, player="model"):
        lab, unl = batch["labeled"], batch["unlabeled"]
        x_lab = lab["views"][0] if self.augment_labeled else lab["x"]
        *weak, strong = unl["views"]  # no weak view when the relation does not read it
        n, m = len(x_lab), sum(len(w) for w in weak)
        feats = encoder(torch.cat([x_lab, *weak, strong]))
        logits = self.head(feats)
        sup = F.cross_entropy(logits[:n], lab["y"])
        weak_inputs = ((weak[0], logits[n:n + m].detach().float(), feats[n:n + m].detach().float()) if weak
                       else (None, None, None))
        inp = RelationInput(*weak_inputs, x_lab, feats[:n].detach().float(), lab["y"], unl.get(ROW))
        # the relation sees the global batch on every rank (a graph over all of it; stateful relations then
        # update one state identically everywhere) and each rank trains on its own rows' targets
        coupled = self.relation.reads_batch
        if coupled:
            inp = RelationInput(*(None if t is None else gather_rows(t) for t in inp))
        # targets in full precision: graph solves and thresholds are not bf16 material
        with torch.autocast(strong.device.type, enabled=False):
            targets = self.relation(inp)
        mine = my_rows if coupled else (lambda t: t)
        weight = mine(targets.weight.detach())
        unsup = (weight * self.unlabeled_loss(logits[n + m:], mine(targets.probs.detach()))).mean()
        ramp = min(1.0, float(self.steps_done) / self.rampup_steps) if self.rampup_steps else 1.0
        loss = sup + self.lambda_u * ramp * unsup

        # the diagnostics are counted over the global batch: every rank keeps the same running totals
        probs = mine(targets.probs)
        kept = weight > 0
        # scored only where the truth is known: rows of a user's data with an empty label have y_true -1
        judged = kept & (unl["y_true"] >= 0)
        correct = (probs.argmax(1) == unl["y_true"]) & judged
        n_kept, n_correct, n_judged = all_sum(torch.stack([kept.sum(), correct.sum(), judged.sum()]).double())
        mask_rate = n_kept / (len(weight) * world_size())
        if self.training:
            self.totals += torch.stack([mask_rate, torch.ones_like(mask_rate), n_correct, n_judged])
        metrics = {"supervised_loss": sup.detach(), "unlabeled_loss": unsup.detach(), "mask_rate": mask_rate,
                   "accuracy": (logits[:n].argmax(1) == lab["y"]).float().mean()}
        if n_judged > 0:  # undefined when every sample is masked out or none has a known label
            metrics["pseudo_accuracy"] = n_correct / n_judged
        return Output(loss, metrics)

    def after_step(self, step, encoder):
        self.steps_done += 1
        self.relation.after_step(encoder, self.head)

    def final_metrics(self) -> dict:
        mask_sum, passes, correct, judged = self.totals.tolist()
        out = {}
        if passes:
            out["mean_mask_rate"] = mask_sum / passes
            if judged:
                out["pseudo_label_accuracy"] = correct / judged
            elif not mask_sum:
                warnings.warn(f"{self.path}.relation: every unlabeled sample was masked out for the whole run "
                              f"(mean_mask_rate 0), so only the labeled rows were learned from; lower the "
                              f"relation's threshold", stacklevel=2)
        return out
