"""Semi-supervised benchmark: sslkit's semi-supervised recipes against scikit-learn baselines, per seed.

Every method sees the same data per seed: sslkit's stratified 25 % test split and the same
``labels_per_class`` labeled rows (hidden labels are -1), built by sslkit itself, so the
baselines train on exactly the rows the recipe trains on. Baselines: SVC on the labeled rows,
``SelfTrainingClassifier(SVC)``, ``LabelSpreading`` with the knn kernel and with the rbf kernel
(gamma = 1 / (n_features * Var(X)), scikit-learn's ``"scale"`` rule: the default gamma = 20 puts
every pair of 64-pixel digits at affinity 0).

    python benchmarks/semi.py                          # digits 5/class, moons 3/class, seeds 0-9
    python benchmarks/semi.py --seeds 0-2 --datasets digits          # the tuning seeds only
    python benchmarks/semi.py --seeds 0 --datasets moons             # quick
    python benchmarks/semi.py --recipe digits=my.yaml --set trainer.epochs=5   # another recipe

Prints, per dataset, a per-seed table (seeds 0-2 tuning, the rest held-out) and the summary:
tuning mean, held-out mean +- std (the headline) and wins on the held-out seeds; then the run
time and CPU time of the sslkit runs. ``SSLKIT_SMOKE=1`` shrinks the sslkit runs to 3 steps.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeds import SeedTable, add_seed_args, held_out_verdict, setup_threads  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    # name: (recipe, label budget, target held-out mean test accuracy)
    "digits": ("recipes/semi_digits.yaml", 5, 0.965),
    "moons": ("recipes/semi_moons.yaml", 3, 0.99),
}


def split(recipe: Path, seed: int, labels: int):
    """Train inputs, train labels (-1 = hidden) and the test split, exactly as sslkit prepares them."""
    from sslkit.config import load_yaml
    from sslkit.runner import build_data
    from sslkit.stages import resolve_stages
    from sslkit import config

    raw = load_yaml(recipe)
    over = {"seed": seed, "data.labels_per_class": labels}
    if raw.get("stages"):  # the last stage's data: the one whose classifier is scored
        cfg = list(resolve_stages(raw, over).values())[-1][0]
    else:
        cfg = config.resolve(config.apply_overrides(raw, over))
    data = build_data(cfg)
    flat = lambda t: t["x"].flatten(1).numpy().astype(np.float64)  # noqa: E731
    return flat(data.train), data.train["y"].numpy(), flat(data.test), data.test["y"].numpy()


def baselines(xtr, ytr, xte, yte) -> dict:
    from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
    from sklearn.svm import SVC

    labeled = ytr >= 0
    gamma = 1.0 / (xtr.shape[1] * xtr.var())
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["SVC (labeled rows)"] = SVC().fit(xtr[labeled], ytr[labeled]).score(xte, yte)
        out["SelfTraining(SVC)"] = SelfTrainingClassifier(SVC(probability=True)).fit(xtr, ytr).score(xte, yte)
        out["LabelSpreading(knn)"] = LabelSpreading(kernel="knn").fit(xtr, ytr).score(xte, yte)
        out["LabelSpreading(rbf)"] = LabelSpreading(kernel="rbf", gamma=gamma).fit(xtr, ytr).score(xte, yte)
    return out


def sslkit_run(recipe: Path, seed: int, labels: int, out: Path, threads: int, extra: dict) -> dict:
    import sslkit

    over = {"seed": seed, "data.labels_per_class": labels, "trainer.progress": False, "trainer.threads": threads,
            **({"trainer.max_steps": 3} if os.environ.get("SSLKIT_SMOKE") == "1" else {}), **extra}
    start, cpu = time.perf_counter(), time.process_time()
    res = sslkit.run(recipe, overrides=over, out=out, overwrite=True)  # the benchmark owns its folders
    m = res.metrics
    # a staged recipe reports "stage/metric": the last stage's classifier is the one scored
    acc = m.get("test_accuracy", next((v for k, v in reversed(list(m.items())) if k.endswith("/test_accuracy")), None))
    mask = m.get("mean_mask_rate", next((v for k, v in m.items() if k.endswith("/mean_mask_rate")), float("nan")))
    return {"acc": acc, "wall": time.perf_counter() - start, "cpu": time.process_time() - cpu, "mask": mask}


def parse_assignments(items, what) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"{what}: expected KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k] = v
    return out


def main():
    ap = add_seed_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    ap.add_argument("--datasets", default="digits,moons")
    ap.add_argument("--recipe", action="append", default=[], metavar="DATASET=PATH",
                    help="run this recipe instead of the dataset's shipped one")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override in every sslkit run")
    args = ap.parse_args()
    setup_threads(args.threads)
    from sslkit.config import parse_override

    extra = dict(parse_override(s) for s in args.set)
    recipes = parse_assignments(args.recipe, "--recipe")
    out_root = Path(os.environ.get("SSLKIT_OUT") or tempfile.mkdtemp(prefix="semi-bench-"))
    print(f"Semi-supervised benchmark: seeds {args.seeds}, stratified 25 % test split, torch threads "
          f"{args.threads} (trainer.threads={args.threads}), overrides {extra or 'none'}\n", flush=True)
    for name in args.datasets.split(","):
        recipe, labels, target = CASES[name]
        recipe = Path(recipes.get(name, ROOT / recipe)).resolve()
        ours = f"sslkit ({recipe.name})"
        table = SeedTable(f"{name}, {labels} labels/class: test accuracy", ours=[ours])
        runs = []
        for seed in args.seeds:
            for method, a in baselines(*split(recipe, seed, labels)).items():
                table.add(seed, method, a)
            r = sslkit_run(recipe, seed, labels, out_root / f"{name}-{seed}", args.threads, extra)
            table.add(seed, ours, r["acc"])
            runs.append(r)
            print(f"# {name} seed {seed}: sslkit {r['acc']:.4f} in {r['wall']:.0f} s wall, {r['cpu']:.0f} s CPU "
                  f"(mean mask rate {r['mask']:.3f}); LabelSpreading(knn) "
                  f"{table.scores['LabelSpreading(knn)'][seed]:.4f}", flush=True)
        print()
        print(table.markdown())
        walls, cpus = [r["wall"] for r in runs], [r["cpu"] for r in runs]
        print(f"\nsslkit run time per seed: {statistics.mean(walls):.0f} s wall (max {max(walls):.0f}), "
              f"{statistics.mean(cpus):.0f} s CPU (max {max(cpus):.0f})")
        beats_ls = table.wins(ours, ["LabelSpreading(knn)"])
        print(held_out_verdict(table, ours, target)
              + f"; above LabelSpreading(knn) on {beats_ls[0]} of {beats_ls[1]} held-out seeds\n", flush=True)


if __name__ == "__main__":
    main()
