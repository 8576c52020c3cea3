"""Semi-supervised benchmark: sslkit's pseudo_label recipes against scikit-learn baselines.

Every method sees the same data per seed: sslkit's stratified 25 % test split and the same
``labels_per_class`` labeled rows (hidden labels are -1), built by sslkit itself, so the
baselines train on exactly the rows the recipe trains on.

    python benchmarks/semi.py                      # digits 5 labels/class, moons 3 labels/class, 3 seeds
    python benchmarks/semi.py --seeds 1 --datasets moons

Prints a markdown table: mean +- std test accuracy over seeds, and the mean wall time of one
sslkit run (data preparation and evaluation included).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    # name: (recipe, label budget, target mean test accuracy)
    "digits": ("recipes/semi_digits.yaml", 5, 0.95),
    "moons": ("recipes/semi_moons.yaml", 3, 0.99),
}


def split(recipe: Path, seed: int, labels: int):
    """Train inputs, train labels (-1 = hidden) and the test split, exactly as sslkit prepares them."""
    from sslkit.config import load_recipe
    from sslkit.runner import build_data

    cfg = load_recipe(recipe, [f"seed={seed}", f"data.labels_per_class={labels}"])
    data = build_data(cfg)
    flat = lambda t: t["x"].flatten(1).numpy().astype(np.float64)  # noqa: E731
    return flat(data.train), data.train["y"].numpy(), flat(data.test), data.test["y"].numpy()


def baselines(xtr, ytr, xte, yte) -> dict:
    from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
    from sklearn.svm import SVC

    labeled = ytr >= 0
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["supervised SVC (labeled rows only)"] = SVC().fit(xtr[labeled], ytr[labeled]).score(xte, yte)
        out["sklearn SelfTrainingClassifier(SVC)"] = SelfTrainingClassifier(SVC(probability=True)).fit(
            xtr, ytr).score(xte, yte)
        out["sklearn LabelSpreading(knn)"] = LabelSpreading(kernel="knn").fit(xtr, ytr).score(xte, yte)
    return out


def sslkit_run(recipe: Path, seed: int, labels: int, out: Path) -> tuple:
    import sslkit

    start, cpu = time.perf_counter(), time.process_time()
    res = sslkit.run(recipe, overrides={"seed": seed, "data.labels_per_class": labels, "trainer.progress": False},
                     out=out)
    return (res.metrics["test_accuracy"], time.perf_counter() - start, time.process_time() - cpu,
            res.metrics.get("mean_mask_rate", float("nan")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--datasets", default="digits,moons")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            recipe, labels, target = CASES[name]
            recipe = ROOT / recipe
            acc: dict = {}
            times, cpus, masks = [], [], []
            for seed in range(args.seeds):
                for method, a in baselines(*split(recipe, seed, labels)).items():
                    acc.setdefault(method, []).append(a)
                a, wall, cpu, mask = sslkit_run(recipe, seed, labels, Path(tmp) / f"{name}-{seed}")
                acc.setdefault(f"sslkit pseudo_label ({recipe.name})", []).append(a)
                times.append(wall)
                cpus.append(cpu)
                masks.append(mask)
                print(f"# {name} seed {seed}: sslkit {a:.4f} in {wall:.1f} s wall, {cpu:.1f} s CPU "
                      f"(mean mask rate {mask:.3f})",
                      flush=True)
            for method, values in acc.items():
                ours = method.startswith("sslkit")
                rows.append((name, labels, method, values,
                             f"{statistics.mean(times):.0f} s wall (max {max(times):.0f}), "
                             f"{statistics.mean(cpus):.0f} s CPU" if ours else "",
                             ("yes" if statistics.mean(values) >= target else "NO") + f" (>= {target})"
                             if ours else ""))
    print()
    print(f"Semi-supervised benchmark: {args.seeds} seeds, stratified 25 % test split, "
          f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}")
    print()
    print("| dataset | labels/class | method | test accuracy (mean ± std) | per seed "
          "| sslkit run time (mean over seeds) | target met |")
    print("|---|---|---|---|---|---|---|")
    for name, labels, method, values, wall, met in rows:
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        per = ", ".join(f"{v:.3f}" for v in values)
        print(f"| {name} | {labels} | {method} | {statistics.mean(values):.4f} ± {std:.4f} | {per} | {wall} | {met} |")


if __name__ == "__main__":
    main()
