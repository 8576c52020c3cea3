"""Framework overhead: sslkit's trainer against a plain hand-written PyTorch loop.

Same MLP (digits, hidden [256, 256]), same data, batch size, optimizer and number of steps.
Prints a markdown table of the best-of-N wall times and their ratio.

    python benchmarks/overhead.py [--steps 2000] [--repeats 5] [--threads N]

On a shared 2-core VM single runs swing by up to 1.5x (both loops alike), so variants are
interleaved and the best of N is reported; use enough repeats.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F

import sslkit
from sslkit import config
from sslkit.runner import build_data, build_model, seed_everything

RECIPE = "recipes/supervised_digits.yaml"


def plain_loop(steps: int, batch_size: int) -> float:
    """A hand-written loop: the same model built by sslkit, trained without the trainer."""
    cfg = config.load_recipe(RECIPE)
    seed_everything(0)
    data = build_data(cfg)
    model = build_model(cfg, data)
    encoder, head = model.encoder, model.objectives[0].head
    x, y = data.train["x"], data.train["y"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    step, perm, pos = 0, torch.randperm(len(x), generator=g), 0
    while step < steps:
        if pos + batch_size > len(x):
            perm, pos = torch.randperm(len(x), generator=g), 0
        idx = perm[pos:pos + batch_size]
        pos += batch_size
        loss = F.cross_entropy(head(encoder(x[idx])), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
    return time.perf_counter() - start


def sslkit_loop(steps: int, batch_size: int, extras: bool) -> float:
    over = {"trainer.max_steps": steps, "trainer.epochs": 10_000, "trainer.batch_size": batch_size,
            "trainer.progress": False, "trainer.scheduler": {"name": "constant"}}
    if not extras:  # the loop alone: no periodic evaluation or checkpoints
        over.update({"trainer.eval_every": 10**9, "trainer.checkpoint_every": 10**9})
    with tempfile.TemporaryDirectory() as d:
        return sslkit.run(RECIPE, overrides=over, out=d).metrics["train_time_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    times = {"plain PyTorch loop": [], "sslkit trainer (loop only)": [],
             "sslkit trainer (+ eval and checkpoint every epoch, progress off)": []}
    for _ in range(args.repeats):  # interleaved, so load changes hit every variant alike
        times["plain PyTorch loop"].append(plain_loop(args.steps, args.batch_size))
        times["sslkit trainer (loop only)"].append(sslkit_loop(args.steps, args.batch_size, extras=False))
        times["sslkit trainer (+ eval and checkpoint every epoch, progress off)"].append(
            sslkit_loop(args.steps, args.batch_size, extras=True))
    base = min(times["plain PyTorch loop"])
    print(f"MLP [256, 256] on digits, batch {args.batch_size}, {args.steps} steps, "
          f"best of {args.repeats}, torch threads {torch.get_num_threads()}\n")
    print("| variant | best wall time (s) | steps/s | ratio to plain loop |")
    print("|---|---|---|---|")
    for name, ts in times.items():
        t = min(ts)
        print(f"| {name} | {t:.3f} | {args.steps / t:.0f} | {t / base:.3f}x |")


if __name__ == "__main__":
    main()
