"""Benchmark: self-supervised margin-contrastive features on 8x8 digits vs raw pixels and PCA-32.

For each seed, trains ``recipes/contrastive_digits.yaml`` (no labels used in pretraining) on the
seed's 25 % stratified split, then scores the frozen encoder with a linear probe (logistic
regression on standardized features) and cosine k-NN, with all training labels and with 5 labels
per class; raw pixels and PCA-32 (fitted on the training rows) are scored the same way. Also times
the all-pairs loss on 1,024 embeddings (forward + backward) against pytorch-metric-learning's
``ContrastiveLoss``.

    python benchmarks/contrastive.py [--seeds 0 1 2] [--epochs N] [--out DIR]

Prints a markdown table. ``SSLKIT_SMOKE=1`` shrinks everything to a few steps (for tests);
``SSLKIT_OUT`` is where run folders go.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "contrastive_digits.yaml"
KEYS = ("linear_probe_accuracy_5pc", "linear_probe_accuracy", "knn_accuracy_5pc", "knn_accuracy")


def baselines(seed: int) -> dict:
    """Probe metrics of raw pixels and PCA-32 on the same split as the seed's run."""
    from sklearn.decomposition import PCA

    from sslkit.evaluation import probe_metrics
    from sslkit.runner import build_data
    from sslkit import config

    cfg = config.resolve({"seed": seed, "data": {"name": "digits"}})
    data = build_data(cfg)
    xtr, ytr = data.train["x"].flatten(1).numpy(), data.train["y_true"].numpy()
    xte, yte = data.test["x"].flatten(1).numpy(), data.test["y"].numpy()
    pca = PCA(32, random_state=seed).fit(xtr)
    return {"raw pixels (64-d)": probe_metrics(xtr, ytr, xte, yte, seed=seed),
            "PCA-32": probe_metrics(pca.transform(xtr), ytr, pca.transform(xte), yte, seed=seed)}


def time_losses(n: int = 1024, dim: int = 64, repeats: int = 20) -> tuple[float, float]:
    """Median seconds of forward + backward over ``n`` embeddings (two views of n/2 rows, all pairs):
    ours, then PML's ContrastiveLoss, both on L2-normalised embeddings with LpDistance."""
    from pytorch_metric_learning import losses

    from sslkit.objectives.contrastive import MarginContrastiveLoss, view_pair_labels

    torch.manual_seed(0)
    z0 = torch.randn(n, dim)
    labels = view_pair_labels(n // 2)
    fns = (MarginContrastiveLoss(margin=1.0), losses.ContrastiveLoss(pos_margin=0.0, neg_margin=1.0))
    times: list = [[], []]
    for i in range(repeats + 3):
        for k, fn in enumerate(fns):  # alternate, so both see the same background load
            z = z0.clone().requires_grad_()
            t = time.perf_counter()
            fn(z, labels).backward()
            if i >= 3:  # warm-up excluded
                times[k].append(time.perf_counter() - t)
    results = [statistics.median(t) for t in times]
    return results[0], results[1]


def fmt(values) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's trainer.epochs")
    ap.add_argument("--out", default=os.environ.get("SSLKIT_OUT"))
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1: these tiny models gain nothing from more, and a shared "
                         "machine slows badly with oversubscribed threads)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    smoke = os.environ.get("SSLKIT_SMOKE") == "1"
    import sslkit

    out = Path(args.out or tempfile.mkdtemp(prefix="contrastive-bench-"))
    seeds = args.seeds[:1] if smoke else args.seeds
    overrides = {"trainer.progress": False}
    if smoke:
        overrides["trainer.max_steps"] = 3
    if args.epochs:
        overrides["trainer.epochs"] = args.epochs
    rows: dict = {}
    run_times, train_times = [], []
    for seed in seeds:
        t = time.perf_counter()
        res = sslkit.run(RECIPE, overrides={**overrides, "seed": seed}, out=out / f"seed{seed}", overwrite=True)
        run_times.append(time.perf_counter() - t)
        train_times.append(res.metrics["train_time_s"])
        rows.setdefault("contrastive (ours, no labels in pretraining)", []).append(res.metrics)
        for name, m in baselines(seed).items():
            rows.setdefault(name, []).append(m)
    print(f"Digits, 25 % stratified test split, seeds {seeds} (mean ± std over seeds)\n")
    print("| features | linear probe, 5 labels/class | linear probe, all labels | k-NN, 5 labels/class "
          "| k-NN, all labels |")
    print("|---|---|---|---|---|")
    for name, ms in rows.items():
        print(f"| {name} | " + " | ".join(fmt([m[k] for m in ms]) for k in KEYS) + " |")
    ours = rows["contrastive (ours, no labels in pretraining)"]
    lp5, lp = statistics.mean(m[KEYS[0]] for m in ours), statistics.mean(m[KEYS[1]] for m in ours)
    print(f"\nTargets: linear probe 5/class ≥ 0.92: {'met' if lp5 >= 0.92 else 'MISSED'} ({lp5:.3f}); "
          f"all labels ≥ 0.98: {'met' if lp >= 0.98 else 'MISSED'} ({lp:.3f})")
    print(f"Default-size run (training + probe + t-SNE), wall seconds per seed: "
          f"{', '.join(f'{t:.0f}' for t in run_times)} (training alone: {', '.join(f'{t:.0f}' for t in train_times)});"
          f" target < 180 s: {'met' if max(run_times) < 180 else 'MISSED'}")
    ours_s, pml_s = time_losses(repeats=3 if smoke else 20)
    print(f"\nAll-pairs loss on 1,024 embeddings (64-d, forward + backward, median): ours {ours_s * 1e3:.1f} ms, "
          f"PML ContrastiveLoss {pml_s * 1e3:.1f} ms, ratio ours/PML = {ours_s / pml_s:.2f} "
          f"(target ≤ 1: {'met' if ours_s <= pml_s else 'MISSED'})")


if __name__ == "__main__":
    main()
