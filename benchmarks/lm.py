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
6. ``--compose-seeds 0-9``: the composed ``recipes/semi_docstrings.yaml`` (the same mlm pretraining, then
   ``pseudo_label`` from ``label_spreading``, a TF-IDF graph over every training docstring) against the
   mlm-pretrained supervised fine-tune, with the ablation (each part alone, then together; the earlier forms
   of the recipe) and the classical baselines (TF-IDF with logistic regression or LabelSpreading) per seed
   and label budget; seeds 0-2 tuning, the rest held-out (``benchmarks/seeds.py``). ``--pretrained DIR``
   keeps each seed's pretraining in ``DIR/s<seed>/pretrain`` and reuses a finished one (one pretraining
   serves every row of a seed).

    python benchmarks/lm.py [--steps 40] [--repeats 3] [--budget 150] [--skip-throughput] [--skip-recipe] [--skip-compare]
    python benchmarks/lm.py --finetune-seeds 0 1 2 --labels-per-class 10 20 40
    python benchmarks/lm.py --compose-seeds 0-2 --labels-per-class 10 20 --threads 1 --pretrained /tmp/pre
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeds import SeedTable, held_out_verdict, parse_seeds  # noqa: E402

import sslkit
from sslkit import config
from sslkit.run_folder import is_finished, read_metrics
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


SEMI = ROOT / "recipes" / "semi_docstrings.yaml"
PL = "stages.finetune.objectives[0]."
MLM_KEPT = {"stages.finetune.objectives[1]": {"name": "mlm"}}  # the pretraining's loss beside the stage's objective
# the same in the supervised fine-tune; 400 steps as without it (an epoch would now be a pass over every training
# row, not over the labeled ones)
MLM_ON = {**MLM_KEPT, "stages.finetune.trainer.max_steps": 400}


def pseudo_label_alone(relation: dict, **options) -> dict:
    """Overrides that make semi_docstrings.yaml's fine-tune stage its ``pseudo_label`` objective alone (no
    masked-LM loss kept on) with this relation: the earlier sessions' forms of the recipe."""
    objective = config.load_yaml(SEMI)["stages"]["finetune"]["objectives"][0]
    return {"stages.finetune.objectives": [{**objective, "relation": relation, **options}]}


def confidence(threshold: float) -> dict:
    return {"name": "confidence", "threshold": threshold}


RELATION = config.load_yaml(SEMI)["stages"]["finetune"]["objectives"][0]["relation"]  # the recipe's: label_spreading
# UDA's consistency targets (Xie et al. 2020): softmax sharpened at temperature 0.4, kept above 0.8, soft CE
UDA = pseudo_label_alone({**confidence(0.8), "temperature": 0.4}, loss="soft")
COMPOSE = (  # (row key, row name, recipe, pretrained?, overrides): each part alone, then together
    ("scratch", "supervised, scratch", "finetune_docstrings.yaml", False, {}),
    ("pl_scratch", "pseudo_label alone at 0.95, scratch (no pretraining)", "semi_docstrings.yaml", False,
     pseudo_label_alone(confidence(0.95))),
    ("ft", "mlm-pretrained supervised fine-tune", "finetune_docstrings.yaml", True, {}),
    ("ft_mlm", "pretraining, then supervised with the masked-LM loss kept on", "finetune_docstrings.yaml", True,
     MLM_ON),
    ("uda", "pretraining, then UDA-style soft targets (T 0.4, threshold 0.8)", "semi_docstrings.yaml", True, UDA),
    ("freematch", "pretraining, then pseudo_label with FreeMatch's adaptive thresholds", "semi_docstrings.yaml",
     True, pseudo_label_alone({"name": "adaptive", "mode": "freematch"})),
    ("pl90", "pretraining, then pseudo_label alone at 0.9 (the third session's fine-tune stage)",
     "semi_docstrings.yaml", True, pseudo_label_alone(confidence(0.9))),
    ("pl95", "pretraining, then pseudo_label alone at 0.95 (the fourth session's recipe)", "semi_docstrings.yaml",
     True, pseudo_label_alone(confidence(0.95))),
    ("pl80", "pretraining, then pseudo_label alone at 0.8", "semi_docstrings.yaml", True,
     pseudo_label_alone(confidence(0.8))),
    ("pl_mlm95", "pretraining, then pseudo_label at 0.95 with the masked-LM loss kept on", "semi_docstrings.yaml",
     True, {PL + "relation": confidence(0.95), **MLM_KEPT}),
    ("pl_mlm80", "pretraining, then pseudo_label at 0.8 + masked-LM (the fifth session's recipe)",
     "semi_docstrings.yaml", True, {PL + "relation": confidence(0.8), **MLM_KEPT}),
    ("ls_mlm_scratch", "label_spreading + masked-LM kept on, scratch (no pretraining)", "semi_docstrings.yaml",
     False, MLM_KEPT),
    ("ls_scratch", "pseudo_label from label_spreading, scratch (no pretraining)", "semi_docstrings.yaml", False, {}),
    ("ls_mlm", "pretraining, then label_spreading + masked-LM kept on (the form tried first)", "semi_docstrings.yaml",
     True, MLM_KEPT),
    ("composed", "composed: mlm pretraining, then pseudo_label from label_spreading (semi_docstrings.yaml)",
     "semi_docstrings.yaml", True, {}),
)
# the rows of --no-ablation: the comparison, the previous recipe, and the form with the masked-LM loss kept on;
# a bare --rows runs the comparison (the mlm fine-tune and the recipe) alone
PLAIN = ("ft", "pl_mlm80", "ls_mlm", "composed")
TFIDF = "TF-IDF + logistic regression (labeled rows)"
SPREAD = "LabelSpreading on TF-IDF (the recipe's relation alone, no encoder)"


def spreading_options() -> dict:
    """The k-NN graph options of semi_docstrings.yaml's label_spreading relation (scikit-learn's defaults
    where the recipe sets none), so that the baseline is the recipe's own relation without an encoder."""
    options = {"k": 10, "alpha": 0.2, **(RELATION if RELATION.get("name") == "label_spreading" else {})}
    return {"n_neighbors": options["k"], "alpha": options["alpha"], "max_iter": 1000}


def classical_baselines(run_dir: Path) -> dict:
    """The classical baselines on a finished run's split, labeled rows and word ids, as test accuracy:
    TF-IDF of the ids (sublinear tf, idf over every training row; special ids dropped) with logistic
    regression (C 10, as looked at on seed 0) on the labeled rows, and scikit-learn's LabelSpreading
    (k-NN graph, :func:`spreading_options`) fitted on every training row's TF-IDF, predicting the test rows."""
    import warnings

    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.semi_supervised import LabelSpreading

    from sslkit.text.bag_of_words import word_counts
    from sslkit.runner import load_run

    _, data, _ = load_run(run_dir)
    tok = data.info.tokenizer
    train, test = data.train.columns, data.test.columns
    train_counts = word_counts(train["x"], tok.vocab_size, tok.special_ids)
    tfidf = TfidfTransformer(sublinear_tf=True).fit(train_counts)
    X, X_test = tfidf.transform(train_counts), tfidf.transform(word_counts(test["x"], tok.vocab_size, tok.special_ids))
    y, y_test = train["y"].numpy(), test["y"].numpy()
    labeled = y >= 0
    clf = LogisticRegression(C=10, max_iter=3000).fit(X[labeled], y[labeled])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "invalid value encountered in divide", RuntimeWarning)
        spread = LabelSpreading(kernel="knn", **spreading_options()).fit(X, y)
        spread_pred = spread.predict(X_test)
    return {TFIDF: float((clf.predict(X_test) == y_test).mean()), SPREAD: float((spread_pred == y_test).mean())}


def pretrained_encoder(seed: int, base: dict, folder: Path) -> Path:
    """``folder/s<seed>/pretrain``: semi_docstrings.yaml's pretrain stage for ``seed`` (every row of the seed
    starts from it), trained unless a finished one is there already."""
    run_dir = folder / f"s{seed}"
    if not is_finished(run_dir / "pretrain"):
        sslkit.run(SEMI, overrides=base, out=run_dir, stage="pretrain", overwrite=True)
    return run_dir / "pretrain"


def compose(seeds: list, labels_per_class: list, threads: int, folder: Path, keys=None) -> dict:
    """Test accuracy of each COMPOSE row (those named in ``keys``; all by default) at each seed and label
    budget: one SeedTable per budget. The finetune stages start from the seed's pretrained encoder
    (``encoder.init_from``) or from scratch (``from: null``). A row whose run folder in ``folder`` is finished
    is read, not trained again (runs are deterministic for a seed and thread count)."""
    rows = COMPOSE if keys is None else [r for r in COMPOSE if r[0] in set(keys) | {"ft", "composed"}]
    tables = {n: SeedTable(f"docstrings, {n} labels per class, test accuracy", ours=[rows[-1][1]], digits=3)
              for n in labels_per_class}
    smoke = {"trainer.max_steps": 3} if os.environ.get("SSLKIT_SMOKE") == "1" else {}
    for seed in seeds:
        base = {"seed": seed, "trainer.progress": False, "trainer.threads": threads, **smoke}
        start = time.perf_counter()
        pre = pretrained_encoder(seed, base, folder)
        pre_s = time.perf_counter() - start
        for n in labels_per_class:
            cells = []
            for key, name, recipe, warm, extra in rows:
                over = {**base, "data.labels_per_class": n, "stages.finetune.from": None,
                        **({"stages.finetune.encoder.init_from": str(pre)} if warm else {}),
                        **extra}
                start, run_dir = time.perf_counter(), folder / f"s{seed}_{n}_{key}" / "finetune"
                metrics = (read_metrics(run_dir) if is_finished(run_dir) else
                           sslkit.run(ROOT / "recipes" / recipe, overrides=over, stage="finetune", overwrite=True,
                                      out=run_dir.parent).metrics)
                acc = metrics.get("finetune/test_accuracy", metrics.get("test_accuracy"))
                tables[n].add(seed, name, acc)
                rate = metrics.get("finetune/mean_mask_rate", metrics.get("mean_mask_rate"))
                right = metrics.get("finetune/pseudo_label_accuracy", metrics.get("pseudo_label_accuracy", float("nan")))
                extra_txt = f", pseudo-labels kept {rate:.2f} / right {right:.2f}" if rate is not None else ""
                cells.append(f"{name} {acc:.3f} ({time.perf_counter() - start:.0f} s{extra_txt})")
            # the same split and labeled rows
            for name, acc in classical_baselines(folder / f"s{seed}_{n}_ft" / "finetune").items():
                tables[n].add(seed, name, acc)
                cells.append(f"{name} {acc:.3f}")
            print(f"# seed {seed}, {n} labels/class (pretraining {pre_s:.0f} s): " + "; ".join(cells), flush=True)
    composed, tuned = rows[-1][1], next(name for key, name, *_ in COMPOSE if key == "ft")
    for n, table in tables.items():
        print("\n" + table.markdown() + "\n")
        diffs = {s: table.scores[composed][s] - table.scores[tuned][s] for s in table.seeds()}
        for which in ("tuning", "held-out"):
            d = [v for s, v in diffs.items() if (s in (0, 1, 2)) == (which == "tuning")]
            if d:
                print(f"composed - mlm fine-tune, {which} seeds: mean {sum(d) / len(d):+.3f} "
                      f"(better on {sum(v > 0 for v in d)} of {len(d)})")
        held = [v for s, v in diffs.items() if s not in (0, 1, 2)]
        target = table.summary(tuned)["held_out_mean"]
        if held and target is not None:
            print(held_out_verdict(table, composed, target + 0.03) + " (target: the mlm fine-tune's "
                  "held-out mean + 0.03)")
    return tables


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
    ap.add_argument("--compose-seeds", type=parse_seeds, default=None,
                    help="run only the composed-recipe comparison (semi_docstrings.yaml), e.g. 0-9")
    ap.add_argument("--pretrained", default=None,
                    help="folder keeping each seed's pretraining for --compose-seeds (default: a temporary one)")
    rows = ap.add_mutually_exclusive_group()
    rows.add_argument("--no-ablation", action="store_true",
                    help="--compose-seeds: only the mlm fine-tune, the composed recipe and its earlier forms "
                         "(no scratch rows)")
    rows.add_argument("--rows", nargs="*", choices=[r[0] for r in COMPOSE], default=None,
                    help="--compose-seeds: only these rows (the mlm fine-tune and the composed recipe always run)")
    args = ap.parse_args()
    if args.compose_seeds:
        threads = args.threads or 1
        torch.set_num_threads(threads)
        print(f"torch threads {threads} (trainer.threads={threads}); seeds {args.compose_seeds}\n", flush=True)
        folder = Path(args.pretrained or tempfile.mkdtemp(prefix="compose-"))
        compose(args.compose_seeds, args.labels_per_class, threads, folder,
                args.rows if args.rows is not None else PLAIN if args.no_ablation else None)
        return
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
