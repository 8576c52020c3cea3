"""``reconstructions.png``: test images next to an autoencoder's reconstructions."""
from __future__ import annotations

import torch

from ..objectives.base import batched
from ..plots import save_image_grid
from ..registry import register
from .base import Reconstructor, Reporter, RunContext


def reconstructions(run: RunContext, obj) -> torch.Tensor:
    """``obj.reconstruct`` of the whole test split (float32, CPU), computed once per run context."""
    def compute():
        parts = [obj.reconstruct(b["x"].float(), run.encoder).float().cpu()
                 for b in batched(run.data.test, run.batch_size, run.device, columns=("x",))]
        return torch.cat(parts) if parts else torch.zeros(0)

    return run.cached(("reconstructions", id(obj)), compute)


@register("reporters", "reconstructions")
class Reconstructions(Reporter):
    """Draws the first 50 test images (odd rows) and their reconstructions by the first autoencoding
    objective (even rows, e.g. a VAE's ``E[x | mu(x)]``) into ``reconstructions.png``. Images only."""

    needs = (Reconstructor, "reconstructs its inputs (vae)")

    def report(self, run: RunContext) -> dict:
        if run.run_dir is None or run.data.info.modality != "image" or len(run.data.test) < 50:
            return {}
        _, obj = self.objective(run)
        x = run.data.test.columns["x"][:50].float()
        recon = reconstructions(run, obj)[:50]
        pairs = torch.stack([x.reshape(5, 10, *x.shape[1:]), recon.reshape(5, 10, *x.shape[1:])], 1)
        save_image_grid(pairs.reshape(100, *x.shape[1:]), run.file("reconstructions.png"),
                        "test images (odd rows) and their reconstructions E[x|mu(x)] (even rows)")
        return {}
