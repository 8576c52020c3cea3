"""One-command GPU check: WRN-28-2 FixMatch steps (64 labeled + 448 unlabeled 32x32 images, weak and
strong views = 960 images a step) with bf16 autocast and ``channels_last``, fed by sslkit's worker
input pipeline. Reports images per second, the share of wall time the training loop spent waiting
for the next batch, and the same steps on batches already on the GPU (the compute-only speed): when
the pipeline keeps up, the two speeds agree and the wait is near zero.

    python benchmarks/gpu_check.py [--steps 50] [--workers N] [--compile] [--ddp-steps 4]

With two or more GPUs it then runs benchmarks/scale.py's families (DDP over NCCL, bf16 autocast,
torch's SyncBatchNorm where a family sets ``trainer.sync_batchnorm``) on 1 process and on 2, and prints
the largest relative differences; with one GPU it says that part needs two.

Without CUDA it prints that it needs a GPU and exits with status 1, measuring nothing.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time

import torch

RECIPE = "recipes/fixmatch_cifar10.yaml"
IMAGES_PER_STEP = 64 + 448 * 2


def build_trainer(root: str, steps: int, workers, compile_: bool, device: str = "cuda", extra=None):
    from sslkit import config
    from sslkit.runner import build_data, build_model, seed_everything
    from sslkit.trainer import Trainer, resolve_device

    over = {"data.root": root, "trainer.max_steps": steps, "trainer.progress": False,
            "trainer.precision": "bf16", "trainer.num_workers": workers, "trainer.compile": compile_, **(extra or {})}
    cfg = config.resolve(config.apply_overrides(config.load_yaml(RECIPE), over))
    seed_everything(0)
    data = build_data(cfg)
    model = build_model(cfg, data)
    return Trainer(cfg, data, model, resolve_device(device), None)


def timed_steps(trainer, steps: int, fetch) -> tuple:
    """(seconds for ``steps`` steps, seconds spent inside ``fetch``), GPU synchronised at both ends."""
    torch.cuda.synchronize()
    start, waited = time.perf_counter(), 0.0
    for _ in range(steps):
        t = time.perf_counter()
        batches = fetch()
        waited += time.perf_counter() - t
        trainer._train_step(batches)
        trainer.step += 1
    torch.cuda.synchronize()
    return time.perf_counter() - start, waited


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: sslkit's choice)")
    ap.add_argument("--compile", action="store_true", help="trainer.compile: true (torch.compile the encoder)")
    ap.add_argument("--ddp-steps", type=int, default=4, help="steps of each family in the DDP check (2+ GPUs)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device (torch.cuda.is_available() is False); this check needs a GPU, nothing "
              "was measured. Run it on a machine with an NVIDIA GPU.")
        return 1
    from sslkit.data import sample_files

    with tempfile.TemporaryDirectory() as root:
        sample_files.write_cifar(root, per_class=500)  # 5,000 training images in CIFAR-10's format
        total = args.warmup + 2 * args.steps
        trainer = build_trainer(root, total, args.workers, args.compile)
        loader = next(iter(trainer.batches.values()))
        enc = trainer.model.encoder
        print(f"device: {torch.cuda.get_device_name()}  |  WRN-28-2, bf16 autocast, channels_last: "
              f"{next(enc.parameters()).is_contiguous(memory_format=torch.channels_last)}, compile: {args.compile}, "
              f"workers: {getattr(loader, 'num_workers', 0)}")
        timed_steps(trainer, args.warmup, trainer._next_batches)  # worker start-up, cuDNN autotuning, compile
        fed, waited = timed_steps(trainer, args.steps, trainer._next_batches)
        fixed = trainer._next_batches()
        compute, _ = timed_steps(trainer, args.steps, lambda: fixed)
    fed_rate, compute_rate = IMAGES_PER_STEP * args.steps / fed, IMAGES_PER_STEP * args.steps / compute
    share = waited / fed
    print(f"pipeline-fed:  {fed_rate:9.0f} images/s  ({fed / args.steps * 1000:.1f} ms/step, "
          f"{100 * share:.1f} % of the time waiting for the next batch)")
    print(f"compute only:  {compute_rate:9.0f} images/s  ({compute / args.steps * 1000:.1f} ms/step, batches "
          f"already on the GPU)")
    waits = share > 0.05 or fed_rate < 0.95 * compute_rate
    print(f"GPU waited for data: {'YES' if waits else 'no'} (pipeline-fed speed is {fed_rate / compute_rate:.2f}x "
          f"the compute-only speed)")
    ddp_check(args.ddp_steps)
    return 0


DDP_FAMILIES = ["supervised", "pl_propagation", "contrastive", "pml", "mlm", "clm", "vae"]


def ddp_check(steps: int) -> None:
    """benchmarks/scale.py's comparison on CUDA: 1 process against 2 (one GPU each), bf16 autocast."""
    if torch.cuda.device_count() < 2:
        print(f"DDP check: needs 2 GPUs, this machine has {torch.cuda.device_count()}; not run")
        return
    import pathlib

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import scale

    with tempfile.TemporaryDirectory() as out:
        out = pathlib.Path(out)
        scale.launch(out / "one", DDP_FAMILIES, steps, 1)
        scale.launch(out / "two", DDP_FAMILIES, steps, 2)
        print(f"DDP check, NCCL, bf16 autocast, {steps} steps: max relative difference of the logged losses")
        for name in DDP_FAMILIES:
            c = scale.compare(out / "one" / name, out / "two" / name)
            print(f"  {name:16s} losses {c['loss']:.1e}  final metrics {c['final']:.1e}  parameters {c['weights']:.1e}")


if __name__ == "__main__":
    sys.exit(main())
