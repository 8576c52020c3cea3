"""Frozen-feature probes at the end of training: a linear probe and a k-NN classifier."""
from __future__ import annotations

from typing import Literal

from ..errors import ConfigError
from ..evaluation import probe_metrics
from ..registry import register
from .base import Reporter, ReporterContext, RunContext, features


@register("reporters", "probe")
class Probe(Reporter):
    """Fits a linear probe and a cosine k-NN on the frozen features of the training rows (their true labels
    ``y_true`` where labels are hidden: used to evaluate only, never to train) and scores them on the test
    split, with all labels and with ``labels_per_class`` (see :func:`sslkit.evaluation.probe_metrics`).
    Needs class labels.

    features: ``auto`` (an objective's latent code, e.g. a VAE's posterior means, when it has one, else the
    encoder's output), ``encoder`` or ``latent``. labels_per_class: size per class of the few-label probe.
    k: k-NN neighbours.
    """

    def __init__(self, ctx: ReporterContext, *, features: Literal["auto", "encoder", "latent"] = "auto",
                 labels_per_class: int = 5, k: int = 20):
        super().__init__(ctx)
        if labels_per_class < 1 or k < 1:
            raise ConfigError(f"{ctx.path}.labels_per_class", "labels_per_class and k must be at least 1")
        self.features, self.labels_per_class, self.k = features, labels_per_class, k

    def report(self, run: RunContext) -> dict:
        data = run.data
        if not data.info.num_classes or not len(data.test):
            return {}
        train_y = data.train.columns.get("y_true", data.train.columns["y"])
        return probe_metrics(features(run, "train", self.features), train_y, features(run, "test", self.features),
                             data.test.columns["y"], labels_per_class=self.labels_per_class, seed=run.seed, k=self.k)
