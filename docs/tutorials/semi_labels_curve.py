"""Accuracy against the number of labels per class on digits: pseudo_label vs supervised only.

    python docs/tutorials/semi_labels_curve.py

Trains ``recipes/semi_digits_fixmatch.yaml`` and ``recipes/supervised_digits.yaml`` for each label budget
and writes ``labels_curve.png`` and ``labels_curve.json`` into ``$SSLKIT_OUT`` (default
``runs/semi_labels_curve``). With ``SSLKIT_SMOKE=1`` every run stops after 3 steps.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import sslkit
from sslkit.plots import pyplot

ROOT = Path(__file__).resolve().parents[2]
SMOKE = os.environ.get("SSLKIT_SMOKE") == "1"
OUT = Path(os.environ.get("SSLKIT_OUT") or "runs/semi_labels_curve")
BUDGETS = [2, 5] if SMOKE else [1, 2, 5, 10, 20]
RECIPES = {"pseudo_label (FixMatch)": "semi_digits_fixmatch.yaml", "supervised only": "supervised_digits.yaml"}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    for label, recipe in RECIPES.items():
        for budget in BUDGETS:
            overrides = {"data.labels_per_class": budget, "trainer.progress": False}
            if SMOKE:
                overrides["trainer.max_steps"] = 3
            run = sslkit.run(ROOT / "recipes" / recipe, overrides=overrides, out=OUT / f"{Path(recipe).stem}-{budget}",
                             overwrite=True)
            results.setdefault(label, {})[budget] = run.metrics["test_accuracy"]
            print(f"{label:>24}  {budget:>2} labels/class  test_accuracy {run.metrics['test_accuracy']:.3f}")
    (OUT / "labels_curve.json").write_text(json.dumps(results, indent=2) + "\n")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, points in results.items():
        ax.plot(list(points), list(points.values()), marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
    ax.set_xlabel("labels per class")
    ax.set_ylabel("test accuracy")
    ax.set_title("digits: accuracy vs number of labels")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "labels_curve.png", dpi=100)
    print(f"wrote {OUT / 'labels_curve.png'}")


if __name__ == "__main__":
    main()
