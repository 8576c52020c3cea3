"""Figures saved as PNG into the run folder (matplotlib, headless Agg backend)."""
from __future__ import annotations

from pathlib import Path


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
