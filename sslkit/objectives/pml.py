"""Any pytorch-metric-learning loss from a recipe, wrapped for two-view self-supervision.

Each row of the batch is augmented twice; the ``2B`` projected views get "labels" that say which
views come from the same row (``[0..B-1, 0..B-1]``, as PML's ``SelfSupervisedLoss(symmetric=True)``
builds them), so every pair/triplet/tuple loss of the library sees the two views of a row as
positives and all other views as negatives. Losses that compare two embedding sets directly
(``VICRegLoss``) get ``(z1, ref_emb=z2)`` instead.
"""
from __future__ import annotations

import inspect
from typing import Annotated, Literal, Optional

import torch
from pytorch_metric_learning import distances, losses

from ..data.stream import StreamSpec
from ..distributed import gather_rows
from ..errors import ConfigError
from ..registry import register
from ..schema import Count, Part
from .base import ObjectiveContext, Output
from .contrastive import _pml_part, build_miner, build_reducer, view_pair_labels
from .projection import ProjectionHead, ProjectionKind
from .representation import RepresentationObjective

# losses that take the two views as (embeddings, ref_emb) and no labels
PAIRED_VIEW_LOSSES = {"VICRegLoss"}


@register("objectives", "pml")
class PML(RepresentationObjective):
    """A pytorch-metric-learning loss ``loss`` (class name, e.g. ``NTXentLoss``, ``SupConLoss``,
    ``VICRegLoss``, ``TripletMarginLoss``, ``MultiSimilarityLoss``) built with ``loss_args``, on
    projected features of two views of every row.

    loss, loss_args: the PML loss class and its keyword arguments (e.g. ``{temperature: 0.1}``).
    distance, distance_args: a PML distance by class name (e.g. ``CosineSimilarity``); default the
        loss's own.
    reducer, reducer_args: a PML reducer by class name; default the loss's own.
    miner, miner_args: a PML miner by class name, applied to the views' embeddings and labels.
    pairs: ``views`` (self-supervised: only a row's two views are positives) or ``labels`` (labeled
        rows of the same class are positives too; unlabeled rows keep their own id).
    views: the two registered views made of each row.
    projection, projection_hidden, projection_dim: the projection head (``mlp``, ``linear``, ``none``);
        ``embedding_size`` / ``num_classes`` arguments of the loss default to the projection size and
        the data's class count.
    probe_labels_per_class, probe_k, embedding_plot: frozen-feature evaluation of the encoder.
    """

    def __init__(self, ctx: ObjectiveContext, *, loss: str = "NTXentLoss", loss_args: dict = {},
                 distance: Optional[str] = None, distance_args: dict = {}, reducer: Optional[str] = None,
                 reducer_args: dict = {}, miner: Optional[str] = None, miner_args: dict = {},
                 pairs: Literal["views", "labels"] = "views",
                 views: list[Annotated[dict, Part("views")]] = ("crop", "crop"),
                 projection: ProjectionKind = "mlp", projection_hidden: Count = 256, projection_dim: Count = 64,
                 probe_labels_per_class: Count = 5, probe_k: Count = 20, embedding_plot: bool = True):
        super().__init__(ctx, probe_labels_per_class, probe_k, embedding_plot)
        if len(views) != 2:
            raise ConfigError(f"{ctx.path}.views", f"needs exactly two views, got {len(views)}")
        if pairs == "labels" and not ctx.info.num_classes:
            raise ConfigError(f"{ctx.path}.pairs", f"dataset '{ctx.info.name}' has no labels for supervised pairs")
        self.pairs, self.views, self.num_classes = pairs, tuple(views), ctx.info.num_classes
        self.paired = loss in PAIRED_VIEW_LOSSES
        if self.paired and (pairs == "labels" or miner):
            raise ConfigError(f"{ctx.path}.loss", f"{loss} compares the two views directly: it takes no labels "
                                                  f"or miner")
        self.head = ProjectionHead(ctx.encoder.out_dim, projection, projection_hidden, projection_dim, ctx.path)
        args = dict(loss_args)
        self.source = "all"
        cls = getattr(losses, loss, None)
        if cls is not None and inspect.isclass(cls):
            sig = inspect.signature(cls.__init__).parameters
            if "embedding_size" in sig:
                args.setdefault("embedding_size", self.head.out_dim)
            if "num_classes" in sig:
                if pairs != "labels":
                    raise ConfigError(f"{ctx.path}.loss", f"{loss} learns one proxy per class: use pairs: labels")
                args.setdefault("num_classes", self.num_classes)
                self.source = "labeled"  # class proxies need a class for every row
        if distance is not None:
            args["distance"] = _pml_part(distances, distance, distance_args, f"{ctx.path}.distance", "distance")
        red = build_reducer(reducer, reducer_args, ctx.path)
        if red is not None:
            args["reducer"] = red
        self.loss_fn = _pml_part(losses, loss, args, f"{ctx.path}.loss", "loss")
        self.miner = build_miner(miner, miner_args, ctx.path)

    def streams(self):
        return {"all": StreamSpec(self.source, views=self.views)}

    def forward(self, batch, encoder, player="model"):
        b = batch["all"]
        v1, v2 = b["views"]
        B = len(v1)
        z = self.head(encoder(torch.cat([v1, v2])))
        # the global batch's views (gathered with gradient; see sslkit.distributed.gather_rows) rather than PML's
        # DistributedLossWrapper, which returns world_size times the loss and puts this rank's rows first
        z1, z2 = gather_rows(z[:B]), gather_rows(z[B:])
        if self.paired:
            return Output(self.loss_fn(z1, ref_emb=z2))
        z = torch.cat([z1, z2])
        y = gather_rows(b["y"]) if self.pairs == "labels" else None
        labels = view_pair_labels(len(z1), y, self.num_classes, z.device)
        indices = self.miner(z, labels) if self.miner is not None else None
        return Output(self.loss_fn(z, labels, indices))
