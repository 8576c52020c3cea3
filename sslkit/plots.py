"""Figures saved as PNG into the run folder (matplotlib, headless Agg backend)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import torch


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_curves(history: list, path: Path) -> None:
    """Training loss and every ``test_*`` metric against the step."""
    train = [r for r in history if "loss" in r]
    evals = [r for r in history if any(k.startswith("test_") for k in r)]
    keys = sorted({k for r in evals for k in r if k.startswith("test_")})
    if not train:
        return
    plt = pyplot()
    fig, axes = plt.subplots(1, 1 + bool(keys), figsize=(5 * (1 + bool(keys)), 3.5), squeeze=False)
    ax = axes[0, 0]
    ax.plot([r["step"] for r in train], [r["loss"] for r in train])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log" if all(r["loss"] > 0 for r in train) else "linear")
    if keys:
        ax = axes[0, 1]
        for k in keys:
            pts = [(r["step"], r[k]) for r in evals if k in r]
            ax.plot(*zip(*pts), marker="o", label=k)
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_image_grid(images: torch.Tensor, path: Path, title: str = "", ncol: int = 10,
                    row_labels: Optional[list] = None) -> None:
    """Draw ``images`` [N, C, H, W] (values clipped to [0, 1]; first channel, or RGB when C == 3) in a
    grid ``ncol`` wide and save it as a PNG."""
    from torchvision.utils import make_grid

    plt = pyplot()
    images = images.detach().float().cpu().clamp(0, 1)
    rgb = images.shape[1] == 3
    images = images if rgb else images[:, :1]
    nrow = max(1, math.ceil(len(images) / ncol))
    # one tiled image and one imshow: an axes per cell cost ~40 ms each (seconds for a 10x10 grid)
    pad = 1
    grid = make_grid(images, nrow=ncol, padding=pad, pad_value=1.0 if rgb else 0.15)
    fig, ax = plt.subplots(figsize=(ncol * 0.8, nrow * 0.8 + (0.4 if title else 0)))
    ax.imshow(grid.permute(1, 2, 0).numpy() if rgb else grid[0].numpy(), cmap=None if rgb else "gray_r",
              vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    cell = images.shape[2] + pad
    if row_labels:
        ax.set_yticks([pad + cell * r + images.shape[2] / 2 for r in range(min(nrow, len(row_labels)))],
                      row_labels[:nrow], fontsize=7)
        ax.tick_params(length=0)
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_scatter(real: torch.Tensor, fake: torch.Tensor, path: Path, title: str = "") -> None:
    """Scatter the first two columns of real and generated tabular rows and save as a PNG."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    real, fake = real.flatten(1).cpu(), fake.detach().flatten(1).cpu()
    ax.scatter(real[:, 0], real[:, 1 % real.shape[1]], s=5, c="lightgrey", label="data")
    ax.scatter(fake[:, 0], fake[:, 1 % fake.shape[1]], s=5, c="tab:red", label="samples")
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_samples(samples: torch.Tensor, data, path: Path, title: str) -> None:
    """``samples.png``: an image grid for images, a scatter over the training data for tabular rows."""
    if data.info.modality == "image":
        save_image_grid(samples[:100], path, title)
    else:
        save_scatter(data.train.columns["x"], samples, path, title)
