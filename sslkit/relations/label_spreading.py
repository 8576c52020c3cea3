"""Label spreading over the whole training set, on a fixed representation of the inputs: the classical
graph method as a relation, computed once."""
from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
import torch

from ..data import LazyColumn, TensorData
from ..errors import ConfigError
from ..registry import register
from ..schema import Count, OpenProbability, Positive, Probability
from ..text.bag_of_words import bag_of_words
from .base import Relation, RelationContext, RelationInput, Targets, confidence_mask


MAX_INPUT_BYTES = 2 << 30  # images or rows held whole for the graph, as float32


@register("relations", "label_spreading")
class LabelSpreadingRelation(Relation):
    """Targets from scikit-learn's ``LabelSpreading`` (Zhou et al. 2004) fitted once, when the objective is
    built, on every training row: the labeled rows seed the graph and every row whose label is hidden
    gets the spread distribution ``p``; a batch's targets are looked up by its rows' indices
    (:attr:`RelationInput.rows`). The graph is built on the inputs, which do not change while the
    student trains, so one fit over the whole set is what a per-step graph over the whole set would
    give, at the cost of one. Rows of text are represented by their words' TF-IDF
    (:func:`~sslkit.text.bag_of_words.bag_of_words`), other rows by their flattened values. A labeled
    row's target is its own label. Weight
    ``1[max_c p_c >= threshold]``; a row the labels never reach gets a uniform ``p`` and weight 0.

    Where :class:`~sslkit.relations.propagation.Propagation` spreads labels over one step's batch in
    the student's feature space (the features improve as it trains), this relation brings in a second,
    fixed view of the data: for text, which words a document uses, against the transformer's
    contextual features (co-training's two views, Blum & Mitchell 1998).

    kernel: ``knn`` (a k-nearest-neighbour connectivity graph) or ``rbf``. k: the rows of each row's
    neighbourhood, itself included (``knn``; scikit-learn's ``n_neighbors``). gamma: the ``rbf``
    kernel's ``exp(-gamma ||u - v||^2)``. alpha: how far labels spread in (0, 1) (scikit-learn's
    default 0.2 keeps them near their seeds). max_iter, tol: the spreading iterations and their
    stopping tolerance. threshold: confidence of ``p`` needed to use a row.
    """

    reads_weak_view = False  # targets are looked up by row: the objective need not encode a weak view
    reads_batch = False  # a row's target is fixed by the fit over the training rows

    def __init__(self, ctx: RelationContext, *, kernel: Literal["knn", "rbf"] = "knn", k: Count = 10,
                 gamma: Positive = 20.0, alpha: OpenProbability = 0.2, max_iter: Count = 1000,
                 tol: Positive = 1e-3, threshold: Probability = 0.0):
        super().__init__()
        if ctx.train is None or "y" not in ctx.train:
            raise ConfigError(f"{ctx.path}.name", "label_spreading needs the training rows and their labels "
                                                  "(it is fitted on the whole training set)")
        from sklearn.semi_supervised import LabelSpreading

        points = self.represent(ctx.train, ctx.info, ctx.path)
        y = ctx.train["y"].numpy()
        C = ctx.info.num_classes
        model = LabelSpreading(kernel=kernel, n_neighbors=k, gamma=gamma, alpha=alpha, max_iter=max_iter, tol=tol)
        with warnings.catch_warnings():
            # rows the labels never reach are 0/0 in scikit-learn's normalisation (NaN, handled below);
            # not converging within max_iter is left to scikit-learn's ConvergenceWarning
            warnings.filterwarnings("ignore", "invalid value encountered in divide", RuntimeWarning)
            model.fit(points, y)
        spread = np.zeros((len(y), C))
        spread[:, model.classes_[model.classes_ >= 0]] = model.label_distributions_[:, model.classes_ >= 0]
        probs = torch.as_tensor(spread, dtype=torch.float32)
        reached = torch.isfinite(probs).all(1) & (probs.sum(1) > 0)
        probs = torch.where(reached[:, None], probs.nan_to_num(0.0), torch.full_like(probs, 1.0 / C))
        labeled = torch.as_tensor(y >= 0)
        probs[labeled] = torch.nn.functional.one_hot(torch.as_tensor(y[y >= 0]), C).float()
        weight = (reached | labeled).float() * confidence_mask(probs, threshold)
        # derived from the data at build time (deterministic), so not checkpointed
        self.register_buffer("probs", probs, persistent=False)
        self.register_buffer("weight", weight, persistent=False)
        self.path = ctx.path

    @staticmethod
    def represent(rows: TensorData, info, path: str):
        """The fixed representation the graph is built on: TF-IDF for text, flattened values otherwise (images
        read from disk or stored as bytes are read whole, as float32, within :data:`MAX_INPUT_BYTES`)."""
        x = rows["x"]
        if info.modality == "text":
            return bag_of_words(x, info.tokenizer.vocab_size, info.tokenizer.special_ids)
        size = len(x) * math.prod(info.input_shape) * 4
        if size > MAX_INPUT_BYTES:
            raise ConfigError(f"{path}.name", f"label_spreading holds every training row's inputs in memory: {len(x)} "
                                              f"rows of shape {tuple(info.input_shape)} are {size / 2**30:.1f} GiB as "
                                              f"float32, over its {MAX_INPUT_BYTES / 2**30:.0f} GiB limit (use "
                                              f"propagation, which works on each batch)")
        x = x[torch.arange(len(x))] if isinstance(x, LazyColumn) else x
        return x.flatten(1).float().numpy()

    @torch.no_grad()
    def forward(self, inp: RelationInput) -> Targets:
        if inp.rows is None:
            raise ValueError(f"{self.path}: label_spreading looks its targets up by training row, and this "
                             f"batch has no `row` column")
        return Targets(self.probs[inp.rows], self.weight[inp.rows])
