"""Compare the language-model pretraining objectives on the same corpus and budget, then fine-tune.

Trains every ``recipes/lm_*.yaml`` for the same number of steps (batch 32, same seed), evaluating
its own metric on the held-out documents every ``EVAL`` steps, and draws the validation curves
into ``lm_curves.png``. Then runs ``recipes/finetune_docstrings.yaml`` (mlm on the unlabeled
docstrings, then the classifier) against its classifier stage alone, from scratch. Writes ``lm_compare.json`` and prints a table.

Environment: ``SSLKIT_OUT`` (output folder, default ``runs/lm_compare``), ``SSLKIT_SMOKE=1``
(a few steps, for tests), ``LM_STEPS`` / ``LM_BATCH`` / ``LM_EVALS`` (budgets).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import sslkit
from sslkit.plots import pyplot

ROOT = Path(__file__).resolve().parents[2]
SMOKE = os.environ.get("SSLKIT_SMOKE") == "1"
OUT = Path(os.environ.get("SSLKIT_OUT", "runs/lm_compare"))
STEPS = 3 if SMOKE else int(os.environ.get("LM_STEPS", 300))
EVAL = 3 if SMOKE else max(STEPS // int(os.environ.get("LM_EVALS", 4)), 1)
BATCH = int(os.environ.get("LM_BATCH", 32))
OBJECTIVES = ["clm", "bilm", "mlm", "span", "rtd", "plm", "dae", "nsp", "sop"]
METRIC = {"clm": "test_perplexity", "bilm": "test_perplexity", "mlm": "test_masked_perplexity", "span": "test_masked_perplexity",
          "rtd": "test_rtd_accuracy", "plm": "test_plm_perplexity", "dae": "test_reconstruction_perplexity",
          "nsp": "test_pair_accuracy", "sop": "test_pair_accuracy"}


def budget(extra=None) -> dict:
    # epochs far beyond the budget, so that max_steps (not each recipe's own epochs) ends every run
    over = {"trainer.max_steps": STEPS, "trainer.epochs": 10_000, "trainer.eval_every": EVAL, "trainer.progress": False,
            "trainer.batch_size": BATCH, "trainer.log_every": EVAL}
    if SMOKE:  # tiny rows keep the smoke run fast
        over.update({"data.max_length": 32, "data.max_documents": 16})
    return {**over, **(extra or {})}


def pretrain(name: str) -> dict:
    res = sslkit.run(ROOT / "recipes" / f"lm_{name}.yaml", overrides=budget(), out=OUT / f"lm_{name}", overwrite=True)
    curve = [json.loads(line) for line in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    key = METRIC[name]
    points = [(r["step"], r[key]) for r in curve if key in r]
    return {"metric": key, "value": res.metrics[key], "curve": points, "time_s": res.metrics["train_time_s"],
            "run_dir": str(res.run_dir), "all": {k: v for k, v in res.metrics.items() if k.startswith("test_")}}


def finetune(pretrained: bool) -> float:
    """Test accuracy of the docstring classifier of recipes/finetune_docstrings.yaml: its pretrain ->
    finetune pipeline (``pretrained``) or its finetune stage alone, from scratch."""
    over = {"trainer.progress": False}
    if not pretrained:
        over["stages.finetune.from"] = None
    if SMOKE:
        over.update({"trainer.max_steps": 3, "data.max_length": 16, "data.test_size": 0.1})
    name = "ft_pretrained" if pretrained else "ft_scratch"
    res = sslkit.run(ROOT / "recipes" / "finetune_docstrings.yaml", overrides=over, out=OUT / name, overwrite=True,
                     stage=None if pretrained else "finetune")
    return res.metrics["finetune/test_accuracy"]


def plot(results: dict, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, r in results.items():
        steps, values = zip(*r["curve"]) if r["curve"] else ((), ())
        ax = axes[1] if "accuracy" in r["metric"] else axes[0]
        ax.plot(steps, values, marker="o", label=f"{name} ({r['metric'][5:]})")
    axes[0].set(title="held-out perplexity (own target tokens)", xlabel="step", ylabel="perplexity", yscale="log")
    axes[1].set(title="held-out accuracy", xlabel="step", ylabel="accuracy")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(objectives=OBJECTIVES) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    results = {name: pretrain(name) for name in objectives}
    plot(results, OUT / "lm_curves.png")
    summary = {"steps": STEPS, "objectives": results}
    if "mlm" in results:  # the downstream check: mlm pretraining on the task's own unlabeled docstrings
        summary["finetune"] = {"scratch": finetune(False), "pretrained": finetune(True)}
    (OUT / "lm_compare.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"| objective | held-out metric | value after {STEPS} steps | train time (s) |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['metric']} | {r['value']:.4g} | {r['time_s']:.0f} |")
    if "finetune" in summary:
        ft = summary["finetune"]
        print(f"\ndocstrings test accuracy (20 labels per class): from scratch {ft['scratch']:.3f}, "
              f"mlm-pretrained on the unlabeled docstrings {ft['pretrained']:.3f}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:] or OBJECTIVES)
