"""Compare the language-model pretraining objectives on the same corpus and budget, then fine-tune.

Trains every ``recipes/lm_*.yaml`` for the same number of steps (batch 32, same seed), evaluating
its own metric on the held-out documents every ``EVAL`` steps, and draws the validation curves
into ``lm_curves.png``. Then fine-tunes the docstring classifier from the ``mlm`` encoder and from
scratch (``recipes/finetune_docstrings.yaml``). Writes ``lm_compare.json`` and prints a table.

Environment: ``SSLKIT_OUT`` (output folder, default ``runs/lm_compare``), ``SSLKIT_SMOKE=1``
(a few steps, for tests), ``LM_STEPS`` / ``LM_BATCH`` / ``LM_EVALS`` / ``FT_EPOCHS`` (budgets).
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
FT_EPOCHS = 1 if SMOKE else int(os.environ.get("FT_EPOCHS", 20))
OBJECTIVES = ["clm", "bilm", "mlm", "span", "rtd", "plm", "dae", "nsp", "sop"]
METRIC = {"clm": "test_perplexity", "bilm": "test_perplexity", "mlm": "test_masked_perplexity", "span": "test_masked_perplexity",
          "rtd": "test_rtd_accuracy", "plm": "test_plm_perplexity", "dae": "test_reconstruction_perplexity",
          "nsp": "test_pair_accuracy", "sop": "test_pair_accuracy"}


def budget(extra=None) -> dict:
    over = {"trainer.max_steps": STEPS, "trainer.eval_every": EVAL, "trainer.progress": False,
            "trainer.batch_size": BATCH, "trainer.log_every": EVAL}
    if SMOKE:  # tiny rows keep the smoke run fast
        over.update({"data.max_length": 32, "data.max_documents": 16})
    return {**over, **(extra or {})}


def pretrain(name: str) -> dict:
    res = sslkit.run(ROOT / "recipes" / f"lm_{name}.yaml", overrides=budget(), out=OUT / f"lm_{name}")
    curve = [json.loads(line) for line in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    key = METRIC[name]
    points = [(r["step"], r[key]) for r in curve if key in r]
    return {"metric": key, "value": res.metrics[key], "curve": points, "time_s": res.metrics["train_time_s"],
            "run_dir": str(res.run_dir), "all": {k: v for k, v in res.metrics.items() if k.startswith("test_")}}


def finetune(init_from) -> float:
    """Test accuracy of the finetune stage of recipes/finetune_docstrings.yaml started from ``init_from``
    (a pretraining run folder) or, with None, from scratch."""
    over = {"trainer.epochs": FT_EPOCHS, "trainer.progress": False, "stages.finetune.from": None,
            "stages.finetune.encoder.init_from": init_from}
    if SMOKE:
        over.update({"trainer.max_steps": 3, "data.max_length": 32, "data.test_size": 0.1})
    name = "ft_pretrained" if init_from else "ft_scratch"
    res = sslkit.run(ROOT / "recipes" / "finetune_docstrings.yaml", overrides=over, out=OUT / name, stage="finetune")
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
    if "mlm" in results:
        summary["finetune"] = {"scratch": finetune(None), "from_mlm": finetune(results["mlm"]["run_dir"])}
    (OUT / "lm_compare.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"| objective | held-out metric | value after {STEPS} steps | train time (s) |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['metric']} | {r['value']:.4g} | {r['time_s']:.0f} |")
    if "finetune" in summary:
        ft = summary["finetune"]
        print(f"\ndocstrings test accuracy: from scratch {ft['scratch']:.3f}, from the mlm encoder {ft['from_mlm']:.3f}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:] or OBJECTIVES)
