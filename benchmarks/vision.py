"""Vision at CIFAR size: sslkit's FixMatch step against a plain PyTorch loop, and the input pipeline's
throughput against what a step consumes.

1. One FixMatch step on WRN-28-2: 64 labeled + 448 unlabeled 32x32 images, weak view of the labeled,
   weak and strong views of the unlabeled (960 augmented images), threshold 0.95, SGD with Nesterov
   momentum and weight decay, cosine schedule. sslkit runs ``recipes/fixmatch_cifar10.yaml``; the plain
   loop builds the same network and head, draws rows, augments each image with the same torchvision v2
   transforms in the same process, and takes the same optimizer step. Both without workers, so the
   comparison is the framework's overhead. Target: sslkit <= 1.05x the plain loop.
2. The input pipeline (``sslkit.data.loader.ImageBatches``, weak + strong views, per-sample seeded)
   in images per second at 32x32 and 96x96 for several worker counts, against the images per second a
   WRN-28-2 FixMatch step consumes at that size on this machine. Target: >= 3x.

    python benchmarks/vision.py [--steps 3] [--repeats 2] [--threads 2] [--workers 0 1 2]

Variants are interleaved and the best of ``repeats`` is kept (a shared machine's load hits each alike).
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

import sslkit
from sslkit import config
from sslkit.data import DataInfo, TensorData, sample_files
from sslkit.data.images import ImageColumn
from sslkit.data.loader import ImageBatches
from sslkit.data.stream import Stream
from sslkit.data.transforms import Cutout, FixMatchRandAugment, weak_transform
from sslkit.encoders.wrn import WideResNet
from sslkit.runner import build_data
from sslkit.schema import build

RECIPE = "recipes/fixmatch_cifar10.yaml"
LABELED, MU, THRESHOLD = 64, 7, 0.95


def sslkit_steps(root: str, steps: int, threads: int) -> float:
    over = {"data.root": root, "trainer.max_steps": steps, "trainer.progress": False, "trainer.threads": threads,
            "trainer.num_workers": 0, "trainer.eval_every": 10**9, "trainer.checkpoint_every": 10**9,
            "trainer.log_every": 10**9}
    with tempfile.TemporaryDirectory() as d:
        return sslkit.run(RECIPE, overrides=over, out=d).metrics["train_time_s"]


def plain_steps(root: str, steps: int) -> float:
    """The same FixMatch step written out in plain PyTorch."""
    cfg = config.resolve(config.apply_overrides(config.load_yaml(RECIPE), {"data.root": root}))
    data = build_data(cfg)
    torch.manual_seed(0)
    x_all, y_all = data.train["x"], data.train["y"]
    images = x_all.raw(torch.arange(len(x_all)))
    labeled = torch.nonzero(y_all >= 0).flatten()
    encoder = WideResNet(data.info)
    head = nn.Linear(encoder.out_dim, data.info.num_classes)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.03, momentum=0.9, nesterov=True, weight_decay=5e-4)
    total = 2**20
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * k / total)))
    weak = weak_transform(32, 0.125, True)
    strong = nn.Sequential(weak, FixMatchRandAugment(), Cutout(0.5))
    g = torch.Generator().manual_seed(0)

    def augment(transform, rows):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # per-image ops on one thread, as sslkit's pipeline (and DataLoader workers) do
        try:
            return torch.stack([transform(images[i]) for i in rows.tolist()]).float().div_(255)
        finally:
            torch.set_num_threads(threads)

    start = time.perf_counter()
    for _ in range(steps):
        li = labeled[torch.randint(len(labeled), (LABELED,), generator=g)]
        ui = torch.randint(len(images), (LABELED * MU,), generator=g)
        x = torch.cat([augment(weak, li), augment(weak, ui), augment(strong, ui)])
        logits = head(encoder(x))
        n, m = LABELED, LABELED * MU
        sup = F.cross_entropy(logits[:n], y_all[li])
        conf, pseudo = torch.softmax(logits[n:n + m].detach().float(), 1).max(1)
        unsup = ((conf >= THRESHOLD).float() * F.cross_entropy(logits[n + m:], pseudo, reduction="none")).mean()
        loss = sup + unsup
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss.item()  # the trainer checks every loss for NaN; the same host sync here
    return time.perf_counter() - start


def pipeline_rate(size: int, workers: int, batches: int) -> float:
    """Augmented images per second (weak + strong views of 448-row batches) delivered by ImageBatches."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2048, 3, size, size), dtype=torch.uint8, generator=g)
    data = TensorData({"x": ImageColumn(x), "y": torch.zeros(len(x), dtype=torch.long)})
    info = DataInfo("image", (3, size, size), 10)
    views = [build("views", {"name": "weak", "flip": True}, info),
             build("views", {"name": "strong", "flip": True, "cutout": 0.5}, info)]
    batches_ = ImageBatches(Stream(data, LABELED * MU, 0, "bench"), views, (3, size, size), torch.device("cpu"),
                            workers)
    next(batches_)  # start-up (worker processes) is paid once per run, not per step
    start = time.perf_counter()
    for _ in range(batches):
        next(batches_)
    return batches * LABELED * MU * 2 / (time.perf_counter() - start)


def step_consumption(size: int, rows: int) -> float:
    """Images per second a WRN-28-2 forward + backward + SGD step consumes at ``size`` (best of 2)."""
    torch.manual_seed(0)
    enc = WideResNet(DataInfo("image", (3, size, size), 10))
    head = nn.Linear(enc.out_dim, 10)
    opt = torch.optim.SGD(list(enc.parameters()) + list(head.parameters()), lr=0.03, momentum=0.9, nesterov=True)
    x, y = torch.rand(rows, 3, size, size), torch.randint(10, (rows,))
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        loss = F.cross_entropy(head(enc(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        best = min(best, time.perf_counter() - start)
    return rows / best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--skip-steps", action="store_true", help="only the pipeline part")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        sample_files.write_cifar(root, per_class=100)  # 1,000 training images, 250 of them labeled
        per_step = {}
        if not args.skip_steps:
            times = {"plain PyTorch loop": [], "sslkit trainer": []}
            for _ in range(args.repeats):
                times["plain PyTorch loop"].append(plain_steps(root, args.steps))
                times["sslkit trainer"].append(sslkit_steps(root, args.steps, args.threads))
            base = min(times["plain PyTorch loop"])
            print(f"FixMatch step, WRN-28-2, {LABELED} labeled + {LABELED * MU} unlabeled 32x32 (960 augmented "
                  f"images), {args.steps} steps, best of {args.repeats}, torch threads {args.threads}, 0 workers\n")
            print("| variant | best time per step (s) | ratio to plain loop |")
            print("|---|---|---|")
            for name, ts in times.items():
                per_step[name] = min(ts) / args.steps
                print(f"| {name} | {per_step[name]:.2f} | {min(ts) / base:.3f} |")
            print()
    print("Input pipeline (weak + strong views, 448-row batches) vs a WRN-28-2 FixMatch step's consumption\n")
    print("| size | workers | pipeline images/s | step consumes images/s | ratio |")
    print("|---|---|---|---|---|")
    for size, batches in ((32, 6), (96, 2)):
        consumed = step_consumption(size, 128 if size == 32 else 32)
        for w in args.workers:
            rate = pipeline_rate(size, w, batches)
            print(f"| {size}x{size} | {w} | {rate:.0f} | {consumed:.0f} | {rate / consumed:.1f}x |")


if __name__ == "__main__":
    main()
