"""``embedding.png``: a t-SNE map of frozen test features coloured by class."""
from __future__ import annotations

from typing import Literal, Optional

import torch

from ..evaluation import embedding_figure
from ..registry import register
from .base import Reporter, ReporterContext, RunContext, features


@register("reporters", "embedding")
class Embedding(Reporter):
    """Draws a 2-D t-SNE of the test split's frozen features, coloured by class, into ``embedding.png``
    (nothing with fewer than 5 test rows).

    features: ``encoder`` (the encoder's output), ``latent`` (an objective's latent code) or ``auto``
    (the latent code when an objective has one). title: the figure's title (null: says which features).
    """

    file = "embedding.png"

    def __init__(self, ctx: ReporterContext, *, features: Literal["auto", "encoder", "latent"] = "encoder",
                 title: Optional[str] = None):
        super().__init__(ctx)
        self.features, self.title = features, title

    def report(self, run: RunContext) -> dict:
        if run.run_dir is None or len(run.data.test) < 5:
            return {}
        feats = features(run, "test", self.features)
        y = run.data.test.columns.get("y", torch.full((len(feats),), -1))
        self.draw(run, feats, y)
        return {}

    def default_title(self, run: RunContext) -> str:
        return f"t-SNE of the encoder's features ({', '.join(run.model.names)}; test split)"

    def draw(self, run: RunContext, feats, y) -> None:
        embedding_figure(feats, y, run.file(self.file), seed=run.seed,
                         class_names=run.data.info.class_names or None, title=self.title or self.default_title(run))
