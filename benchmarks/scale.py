"""One answer at any number of processes: every objective family run for a few steps by one process and by
``torchrun --nproc_per_node=2`` (gloo, CPU) at the same global batch, side by side.

For each family it prints the largest relative difference of the logged losses (every loss key of every
logged step), of the final test metrics, and of the trained parameters (``checkpoints/last.pt``), and the
wall time of both launches. Both sides run with 1 torch thread per process (``trainer.threads: 1``); the
last table times 2 processes x 1 thread against 1 process x 2 threads on the supervised recipe.

    python benchmarks/scale.py                      # every family, 8 steps
    python benchmarks/scale.py --families contrastive pl_propagation --steps 4

The families and the comparison are what ``tests/test_distributed.py`` runs at a tiny size.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes"

DIGITS_SMALL = ["encoder.hidden=[64]"]  # the mlp recipes at a width that keeps the launch short
PSEUDO = ["data.labels_per_class=5", "encoder.hidden=[64]", "trainer.batch_size=32",
          "objectives[0].unlabeled_ratio=2"]
TEXT_SMALL = ["encoder.dim=32", "encoder.depth=1", "encoder.heads=2", "data.max_length=32", "trainer.batch_size=16"]


def _pseudo(relation: str) -> tuple:
    return ("supervised_digits.yaml", [*PSEUDO, f"objectives=[{{name: pseudo_label, relation: {relation}}}]"])


# name -> (recipe, overrides); every one is run with trainer.max_steps, batch, threads and logging fixed below
FAMILIES = {
    # 451 test rows: an odd count, in 15 batches of 32 (14 full), which the 2 ranks share 7 and 8
    "supervised": ("supervised_digits.yaml", [*DIGITS_SMALL, "data.test_size=0.2505", "trainer.batch_size=32"]),
    "pl_confidence": _pseudo("{name: confidence, threshold: 0.5}"),
    "pl_propagation": _pseudo("{name: propagation, k: 5}"),
    "pl_prototype": _pseudo("prototype"),
    "pl_adaptive": _pseudo("{name: adaptive, mode: flexmatch}"),
    "pl_soft_align": _pseudo("{name: soft, align: true}"),
    "pl_teacher": _pseudo("teacher"),
    "pl_agreement": _pseudo("{name: agreement, relations: [confidence, prototype]}"),
    "pl_label_spreading": _pseudo("label_spreading"),
    "weak_ova": ("weak_digits.yaml", ["encoder.channels=[8, 16]", "objectives=[{name: weak_ova}]",
                                      "trainer.sync_batchnorm=true"]),  # the cnn holds BatchNorm
    # the encoder and the projection head hold BatchNorm: the global batch's statistics need sync_batchnorm
    "contrastive": ("contrastive_digits.yaml", [*DIGITS_SMALL, "trainer.sync_batchnorm=true"]),
    "contrastive_no_sync": ("contrastive_digits.yaml", DIGITS_SMALL),  # each rank's own BatchNorm statistics
    "contrastive_pairs": ("contrastive_digits.yaml", [*DIGITS_SMALL, "trainer.sync_batchnorm=true",
                                                      "objectives[0].pairs=explicit", "objectives[0].pair_list="
                                                      + str([[i, i + 1, int(i % 3 == 0)] for i in range(0, 60, 2)])]),
    # batch 64: NTXentLoss, as pytorch-metric-learning writes it, costs O(B^3) (4 s a step at the recipe's 256)
    "pml": ("pml_digits.yaml", [*DIGITS_SMALL, "trainer.sync_batchnorm=true", "trainer.batch_size=64"]),
    "vae": ("vae_digits.yaml", [*DIGITS_SMALL, "objectives[0].prior=standard", "objectives[0].nll_samples=4"]),
    "gan": ("gan_digits.yaml", [*DIGITS_SMALL, "trainer.sync_batchnorm=true"]),  # the generator holds BatchNorm
    # dropout off: each rank draws it for its own rows, from torch's generator, which then runs apart
    "mlm": ("lm_mlm.yaml", [*TEXT_SMALL, "encoder.dropout=0.0"]),
    "span": ("lm_span.yaml", [*TEXT_SMALL, "encoder.dropout=0.0"]),
    "plm": ("lm_plm.yaml", [*TEXT_SMALL, "encoder.dropout=0.0"]),
    "plm_mpnet": ("lm_plm.yaml", [*TEXT_SMALL, "encoder.dropout=0.0", "objectives[0].style=mpnet"]),
    "dae": ("lm_dae.yaml", [*TEXT_SMALL, "encoder.dropout=0.0"]),
    "rtd": ("lm_rtd.yaml", [*TEXT_SMALL, "encoder.dropout=0.0"]),
    "nsp": ("lm_nsp.yaml", [*TEXT_SMALL, "encoder.dropout=0.0"]),
    "sop": ("lm_sop.yaml", [*TEXT_SMALL, "encoder.dropout=0.0"]),
    "bilm": ("lm_bilm.yaml", ["encoder.dim=32", "encoder.depth=1", "encoder.dropout=0.0", "data.max_length=32",
                              "trainer.batch_size=16"]),
    "clm": ("lm_clm.yaml", TEXT_SMALL),
    "dpo": ("rlhf_dpo.yaml", ["encoder.dim=32", "encoder.depth=1", "trainer.batch_size=16"]),
    # the rule reward: a learned reward model's bias gets no gradient from pairwise comparisons, so float
    # noise moves it by Adam's step size, differently at every world size, and PPO reads absolute scores
    "ppo": ("rlhf_rule.yaml", ["encoder.dim=32", "encoder.depth=1", "trainer.batch_size=16",
                               "stages.ppo.objectives[0].minibatch_size=2"]),  # shares of 0, 1 or 2 rows
}




def overrides(name: str, steps: int) -> list:
    """The family's overrides plus the fixed ones: ``steps`` steps, every step logged, evaluation at the end
    only, 1 thread, no progress bar, no reporters (figures are drawn on rank 0 alone)."""
    _, extra = FAMILIES[name]
    return [*extra, f"trainer.max_steps={steps}", "trainer.log_every=1", "trainer.eval_every=100000",
            "trainer.threads=1", "trainer.progress=false", "reporters=[]"]


def worker(out: Path, names: list, steps: int) -> None:
    """Run the families one after another in this process (under torchrun: one process group for all)."""
    import torch.distributed as dist

    import sslkit

    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        dist.init_process_group("gloo")
    for name in names:
        recipe, _ = FAMILIES[name]
        sslkit.run(RECIPES / recipe, overrides=overrides(name, steps), out=out / name, overwrite=True)
    if dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(out: Path, names: list, steps: int, processes: int, timeout: float = 900, nodes: int = 1) -> float:
    """Run ``names`` into ``out/<name>`` with ``processes`` gloo processes; returns the wall seconds. With
    ``nodes`` > 1 the processes are split over that many ``torchrun --nnodes`` launches on this machine, which
    meet at a rendezvous on 127.0.0.1 as separate machines would."""
    script = [str(Path(__file__).resolve()), "--worker", str(out), "--steps", str(steps), "--families", *names]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run"]
    if processes == 1:
        commands = [[sys.executable, *script]]
    elif nodes == 1:
        commands = [[*torchrun, "--standalone", f"--nproc_per_node={processes}", *script]]
    else:
        port = free_port()
        commands = [[*torchrun, f"--nnodes={nodes}", f"--node_rank={i}", f"--nproc_per_node={processes // nodes}",
                     "--master_addr=127.0.0.1", f"--master_port={port}", *script] for i in range(nodes)]
    start = time.perf_counter()
    procs = [subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for c in commands]
    results = [p.communicate(timeout=timeout) for p in procs]
    for p, (_, err) in zip(procs, results):
        if p.returncode != 0:
            raise RuntimeError(f"{processes}-process launch over {nodes} node(s) failed:\n{err[-4000:]}")
    return time.perf_counter() - start


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-8)


def _losses(run: Path) -> list:
    """Every logged step's loss keys, in order (under a staged recipe, each stage's in turn)."""
    files = sorted(run.glob("**/metrics.jsonl"))
    recs = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if k == "loss" or k.endswith("_loss") or k.endswith("/loss")}
            for r in recs if "loss" in r]


NOT_COMPARED = ("step", "epoch", "train_loss", "train_time_s", "samples_per_s")  # the losses are; times differ


def _finals(run: Path) -> dict:
    """The final metrics (test scores, probes, running rates) of a run or of each stage of a staged run."""
    m = json.loads((run / "metrics.json").read_text())
    return {k: v for k, v in m.items() if k.rsplit("/", 1)[-1] not in NOT_COMPARED and isinstance(v, (int, float))}


def _weights(run: Path) -> dict:
    import torch

    from sslkit import checkpoint

    out = {}
    for f in sorted(run.glob("**/checkpoints/last.pt")):
        for k, v in checkpoint.load(f)["model"].items():
            if torch.is_tensor(v) and v.is_floating_point():
                out[f"{f.parent.parent.name}/{k}"] = v
    return out


def compare(one: Path, two: Path) -> dict:
    """Largest relative differences between the runs in ``one`` and ``two``: logged losses, final test
    metrics, parameters (the largest ``|a - b|`` over the largest ``|a|``); ``steps``: logged steps compared."""
    la, lb = _losses(one), _losses(two)
    if len(la) != len(lb) or not la:
        raise AssertionError(f"{one.name}: {len(la)} logged steps in one process, {len(lb)} in two")
    loss = max(_rel(a[k], b[k]) for a, b in zip(la, lb) for k in a)
    fa, fb = _finals(one), _finals(two)
    final = max((_rel(fa[k], fb[k]) for k in fa if k in fb), default=0.0)
    wa, wb = _weights(one), _weights(two)
    # the largest difference of any parameter, relative to the largest parameter of the model
    scale = max((float(w.abs().max()) for w in wa.values()), default=1.0)
    weights = max((float((wa[k] - wb[k]).abs().max()) for k in wa), default=0.0) / max(scale, 1e-8)
    return {"steps": len(la), "loss": loss, "final": final, "weights": weights, "finals": (fa, fb)}


def time_split(out: Path, steps: int, repeats: int) -> dict:
    """Wall seconds (median of ``repeats``) of the supervised recipe for ``steps`` steps at global batch 256:
    1 process x 2 threads against 2 processes x 1 thread (this machine's 2 cores either way)."""
    import statistics

    recipe, extra = str(RECIPES / "supervised_digits.yaml"), ["trainer.batch_size=256", "trainer.progress=false",
                                                              f"trainer.max_steps={steps}", "reporters=[]"]
    sets = lambda threads: [a for o in [*extra, f"trainer.threads={threads}"] for a in ("--set", o)]  # noqa: E731
    commands = {
        "1 process x 2 threads": [sys.executable, "-m", "sslkit", "run", recipe, *sets(2)],
        "2 processes x 1 thread": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                   "--nproc_per_node=2", "-m", "sslkit", "run", recipe, *sets(1)],
    }
    times = {k: [] for k in commands}
    for i in range(repeats):
        for name, command in commands.items():  # alternated, so drift in the machine's load hits both
            start = time.perf_counter()
            proc = subprocess.run([*command, "--out", str(out / f"{i}-{name[0]}"), "--overwrite"], cwd=ROOT,
                                  capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-3000:])
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "scale")
    parser.add_argument("--split-steps", type=int, default=300,
                        help="steps of the 2x1 vs 1x2 timing (0: skip it)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        return worker(args.worker, args.families, args.steps)
    t1 = launch(args.out / "one", args.families, args.steps, 1)
    t2 = launch(args.out / "two", args.families, args.steps, 2)
    print(f"{args.steps} steps per family, same global batch; 1 torch thread per process; 2-core CPU, gloo\n")
    print("| family | steps | max rel. diff of logged losses | final test metrics | parameters |")
    print("|---|---|---|---|---|")
    for name in args.families:
        c = compare(args.out / "one" / name, args.out / "two" / name)
        print(f"| {name} | {c['steps']} | {c['loss']:.1e} | {c['final']:.1e} | {c['weights']:.1e} |")
    print(f"\nwall time of all families: 1 process {t1:.1f} s, 2 processes {t2:.1f} s")
    if args.split_steps:
        t = time_split(args.out / "split", args.split_steps, args.repeats)
        a, b = t["1 process x 2 threads"], t["2 processes x 1 thread"]
        print(f"\nsupervised_digits.yaml, {args.split_steps} steps of global batch 256, wall with start-up, "
              f"median of {args.repeats}:")
        print("| layout | wall s |\n|---|---|")
        for k, v in t.items():
            print(f"| {k} | {v:.1f} |")
        print(f"2 processes x 1 thread take {b / a:.2f}x the time of 1 process x 2 threads")


if __name__ == "__main__":
    main()
