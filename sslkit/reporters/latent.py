"""``latent.png``: an objective's latent codes of the test split (e.g. a VAE's posterior means)."""
from __future__ import annotations

from typing import Optional

from ..plots import pyplot
from ..registry import register
from .base import LatentModel, ReporterContext, RunContext
from .embedding import Embedding


@register("reporters", "latent")
class Latent(Embedding):
    """Draws the test split's latent codes of the first objective that has them into ``latent.png``: as
    they are when the code is 2-D, else as a t-SNE map; coloured by class.

    title: the figure's title (null: names the objective).
    """

    needs = (LatentModel, "has a latent code (vae)")

    file = "latent.png"

    def __init__(self, ctx: ReporterContext, *, title: Optional[str] = None):
        super().__init__(ctx, features="latent", title=title)

    def default_title(self, run: RunContext) -> str:
        name, _ = self.objective(run)
        return f"t-SNE of the {name.upper()} posterior means (test split)"

    def draw(self, run: RunContext, feats, y) -> None:
        name, obj = self.objective(run)
        if obj.latent_dim != 2:
            return super().draw(run, feats, y)
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 5))
        sc = ax.scatter(feats[:, 0], feats[:, 1], c=y, s=8, cmap="tab10")
        fig.colorbar(sc, ax=ax)
        ax.set_xlabel("mu_1")
        ax.set_ylabel("mu_2")
        ax.set_title(self.title or f"{name.upper()} posterior means (test split)")
        fig.tight_layout()
        fig.savefig(run.file(self.file), dpi=100)
        plt.close(fig)
