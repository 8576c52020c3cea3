"""``samples_by_code.png``: an InfoGAN's samples, one row per categorical code."""
from __future__ import annotations

from ..plots import save_image_grid
from ..registry import register
from .base import CodeSampler, Reporter, RunContext


@register("reporters", "samples_by_code")
class SamplesByCode(Reporter):
    """Draws 10 samples per code of the first objective with a categorical code, the same noise in each
    column, into ``samples_by_code.png`` (what the code alone changes). Images only; nothing without a code."""

    def report(self, run: RunContext) -> dict:
        found = [o for _, o in run.objectives(CodeSampler) if o.code_size]
        if run.run_dir is None or not found or run.data.info.modality != "image":
            return {}
        obj = found[0]
        grid = obj.code_grid(10, run.device, run.seed + 2).float().cpu()
        save_image_grid(grid, run.file("samples_by_code.png"), ncol=10,
                        row_labels=[f"c = {k}" for k in range(obj.code_size)],
                        title="InfoGAN: one row per categorical code, same z in each column")
        return {}
