"""Test accuracy against annotator accuracy on digits: weak_ova (crowd layer) vs majority vote.

    python docs/tutorials/weak_accuracy_curve.py

For each annotator accuracy p, K = 3 simulated annotators label every training image (right with
probability p, otherwise a uniformly drawn wrong class). It trains ``recipes/weak_digits.yaml``
(``weak_ova`` with a crowd layer, plus a contrastive objective) and the same recipe with only the
``supervised`` objective, which learns the annotators' majority vote (the training ``y``). Writes ``weak_accuracy_curve.png`` and
``weak_accuracy_curve.json`` into ``$SSLKIT_OUT`` (default ``runs/weak_accuracy_curve``). With
``SSLKIT_SMOKE=1`` every run stops after 3 steps.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import sslkit
from sslkit.plots import pyplot

ROOT = Path(__file__).resolve().parents[2]
SMOKE = os.environ.get("SSLKIT_SMOKE") == "1"
OUT = Path(os.environ.get("SSLKIT_OUT") or "runs/weak_accuracy_curve")
ACCURACIES = [0.4, 0.8] if SMOKE else [0.2, 0.3, 0.4, 0.6]
METHODS = {"weak_ova (crowd layer)": None, "supervised on majority vote": [{"name": "supervised"}]}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    for label, objectives in METHODS.items():
        for p in ACCURACIES:
            overrides = {"data.annotator_accuracy": p, "trainer.progress": False}
            if objectives:
                overrides["objectives"] = objectives
            if SMOKE:
                overrides["trainer.max_steps"] = 3
            run = sslkit.run(ROOT / "recipes" / "weak_digits.yaml", overrides=overrides,
                             out=OUT / f"{'weak_ova' if objectives is None else 'majority'}-{p}", overwrite=True)
            results.setdefault(label, {})[p] = run.metrics["test_accuracy"]
            print(f"{label:>28}  annotator accuracy {p:.1f}  test_accuracy {run.metrics['test_accuracy']:.3f}")
    (OUT / "weak_accuracy_curve.json").write_text(json.dumps(results, indent=2) + "\n")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, points in results.items():
        ax.plot(list(points), list(points.values()), marker="o", label=label)
    ax.set_xlabel("accuracy of each of the K = 3 annotators")
    ax.set_ylabel("test accuracy (clean test labels)")
    ax.set_title("digits: learning from 3 noisy annotators")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "weak_accuracy_curve.png", dpi=100)
    print(f"wrote {OUT / 'weak_accuracy_curve.png'}")


if __name__ == "__main__":
    main()
