"""Benchmark: self-supervised margin-contrastive features on 8x8 digits vs raw pixels and PCA-32.

For each seed, trains ``recipes/contrastive_digits.yaml`` (no labels used in pretraining) on the
seed's 25 % stratified split, then scores the frozen encoder with a linear probe (logistic
regression on standardized features) and cosine k-NN, with all training labels and with 5 labels
per class; raw pixels and PCA-32 (fitted on the training rows) are scored the same way. Also times
the all-pairs loss on 1,024 embeddings (forward + backward) against pytorch-metric-learning's
``ContrastiveLoss``.

    python benchmarks/contrastive.py [--seeds 0-9] [--threads 1] [--epochs N] [--out DIR]

Prints per-seed tables of the linear probe (5 labels per class and all labels) beside raw pixels
and PCA-32 on the same split (seeds 0-2 tuning, the rest held-out; summary: tuning mean,
held-out mean +- std, wins on the held-out seeds), then the mean table of all four probe metrics. ``SSLKIT_SMOKE=1`` shrinks everything to a few steps (for tests);
``SSLKIT_OUT`` is where run folders go.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeds import SeedTable, add_seed_args, held_out_verdict, setup_threads  # noqa: E402

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
    ap = add_seed_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's trainer.epochs")
    ap.add_argument("--out", default=os.environ.get("SSLKIT_OUT"))
    args = ap.parse_args()
    setup_threads(args.threads)
    smoke = os.environ.get("SSLKIT_SMOKE") == "1"
    import sslkit

    out = Path(args.out or tempfile.mkdtemp(prefix="contrastive-bench-"))
    seeds = args.seeds[:1] if smoke else args.seeds
    overrides = {"trainer.progress": False, "trainer.threads": args.threads}
    if smoke:
        overrides["trainer.max_steps"] = 3
    if args.epochs:
        overrides["trainer.epochs"] = args.epochs
    rows: dict = {}
    ours_name = "contrastive (ours, no labels in pretraining)"
    tables = {key: SeedTable(f"linear probe, {what}: test accuracy", ours=[ours_name])
              for key, what in (("linear_probe_accuracy_5pc", "5 labels/class"), ("linear_probe_accuracy", "all labels"))}
    run_times, train_times, cpu_times = [], [], []
    for seed in seeds:
        t, c = time.perf_counter(), time.process_time()
        res = sslkit.run(RECIPE, overrides={**overrides, "seed": seed}, out=out / f"seed{seed}", overwrite=True)
        run_times.append(time.perf_counter() - t)
        cpu_times.append(time.process_time() - c)
        train_times.append(res.metrics["train_time_s"])
        per_seed = {ours_name: res.metrics, **baselines(seed)}
        for name, m in per_seed.items():
            rows.setdefault(name, []).append(m)
            for key, table in tables.items():
                table.add(seed, name, m[key])
        print(f"# seed {seed}: probe 5/class {res.metrics[KEYS[0]]:.4f}, all labels {res.metrics[KEYS[1]]:.4f} "
              f"({run_times[-1]:.0f} s wall, {cpu_times[-1]:.0f} s CPU)", flush=True)
    print(f"\nDigits, 25 % stratified test split, seeds {seeds}, torch threads {args.threads} "
          f"(trainer.threads={args.threads})\n")
    for table in tables.values():
        print(table.markdown() + "\n")
    print(held_out_verdict(tables[KEYS[0]], ours_name, 0.94))
    print(held_out_verdict(tables[KEYS[1]], ours_name, 0.985) + "\n")
    print("All four probe metrics, mean ± std over every seed run:\n")
    print("| features | linear probe, 5 labels/class | linear probe, all labels | k-NN, 5 labels/class "
          "| k-NN, all labels |")
    print("|---|---|---|---|---|")
    for name, ms in rows.items():
        print(f"| {name} | " + " | ".join(fmt([m[k] for m in ms]) for k in KEYS) + " |")
    print(f"\nDefault-size run (training + probe + t-SNE), CPU seconds per seed: "
          f"{', '.join(f'{t:.0f}' for t in cpu_times)}; wall seconds per seed: "
          f"{', '.join(f'{t:.0f}' for t in run_times)} (training alone: {', '.join(f'{t:.0f}' for t in train_times)});"
          f" target < 180 s: {'met' if max(run_times) < 180 else 'MISSED'}")
    ours_s, pml_s = time_losses(repeats=3 if smoke else 20)
    print(f"\nAll-pairs loss on 1,024 embeddings (64-d, forward + backward, median): ours {ours_s * 1e3:.1f} ms, "
          f"PML ContrastiveLoss {pml_s * 1e3:.1f} ms, ratio ours/PML = {ours_s / pml_s:.2f} "
          f"(target ≤ 1: {'met' if ours_s <= pml_s else 'MISSED'})")


if __name__ == "__main__":
    main()
