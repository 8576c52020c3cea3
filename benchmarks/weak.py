"""Weak-supervision benchmark: sslkit's weak_digits recipe against label-model + SVC baselines, per seed.

Every method sees the same data per seed: sslkit's stratified 25 % test split (clean labels)
and the same simulated annotations of the training split (``data.annotators``), built by
sslkit itself. Baselines, all scikit-learn ``SVC`` on the pixels: trained on the majority vote,
on the Dawid–Skene labels (EM on the label matrix, ``sslkit.data.dawid_skene``), and "pooled"
(one row per annotation); SVC on the hidden clean labels is printed for scale (not a baseline:
it sees labels no other method sees).

    python benchmarks/weak.py                                   # K=3, 40 % right, uniform; seeds 0-9
    python benchmarks/weak.py --case k5_confusing --seeds 0-2   # K=5, 50 % right, class_confusing
    python benchmarks/weak.py --seeds 0 --set trainer.epochs=1  # quick

Prints a per-seed table (seeds 0-2 tuning, the rest held-out) and the summary: tuning mean,
held-out mean +- std (the headline) and wins on the held-out seeds; then run and CPU times.
``SSLKIT_SMOKE=1`` shrinks the sslkit runs to 3 steps.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeds import SeedTable, add_seed_args, held_out_verdict, setup_threads  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "weak_digits.yaml"
CASES = {
    # name: (data overrides, target held-out mean test accuracy)
    "k3_uniform": ({"data.annotators": 3, "data.annotator_accuracy": 0.4, "data.annotator_noise": "uniform"}, 0.980),
    "k5_confusing": ({"data.annotators": 5, "data.annotator_accuracy": 0.5,
                      "data.annotator_noise": "class_confusing"}, 0.99),
}


def final_stage(recipe: Path, over: dict) -> dict:
    """The resolved recipe (a staged recipe's last stage: its data is the one scored)."""
    from sslkit import config
    from sslkit.stages import resolve_stages

    raw = config.load_yaml(recipe)
    if raw.get("stages"):
        return list(resolve_stages(raw, over).values())[-1][0]
    return config.resolve(config.apply_overrides(raw, over))


def svc_scores(cfg: dict) -> dict:
    from sklearn.svm import SVC

    from sslkit.data.annotators import majority_vote
    from sslkit.data.dawid_skene import dawid_skene
    from sslkit.runner import build_data

    data = build_data(cfg)
    x = data.train["x"].flatten(1).numpy()
    xt, yt = data.test["x"].flatten(1).numpy(), data.test["y"].numpy()
    ann = data.train["annotations"]
    C, k = data.info.num_classes, ann.shape[1]
    labels = {
        "majority vote -> SVC": majority_vote(ann, C, cfg["seed"]).numpy(),
        "Dawid–Skene -> SVC": dawid_skene(ann, C).posterior.argmax(1).numpy(),
        "SVC on clean labels (for scale)": data.train["y_true"].numpy(),
    }
    out = {}
    for name, y in labels.items():
        out[name] = SVC().fit(x[y >= 0], y[y >= 0]).score(xt, yt)
    pooled_x, pooled_y = np.repeat(x, k, 0), ann.flatten().numpy()
    keep = pooled_y >= 0
    out["pooled SVC"] = SVC().fit(pooled_x[keep], pooled_y[keep]).score(xt, yt)
    return out


def sslkit_run(recipe: Path, over: dict, out: Path) -> dict:
    import sslkit

    start, cpu = time.perf_counter(), time.process_time()
    m = sslkit.run(recipe, overrides=over, out=out, overwrite=True).metrics  # the benchmark owns its folders
    acc = m.get("test_accuracy", next((v for k, v in reversed(list(m.items())) if k.endswith("/test_accuracy")), None))
    return {"acc": acc, "wall": time.perf_counter() - start, "cpu": time.process_time() - cpu}


def main():
    ap = add_seed_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    ap.add_argument("--case", choices=list(CASES), default="k3_uniform")
    ap.add_argument("--recipe", default=str(RECIPE), help="the sslkit recipe to score (default: weak_digits.yaml)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override in every sslkit run")
    args = ap.parse_args()
    setup_threads(args.threads)
    from sslkit.config import parse_override

    data_over, target = CASES[args.case]
    extra = dict(parse_override(s) for s in args.set)
    recipe = Path(args.recipe).resolve()
    ours = f"sslkit ({recipe.name})"
    out_root = Path(os.environ.get("SSLKIT_OUT") or tempfile.mkdtemp(prefix="weak-bench-"))
    print(f"Weak-supervision benchmark, digits, case {args.case} {data_over}; seeds {args.seeds}; torch threads "
          f"{args.threads} (trainer.threads={args.threads}); overrides {extra or 'none'}\n", flush=True)
    table = SeedTable(f"weak digits ({args.case}): test accuracy", ours=[ours])
    runs = []
    for seed in args.seeds:
        over = {**data_over, "seed": seed, "trainer.progress": False, "trainer.threads": args.threads,
                **({"trainer.max_steps": 3} if os.environ.get("SSLKIT_SMOKE") == "1" else {}), **extra}
        for name, acc in svc_scores(final_stage(recipe, over)).items():
            table.add(seed, name, acc)
        r = sslkit_run(recipe, over, out_root / f"{args.case}-{seed}")
        table.add(seed, ours, r["acc"])
        runs.append(r)
        print(f"# seed {seed}: sslkit {r['acc']:.4f} in {r['wall']:.0f} s wall, {r['cpu']:.0f} s CPU; pooled SVC "
              f"{table.scores['pooled SVC'][seed]:.4f}", flush=True)
    # the clean-label SVC sees hidden labels: printed, never a baseline to beat
    clean = table.scores.pop("SVC on clean labels (for scale)")
    print()
    print(table.markdown())
    print(f"\nSVC on the hidden clean labels, for scale: " + ", ".join(f"{s}: {a:.4f}" for s, a in clean.items()))
    walls, cpus = [r["wall"] for r in runs], [r["cpu"] for r in runs]
    print(f"sslkit run time per seed: {statistics.mean(walls):.0f} s wall (max {max(walls):.0f}), "
          f"{statistics.mean(cpus):.0f} s CPU (max {max(cpus):.0f})")
    s = table.summary(ours)
    pooled = table.summary("pooled SVC")
    above = s["held_out_mean"] is not None and s["held_out_mean"] > pooled["held_out_mean"]
    print(held_out_verdict(table, ours, target) + f"; held-out mean above pooled SVC's: {'yes' if above else 'no'}")


if __name__ == "__main__":
    main()
