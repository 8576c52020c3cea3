"""Which ``trainer.threads`` is fastest for each shipped recipe, side by side.

For every recipe in ``recipes/`` (every stage of a staged recipe that can be built on its own),
builds the data and model once, then times up to ``--steps`` training steps (after 3 warm-up
steps; a timing stops early after ``--budget`` seconds, since a badly oversubscribed setting can be
20x slower) with torch using 1 thread, 2 threads and its default (the core count), the settings
interleaved over ``--repeats`` rounds so a change in the machine's load hits them alike. Prints a
markdown table of the best seconds per 100 steps and the ratio of each setting to the fastest.

    OMP_NUM_THREADS= python benchmarks/threads.py [--steps 300] [--budget 8] [--repeats 2] [--only lm_clm,...]

Run it without ``OMP_NUM_THREADS`` set: that variable changes torch's default.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from sslkit import config
from sslkit.errors import ConfigError
from sslkit.runner import build_data, build_model, seed_everything
from sslkit.stages import resolve_stages
from sslkit.trainer import Trainer

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
DEFAULT = torch.get_num_threads()  # read before anything changes it


def configs(path: Path):
    """``(label, resolved recipe)`` for the recipe or each of its stages."""
    raw = config.load_yaml(path)
    if not raw.get("stages"):
        yield path.stem, config.resolve(raw)
        return
    for name, (cfg, _) in resolve_stages(raw).items():
        if "encoder" not in cfg:  # an export stage trains nothing
            continue
        cfg["encoder"]["init_from"] = None  # the earlier stage's weights do not change the step time
        yield f"{path.stem}/{name}", cfg


def seconds_per_100(trainer: Trainer, threads: int, steps: int, budget: float) -> float:
    torch.set_num_threads(threads)
    for _ in range(3):
        trainer._train_step(trainer._next_batches())
    start = now = time.perf_counter()
    done = 0
    while done < steps and (now - start < budget or done < 3):
        trainer._train_step(trainer._next_batches())
        done += 1
        now = time.perf_counter()
    return (now - start) / done * 100


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--budget", type=float, default=8.0, help="seconds after which a timing stops early")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated recipe stems, measured in this order")
    args = ap.parse_args()
    settings = {"1": 1, "2": 2, f"default ({DEFAULT})": DEFAULT}
    only = [name for name in args.only.split(",") if name]
    print(f"torch default threads {DEFAULT}, os.cpu_count() {os.cpu_count()}, load average at start "
          f"{os.getloadavg()[0]:.1f}, up to {args.steps} steps or {args.budget:g} s per timing, best of {args.repeats}\n")
    print("| recipe | batch | " + " | ".join(f"threads {k}: s/100 steps" for k in settings) + " | fastest | slowest / fastest |")
    print("|---|---|" + "---|" * len(settings) + "---|---|")
    for path in [RECIPES / f"{name}.yaml" for name in only] or sorted(RECIPES.glob("*.yaml")):  # --only's order
        for label, cfg in configs(path):
            cfg["trainer"]["max_steps"] = 10**9
            try:
                torch.set_num_threads(DEFAULT)
                seed_everything(cfg["seed"])
                data = build_data(cfg)
                trainer = Trainer(cfg, data, build_model(cfg, data), torch.device("cpu"), None)
            except ConfigError as exc:  # e.g. a PPO stage needs the earlier stages' run folders
                print(f"| {label} | - | skipped: {str(exc)[:80]} |")
                continue
            trainer.model.train()
            best = {k: float("inf") for k in settings}
            try:
                for _ in range(args.repeats):
                    for k, n in settings.items():
                        best[k] = min(best[k], seconds_per_100(trainer, n, args.steps, args.budget))
            except ConfigError as exc:  # e.g. PPO's frozen reference is an earlier stage's run folder
                print(f"| {label} | - | skipped: {str(exc)[:80]} |")
                continue
            fastest = min(best, key=best.get)
            cells = " | ".join(f"{best[k]:.2f} ({best[k] / best[fastest]:.2f}x)" for k in settings)
            print(f"| {label} | {cfg['trainer']['batch_size']} | {cells} | {fastest} | "
                  f"{max(best.values()) / best[fastest]:.2f}x |", flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
