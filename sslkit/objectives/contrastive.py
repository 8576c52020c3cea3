"""The margin contrastive loss of the seed notes, built on pytorch-metric-learning's pair machinery.

For a pair of inputs with similarity indicator ``m`` (1: similar, 0: dissimilar) and margin ``eps``::

    L_c(x_i, x_j) = m * ||f(x_i) - f(x_j)||^2 + (1 - m) * max(0, eps - ||f(x_i) - f(x_j)||)^2

(Hadsell, Chopra & LeCun 2006). pytorch-metric-learning's own ``ContrastiveLoss`` uses un-squared
hinges ``relu(d - pos_margin) + relu(neg_margin - d)``, which is a different function, so
:class:`MarginContrastiveLoss` is a ``BaseMetricLossFunction`` of its own: it takes PML's distances,
reducers, miners and ``indices_tuple`` unchanged.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Literal, Optional

import torch
from pytorch_metric_learning import distances, miners, reducers
from pytorch_metric_learning.losses import BaseMetricLossFunction
from pytorch_metric_learning.utils import common_functions as c_f
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from ..data.stream import StreamSpec
from ..distributed import gather_rows, my_rows, world_size
from ..errors import ConfigError, did_you_mean
from ..registry import register
from ..schema import Count, Part, Positive
from .base import ObjectiveContext, Output
from .projection import ProjectionHead, ProjectionKind
from .representation import RepresentationObjective


class MarginContrastiveLoss(BaseMetricLossFunction):
    """Per pair: ``d^2`` for a positive pair and ``max(0, margin - d)^2`` for a negative pair, where
    ``d`` is the pair's entry of ``distance(embeddings, ref_emb)`` (default: Euclidean distance between
    L2-normalised embeddings, ``LpDistance(p=2)``).

    Pairs come from ``labels`` (all positive and negative pairs of the batch, as PML does) or from
    ``indices_tuple`` (``(a1, p, a2, n)`` pairs or ``(a, p, n)`` triplets, e.g. a miner's output or an
    explicit pair list). The positive and negative terms are two sub-losses, each reduced by the
    reducer (default ``MeanReducer``: mean over positive pairs plus mean over negative pairs) and
    summed, as in PML's ``ContrastiveLoss``.

    margin: ``eps``, the distance beyond which a negative pair costs nothing.
    """

    def __init__(self, margin: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if self.distance.is_inverted:
            raise ValueError("MarginContrastiveLoss needs a distance (not a similarity): d grows with dissimilarity")
        self.margin = margin
        self.add_to_recordable_attributes(list_of_names=["margin"], is_stat=False)

    def _sub_loss_names(self):
        return ["pos_loss", "neg_loss"]

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        c_f.labels_or_indices_tuple_required(labels, indices_tuple)
        mat = self.distance(embeddings, ref_emb)
        if indices_tuple is None and type(self.reducer) is reducers.MultipleReducers and all(
                type(r) is reducers.MeanReducer for r in self.reducer.reducers.values()):
            return self._all_pairs_mean(mat, labels, ref_labels)
        a1, p, a2, n = lmu.convert_to_pairs(indices_tuple, labels, ref_labels)
        pos = mat[a1, p] ** 2 if len(a1) else 0
        neg = torch.relu(self.margin - mat[a2, n]) ** 2 if len(a2) else 0
        return {
            "pos_loss": {"losses": pos, "indices": (a1, p), "reduction_type": "pos_pair"},
            "neg_loss": {"losses": neg, "indices": (a2, n), "reduction_type": "neg_pair"},
        }

    def _all_pairs_mean(self, mat, labels, ref_labels):
        """All pairs with mean reduction as masked sums over the distance matrix: the same value as
        the index route (``get_all_pairs_indices`` then gather), without materialising ~B^2 indices."""
        matches, diffs = lmu.get_matches_and_diffs(labels, ref_labels)
        out = {}
        for name, mask, term in (("pos_loss", matches.bool(), lambda d: d ** 2),
                                 ("neg_loss", diffs.bool(), lambda d: torch.relu(self.margin - d) ** 2)):
            # a sum over no pairs is 0; clamping the count avoids 0/0 without a host sync
            value = torch.where(mask, term(mat), mat.new_zeros(())).sum() / mask.sum().clamp(min=1)
            out[name] = {"losses": value, "indices": None, "reduction_type": "already_reduced"}
        return out


def view_pair_labels(batch_size: int, y: Optional[torch.Tensor] = None, num_classes: int = 0,
                     device=None) -> torch.Tensor:
    """Labels of the ``2B`` embeddings ``[views_1; views_2]`` that make PML form the right pairs.

    Without ``y`` each row is its own class (``[0..B-1, 0..B-1]``): only a row's two views are a
    positive pair. With ``y``, a labeled row takes its class (rows of one class are positives) and an
    unlabeled row (``y = -1``) the id ``num_classes + i``, unique to it.
    """
    ids = torch.arange(batch_size, device=device if y is None else y.device)
    if y is not None:
        ids = torch.where(y >= 0, y, num_classes + ids)
    return torch.cat([ids, ids])


def _pml_part(module, name: str, kwargs: dict, path: str, what: str):
    """Instantiate ``module.<name>(**kwargs)``, or raise a ConfigError naming ``path``."""
    known = [n for n in dir(module) if n[0].isupper() and not n.startswith("Base")]
    if name not in known:
        raise ConfigError(path, f"unknown pytorch-metric-learning {what} '{name}'{did_you_mean(name, known)} "
                                f"(known: {', '.join(known)})")
    try:
        return getattr(module, name)(**kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ConfigError(f"{path.rsplit('.', 1)[0]}.{what}_args" if "." in path else path,
                          f"{name}: {exc}") from None


def build_miner(name: Optional[str], kwargs: dict, path: str):
    """A pytorch-metric-learning miner by class name (e.g. ``PairMarginMiner``, ``BatchHardMiner``,
    ``MultiSimilarityMiner``), or None."""
    return None if name is None else _pml_part(miners, name, kwargs, f"{path}.miner", "miner")


def build_reducer(name: Optional[str], kwargs: dict, path: str):
    return None if name is None else _pml_part(reducers, name, kwargs, f"{path}.reducer", "reducer")


def read_pairs(spec, n_rows: int, path: str) -> torch.Tensor:
    """An explicit pair list as a ``[P, 3]`` long tensor ``(i, j, m)``: from a CSV file (header
    ``i,j,similar``) or an inline list of ``[i, j, m]``. ``i`` and ``j`` index training rows."""
    if isinstance(spec, str):
        f = Path(spec)
        if not f.is_file():
            raise ConfigError(path, f"pair file not found: {spec}")
        with f.open(newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows or [c.strip() for c in rows[0]] != ["i", "j", "similar"]:
            raise ConfigError(path, f"{spec}: the header must be 'i,j,similar'")
        where = [f"{spec} line {k + 2}" for k in range(len(rows) - 1)]
        rows = rows[1:]
    else:
        where = [f"{path}[{k}]" for k in range(len(spec))]
        rows = spec
    pairs = []
    for loc, row in zip(where, rows):
        try:
            i, j, m = (int(str(v).strip()) for v in row)
        except (TypeError, ValueError):
            raise ConfigError(loc, f"expected three integers i, j, similar; got {row!r}") from None
        if not (0 <= i < n_rows and 0 <= j < n_rows):
            raise ConfigError(loc, f"row index out of range [0, {n_rows}) in {row!r}")
        if m not in (0, 1):
            raise ConfigError(loc, f"similar must be 0 or 1, got {m}")
        pairs.append((i, j, m))
    if not pairs:
        raise ConfigError(path, "the pair list is empty")
    return torch.tensor(pairs, dtype=torch.long)


@register("objectives", "contrastive")
class Contrastive(RepresentationObjective):
    """The margin contrastive loss ``m d^2 + (1 - m) max(0, margin - d)^2`` on projected features
    ``z = g(f(x))`` (:class:`MarginContrastiveLoss`), self-supervised by default.

    pairs: where similar/dissimilar pairs come from. ``views``: two augmented views of the same row
        are similar, views of different rows dissimilar (no labels). ``labels``: rows of the same class
        are similar too (supervised; unlabeled rows still pair with their own other view).
        ``explicit``: pairs drawn uniformly from ``pair_list`` over training rows, ``batch_size`` per
        step (no views).
    margin: ``eps``. normalize: L2-normalise ``z`` before the distance (distances then lie in [0, 2]).
    views: the two registered views made of each row (e.g. ``[crop, crop]``; ``[simcse, simcse]``
        with a dropout encoder is unsupervised SimCSE).
    miner, miner_args: a pytorch-metric-learning miner by class name (hard-pair mining, e.g.
        ``PairMarginMiner`` with ``{pos_margin: 0.2, neg_margin: 0.8}``); it sees the same labels.
    reducer, reducer_args: a PML reducer by class name (default ``MeanReducer``).
    pair_list: for ``pairs: explicit``, a CSV file (header ``i,j,similar``) or a list of ``[i, j, m]``.
    projection, projection_hidden, projection_dim: the projection head (``mlp``, ``linear``, ``none``).
    probe_labels_per_class, probe_k, embedding_plot: frozen-feature evaluation (see
        :class:`RepresentationObjective`).
    """

    def __init__(self, ctx: ObjectiveContext, *, pairs: Literal["views", "labels", "explicit"] = "views",
                 margin: Positive = 1.0, normalize: bool = True,
                 views: list[Annotated[dict, Part("views")]] = ("crop", "crop"),
                 miner: Optional[str] = None, miner_args: dict = {}, reducer: Optional[str] = None,
                 reducer_args: dict = {}, pair_list: Optional[str | list] = None,
                 projection: ProjectionKind = "mlp", projection_hidden: Count = 256, projection_dim: Count = 64,
                 probe_labels_per_class: Count = 5, probe_k: Count = 20, embedding_plot: bool = True):
        super().__init__(ctx, probe_labels_per_class, probe_k, embedding_plot)
        if pairs != "explicit" and len(views) != 2:
            raise ConfigError(f"{ctx.path}.views", f"needs exactly two views, got {len(views)}")
        if pairs == "labels" and not ctx.info.num_classes:
            raise ConfigError(f"{ctx.path}.pairs", f"dataset '{ctx.info.name}' has no labels for supervised pairs")
        if (pairs == "explicit") != (pair_list is not None):
            raise ConfigError(f"{ctx.path}.pair_list", "give a pair list exactly when pairs is 'explicit'")
        self.pairs, self.views, self.num_classes = pairs, tuple(views), ctx.info.num_classes
        self.head = ProjectionHead(ctx.encoder.out_dim, projection, projection_hidden, projection_dim, ctx.path)
        self.loss_fn = MarginContrastiveLoss(
            margin=margin, distance=distances.LpDistance(p=2, normalize_embeddings=normalize),
            reducer=build_reducer(reducer, reducer_args, ctx.path))
        self.miner = build_miner(miner, miner_args, ctx.path)
        if pairs == "explicit":
            self._data = ctx.data  # a plain attribute, not a buffer: the listed pairs' rows stay out of checkpoints
            n_rows = len(ctx.data.train) if ctx.data is not None else 0
            self.register_buffer("pair_table", read_pairs(pair_list, n_rows, f"{ctx.path}.pair_list"),
                                 persistent=False)

    def streams(self):
        if self.pairs == "explicit":
            return {"all": StreamSpec("all")}
        source = "all"  # labels, when used, are read from y (hidden ones are -1)
        return {"all": StreamSpec(source, views=self.views)}

    def project(self, x, encoder):
        return self.head(encoder(x))

    def forward(self, batch, encoder, player="model"):
        b = batch["all"]
        if self.pairs == "explicit":
            return self._explicit(b, encoder)
        v1, v2 = b["views"]
        B = len(v1)
        z = self.project(torch.cat([v1, v2]), encoder)
        # every rank's rows: under torchrun the negatives (and a miner's pairs) are the global batch's
        z = torch.cat([gather_rows(z[:B]), gather_rows(z[B:])])
        y = gather_rows(b["y"]) if self.pairs == "labels" else None
        labels = view_pair_labels(len(z) // 2, y, self.num_classes, z.device)
        indices = self.miner(z, labels) if self.miner is not None else None
        loss = self.loss_fn(z, labels, indices)
        return Output(loss, self._pair_stats(z, labels))

    def _explicit(self, b, encoder):
        # draw a batch of listed pairs per step with the (seeded, checkpointed) global generator
        data = self._data.train
        # drawn for the global batch and split like its rows: the same pairs at any number of processes
        pick = my_rows(torch.randint(len(self.pair_table), (len(b["x"]) * world_size(),)))
        i, j, m = self.pair_table[pick].unbind(1)
        rows = data.fetch(torch.cat([i, j]))["x"].to(b["x"].device)
        z = self.project(rows, encoder)
        P = len(pick)
        # every rank's pairs (the positive and negative means are over the global batch's pairs)
        z, m = torch.cat([gather_rows(z[:P]), gather_rows(z[P:])]), gather_rows(m.to(z.device))
        P = len(m)
        left, right = torch.arange(P, device=z.device), torch.arange(P, 2 * P, device=z.device)
        pos, neg = m.bool(), ~m.bool()
        indices = (left[pos], right[pos], left[neg], right[neg])
        return Output(self.loss_fn(z, None, indices), {"similar_fraction": pos.float().mean()})

    @torch.no_grad()
    def _pair_stats(self, z, labels) -> dict:
        d = self.loss_fn.distance(z.detach().float())
        same = labels[:, None] == labels[None, :]
        same.fill_diagonal_(False)
        diff = labels[:, None] != labels[None, :]
        return {"pos_distance": d[same].mean(), "neg_distance": d[diff].mean()}
