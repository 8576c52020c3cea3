"""``curves.png``: the training loss and every ``test_*`` metric against the step, from the run's history."""
from __future__ import annotations

from ..plots import save_curves
from ..registry import register
from .base import Reporter, RunContext


@register("reporters", "curves")
class Curves(Reporter):
    """Draws ``curves.png`` from the trainer's history: training loss (log scale when positive) and each
    ``test_*`` metric at the evaluations. Every run gets it unless its recipe lists ``reporters:``."""

    def report(self, run: RunContext) -> dict:
        if run.run_dir is not None:
            save_curves(run.history, run.file("curves.png"))
        return {}
