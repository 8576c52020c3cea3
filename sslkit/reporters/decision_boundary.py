"""``decision_boundary.png``: a classifier's predicted class over 2-D tabular data."""
from __future__ import annotations

import torch
from torch import nn

from ..objectives.base import Classifier
from ..plots import pyplot
from ..registry import register
from .base import Reporter, RunContext


@register("reporters", "decision_boundary")
class DecisionBoundary(Reporter):
    """Draws the predicted class of the first classifying objective over a grid covering 2-D tabular data,
    with the training points (labeled ones large, hidden-label ones small and grey) and the test points,
    into ``decision_boundary.png``. Nothing for other data."""

    needs = (Classifier, "classifies (supervised, pseudo_label, ...)")

    def report(self, run: RunContext) -> dict:
        info = run.data.info
        if run.run_dir is None or info.modality != "tabular" or tuple(info.input_shape) != (2,):
            return {}
        name, obj = self.objective(run)
        decision_boundary(name, obj, run.encoder, run.data, run.file("decision_boundary.png"), run.device)
        return {}


@torch.no_grad()
def decision_boundary(name: str, obj, encoder: nn.Module, data, path, device, resolution: int = 200) -> None:
    """Predicted class of ``obj.logits`` over a grid covering the 2-D data, with the training points (labeled
    ones large, hidden-label ones small and grey) and the test points; the caller sets eval mode."""
    plt = pyplot()
    train, test = data.train, data.test
    pts = torch.cat([train["x"], test["x"]]).float()
    lo, hi = pts.min(0).values - 0.5, pts.max(0).values + 0.5
    gx, gy = torch.meshgrid(torch.linspace(lo[0], hi[0], resolution), torch.linspace(lo[1], hi[1], resolution),
                            indexing="xy")
    grid = torch.stack([gx.flatten(), gy.flatten()], 1)
    pred = torch.cat([obj.logits(chunk.to(device), encoder).argmax(1).cpu() for chunk in grid.split(8192)])
    test_pred = obj.logits(test["x"].to(device), encoder).argmax(1).cpu()
    C = data.info.num_classes
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.contourf(gx, gy, pred.view(resolution, resolution), levels=torch.arange(C + 1) - 0.5, cmap="coolwarm",
                alpha=0.25)
    y = train["y"]
    hidden = y < 0
    ax.scatter(train["x"][hidden, 0], train["x"][hidden, 1], s=6, c="0.6", label="unlabeled (train)")
    ax.scatter(test["x"][:, 0], test["x"][:, 1], s=10, c=test["y"], cmap="coolwarm", vmin=0, vmax=max(C - 1, 1),
               marker="x", linewidths=0.7, label="test")
    ax.scatter(train["x"][~hidden, 0], train["x"][~hidden, 1], s=120, c=y[~hidden], cmap="coolwarm", vmin=0,
               vmax=max(C - 1, 1), edgecolors="k", linewidths=1.5, label="labeled")
    acc = (test_pred == test["y"]).float().mean().item()
    ax.set_title(f"{name} decision boundary ({int((~hidden).sum())} labels, test accuracy {acc:.3f})")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
