"""Language-model pretraining benchmarks.

1. ``clm`` training throughput (tokens/s) of sslkit against a plain PyTorch loop with the same
   nanoGPT-CPU-sized model (gpt: 4 layers, 4 heads, width 128, context 64, batch 32), same data,
   optimizer (AdamW), grad clipping and steps; best of ``--repeats`` alternating runs.
2. ``mlm`` masking throughput: the vectorised collator (``sslkit.text.masking.mlm_mask``) against a
   naive per-sequence, per-token Python implementation of the same 15 % / 80-10-10 rule.
3. The held-out metric of every objective after the same budget (``docs/tutorials/compare_lm.py``)
   and the docstring fine-tune from the mlm encoder against training from scratch.
4. Wall time of the default ``recipes/lm_clm.yaml``.
5. ``--finetune-seeds S...``: ``recipes/finetune_docstrings.yaml`` (mlm on the unlabeled docstrings ->
   classifier on 20 labels per class) against its finetune stage alone from scratch, per seed
   (each seed is another train/test split), optionally at several ``--labels-per-class``.

    python benchmarks/lm.py [--steps 40] [--repeats 3] [--budget 150] [--skip-throughput] [--skip-recipe] [--skip-compare]
    python benchmarks/lm.py --finetune-seeds 0 1 2 --labels-per-class 10 20 40
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import sslkit
from sslkit import config
from sslkit.runner import build_data, seed_everything
from sslkit.schema import build
from sslkit.text.masking import mlm_mask

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "lm_clm.yaml"
BATCH, CONTEXT = 32, 64


def plain_loop(steps: int) -> float:
    """Hand-written loop: the same gpt encoder and tied head, no trainer. Returns seconds."""
    cfg = config.load_recipe(RECIPE)
    seed_everything(0)
    data = build_data(cfg)
    torch.manual_seed(0)
    enc = build("encoders", {k: v for k, v in cfg["encoder"].items() if k != "init_from"}, data.info, path="encoder")
    bias = torch.nn.Parameter(torch.zeros(data.info.tokenizer.vocab_size))
    params = list(enc.parameters()) + [bias]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    x = data.train["x"]
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        batch = x[torch.randint(0, len(x), (BATCH,), generator=g)]
        logits = F.linear(enc.forward_tokens(batch[:, :-1]), enc.tok.weight, bias)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return time.perf_counter() - start


def sslkit_loop(steps: int) -> float:
    over = {"trainer.max_steps": steps, "trainer.epochs": 1000, "trainer.batch_size": BATCH,
            "trainer.progress": False, "trainer.scheduler": {"name": "constant"},
            "trainer.eval_every": 10**9, "trainer.checkpoint_every": 10**9, "objectives[0].sample_tokens": 0}
    with tempfile.TemporaryDirectory() as d:
        return sslkit.run(RECIPE, overrides=over, out=d).metrics["train_time_s"]


def throughput(steps: int, repeats: int) -> list:
    plain, ours = [], []
    for _ in range(repeats):  # alternate, so load changes on the shared machine hit both
        plain.append(plain_loop(steps))
        ours.append(sslkit_loop(steps))
    tokens = steps * BATCH * (CONTEXT - 1)
    tp, to = tokens / min(plain), tokens / min(ours)
    return ["| clm training, gpt 4x4x128, ctx 64, batch 32 | tokens/s | "
            f"{tp:,.0f} | {to:,.0f} | {to / tp:.2f}x | >= 0.95x |"]


def naive_mlm(ids: torch.Tensor, vocab: int, specials: set, mask_id: int, prob=0.15) -> tuple:
    """Per-sequence, per-token Python: what a straightforward collator would do."""
    inputs, labels = [], []
    for row in ids.tolist():
        inp, lab = [], []
        for t in row:
            if t not in specials and random.random() < prob:
                lab.append(t)
                r = random.random()
                inp.append(mask_id if r < 0.8 else (random.randrange(len(specials), vocab) if r < 0.9 else t))
            else:
                lab.append(-100)
                inp.append(t)
        inputs.append(inp)
        labels.append(lab)
    return torch.tensor(inputs), torch.tensor(labels)


def masking(reps: int = 20) -> list:
    from sslkit.text.tokenizers import ByteTokenizer

    tok = ByteTokenizer()
    ids = torch.randint(5, 261, (256, 128))
    ids[:, 0], ids[:, -1] = tok.cls_id, tok.sep_id
    mlm_mask(ids, tok)
    start = time.perf_counter()
    for _ in range(reps):
        mlm_mask(ids, tok)
    fast = reps * ids.numel() / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(2):
        naive_mlm(ids, tok.vocab_size, set(tok.special_ids), tok.mask_id)
    slow = 2 * ids.numel() / (time.perf_counter() - start)
    return [f"| mlm masking, batch 256 x 128 | tokens/s | {slow:,.0f} (naive Python) | {fast:,.0f} | "
            f"{fast / slow:.0f}x | faster |"]


def compare(budget: int) -> None:
    os.environ["LM_STEPS"] = str(budget)
    os.environ.setdefault("SSLKIT_OUT", str(Path(tempfile.mkdtemp()) / "lm_compare"))
    sys.path.insert(0, str(ROOT / "docs" / "tutorials"))
    import compare_lm

    compare_lm.main()


def finetune(seeds: list, labels_per_class: list, threads=None) -> None:
    """Pretrained (the recipe's two stages) vs scratch (its finetune stage alone), per seed; the pretrain
    stage uses every training docstring and no label, so one pretraining serves every labels_per_class."""
    recipe = ROOT / "recipes" / "finetune_docstrings.yaml"
    print("| seed | labels per class | from scratch | mlm-pretrained | difference | pretrain masked acc. |")
    print("|---|---|---|---|---|---|")
    diffs = {n: [] for n in labels_per_class}
    with tempfile.TemporaryDirectory() as d:
        for seed in seeds:
            base = {"seed": seed, "trainer.progress": False, **({"trainer.threads": threads} if threads else {}),
                    **({"trainer.max_steps": 3} if os.environ.get("SSLKIT_SMOKE") == "1" else {})}
            pre = sslkit.run(recipe, overrides=base, out=Path(d) / f"s{seed}", stage="pretrain")
            pre_dir = pre.run_dir / "pretrain"
            for n in labels_per_class:
                over = {**base, "data.labels_per_class": n, "stages.finetune.from": None}
                scratch = sslkit.run(recipe, overrides=over, out=Path(d) / f"s{seed}_{n}_scratch", stage="finetune")
                warm = sslkit.run(recipe, overrides={**over, "stages.finetune.encoder.init_from": str(pre_dir)},
                                  out=Path(d) / f"s{seed}_{n}_pre", stage="finetune")
                a, b = scratch.metrics["finetune/test_accuracy"], warm.metrics["finetune/test_accuracy"]
                diffs[n].append(b - a)
                print(f"| {seed} | {n} | {a:.3f} | {b:.3f} | {b - a:+.3f} | "
                      f"{pre.metrics['pretrain/test_masked_accuracy']:.3f} |")
                sys.stdout.flush()
    for n, ds in diffs.items():
        print(f"\nlabels per class {n}: mean difference {sum(ds) / len(ds):+.3f} over {len(ds)} seeds "
              f"(pretrained better in {sum(x > 0 for x in ds)} of {len(ds)})", end="")
    print()


def default_recipe() -> None:
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        res = sslkit.run(RECIPE, overrides={"trainer.progress": False}, out=d)
        wall = time.perf_counter() - start
    print(f"\n| recipe | steps | wall time (s) | test_perplexity | target |\n|---|---|---|---|---|\n"
          f"| recipes/lm_clm.yaml (default) | {res.metrics['step']} | {wall:.0f} | "
          f"{res.metrics['test_perplexity']:.2f} | < 300 s |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=int, default=150)
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-recipe", action="store_true")
    ap.add_argument("--finetune-seeds", type=int, nargs="*", default=None,
                    help="run only the pretrain -> finetune comparison, for these seeds")
    ap.add_argument("--labels-per-class", type=int, nargs="*", default=[20])
    ap.add_argument("--threads", type=int, default=None, help="torch threads per run (finetune comparison)")
    args = ap.parse_args()
    if args.finetune_seeds:
        finetune(args.finetune_seeds, args.labels_per_class, args.threads)
        return
    torch.manual_seed(0)
    random.seed(0)
    if not args.skip_throughput:
        rows = masking() + throughput(args.steps, args.repeats)
        print("| benchmark | unit | baseline | sslkit | ratio | target |\n|---|---|---|---|---|---|")
        print("\n".join(rows))
        sys.stdout.flush()
    if not args.skip_recipe:
        default_recipe()
        sys.stdout.flush()
    if not args.skip_compare:
        print()
        compare(args.budget)


if __name__ == "__main__":
    main()
