"""A reporter written outside sslkit (tutorial 10): the confusion matrix of a classifier on the test split.

Registered under ``reporters`` when this module is imported (a recipe's ``imports:``), it adds
``balanced_accuracy`` to the run's final metrics and writes ``confusion.png``.
"""
from __future__ import annotations

import torch
from sklearn.metrics import ConfusionMatrixDisplay, balanced_accuracy_score, confusion_matrix

from sslkit.objectives.base import Classifier, batched
from sslkit.plots import pyplot
from sslkit.registry import register
from sslkit.reporters import Reporter, ReporterContext, RunContext


@register("reporters", "confusion")
class Confusion(Reporter):
    """Test-split confusion matrix of the first classifying objective: ``balanced_accuracy`` (the mean
    per-class recall) and ``confusion.png`` (rows: true class; ``normalize: true`` shows recalls).

    normalize: draw each row as shares of its true class instead of counts.
    """

    needs = (Classifier, "classifies (supervised, pseudo_label, ...)")

    def __init__(self, ctx: ReporterContext, *, normalize: bool = False):
        super().__init__(ctx)
        self.normalize = normalize

    def report(self, run: RunContext) -> dict:
        _, obj = self.objective(run)
        preds, ys = [], []
        for b in batched(run.data.test, run.batch_size, run.device):  # the trainer set eval mode and no_grad
            preds.append(obj.logits(b["x"], run.encoder).argmax(1).cpu())
            ys.append(b["y"].cpu())
        y, pred = torch.cat(ys).numpy(), torch.cat(preds).numpy()
        if run.run_dir is not None:
            cm = confusion_matrix(y, pred, normalize="true" if self.normalize else None)
            plt = pyplot()
            fig, ax = plt.subplots(figsize=(6, 5))
            ConfusionMatrixDisplay(cm).plot(ax=ax, colorbar=False, values_format=".2f" if self.normalize else "d")
            fig.tight_layout()
            fig.savefig(run.file("confusion.png"), dpi=100)
            plt.close(fig)
        return {"balanced_accuracy": float(balanced_accuracy_score(y, pred))}
