"""Shared evaluation for objectives that learn a representation without (necessarily) labels:
linear-probe and k-NN accuracy of the frozen encoder's features, and a t-SNE figure."""
from __future__ import annotations


import torch

from ..distributed import gather_shards, shard
from ..evaluation import extract_features, probe_metrics
from ..schema import Count
from .base import Objective, ObjectiveContext


class RepresentationObjective(Objective):
    """Base class adding frozen-feature evaluation of the *encoder* (never the projection head).

    ``evaluate`` fits a linear probe and a k-NN classifier on the training rows' features with their
    true labels (``y_true``: used for the probe only, never for training) and scores them on the test
    split; the ``embedding`` reporter draws ``embedding.png`` (t-SNE of the test features).

    probe_labels_per_class: size per class of the few-label probe. probe_k: k-NN neighbours.
    embedding_plot: name the ``embedding`` reporter as a default (``embedding.png`` at the end).
    """

    reporters = ("embedding",)

    def __init__(self, ctx: ObjectiveContext, probe_labels_per_class: Count = 5, probe_k: Count = 20,
                 embedding_plot: bool = True):
        super().__init__()
        self.probe_labels_per_class, self.probe_k, self.seed = probe_labels_per_class, probe_k, ctx.seed
        self.embedding_plot = embedding_plot
        self.class_names = list(ctx.info.class_names or [])

    def _labels(self, data, column="y_true"):
        y = data.columns.get(column, data.columns.get("y"))
        return None if y is None or not (y >= 0).any() else y

    @torch.no_grad()
    def evaluate(self, data, encoder, batch_size, device) -> dict:
        if len(data.test) == 0:
            return {}
        train_y, test_y = self._labels(data.train), self._labels(data.test, "y")
        if train_y is None or test_y is None:  # an unlabeled corpus: nothing to probe
            return {}
        train = data.train
        if (train_y < 0).any():  # only labeled rows enter the probe: STL-10's 100,000 unlabeled are skipped
            train = train.subset(torch.nonzero(train_y >= 0).flatten())
            train_y = train_y[train_y >= 0]
        # each rank encodes its share of the rows; every rank fits the (cheap) probes on all of them
        train_f = gather_shards(extract_features(encoder, shard(train), batch_size, device), len(train))
        test_f = gather_shards(extract_features(encoder, shard(data.test), batch_size, device), len(data.test))
        return probe_metrics(train_f, train_y, test_f, test_y, labels_per_class=self.probe_labels_per_class,
                             seed=self.seed, k=self.probe_k)

    def default_reporters(self) -> tuple:
        return self.reporters if self.embedding_plot else ()
