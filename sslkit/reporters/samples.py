"""``samples.png``: samples of a generative objective."""
from __future__ import annotations

from ..errors import ConfigError
from ..plots import save_image_grid, save_scatter
from ..registry import register
from .base import Reporter, ReporterContext, RunContext, Sampler, cached_samples


@register("reporters", "samples")
class Samples(Reporter):
    """Draws ``num`` samples of the first generative objective (seed ``seed + 1``) into ``samples.png``: an
    image grid, or for tabular rows a scatter of the first two columns over the training data.

    num: how many samples are drawn (images: at most 100 are shown).
    """

    needs = (Sampler, "generates samples (vae, gan)")

    def __init__(self, ctx: ReporterContext, *, num: int = 100):
        super().__init__(ctx)
        if num < 1:
            raise ConfigError(f"{ctx.path}.num", f"must be at least 1, got {num}")
        self.num = num

    def report(self, run: RunContext) -> dict:
        if run.run_dir is None:
            return {}
        _, obj = self.objective(run)
        samples, _ = cached_samples(run, obj, self.num)
        if run.data.info.modality == "image":
            save_image_grid(samples[:100], run.file("samples.png"), obj.sample_title)
        else:
            save_scatter(run.data.train.columns["x"], samples, run.file("samples.png"), obj.sample_title)
        return {}
