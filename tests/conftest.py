"""Shared helpers: run the CLI in a subprocess, and smoke-size overrides."""
from __future__ import annotations

import contextlib
import io
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Tests train tiny models: one torch thread each is faster than a thread per core (which spin against
# each other and against anything else running; BENCHMARKS.md), and CLI subprocesses inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]

try:  # hypothesis keeps its example database and caches in ./.hypothesis: not in the repository
    from hypothesis import settings
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(tempfile.mkdtemp(prefix="sslkit-hypothesis-"))
    settings.register_profile("sslkit", database=None)
    settings.load_profile("sslkit")
except ImportError:
    pass
RECIPES = ROOT / "recipes"
# tiny runs: a few steps, no progress bar
SMOKE = {"trainer.max_steps": 3, "trainer.progress": False}


def smoke_args(**extra) -> list:
    out = []
    for k, v in {**SMOKE, **extra}.items():
        out += ["--set", f"{k}={v}"]
    return out


def sslkit_cli(*args, cwd=None, timeout=600, env=None) -> subprocess.CompletedProcess:
    """Run ``python -m sslkit ARGS`` and return the completed process (text output). Without ``cwd``
    it runs in a fresh temporary folder, so a run without ``--out`` (``runs/<recipe>-<time>``) never
    lands in the repository; pass recipes as absolute paths (``RECIPES / name``)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with tempfile.TemporaryDirectory(prefix="sslkit-cli-") as tmp:
        return subprocess.run([sys.executable, "-m", "sslkit", *map(str, args)], capture_output=True, text=True,
                              cwd=cwd or tmp, timeout=timeout, env=full_env)


def sample_data_overrides(recipe, folder: Path) -> dict:
    """For a recipe reading an image dataset from ``data.root``: tiny generated files of that dataset
    in ``folder`` (enough rows per class for its ``labels_per_class``) and the overrides that point
    the recipe there with a small batch; ``{}`` for other recipes."""
    import yaml

    from sslkit.data import sample_files

    data = (yaml.safe_load(Path(recipe).read_text()) or {}).get("data") or {}
    if data.get("name") not in sample_files.WRITERS:
        return {}
    per_class = max(4, (data.get("labels_per_class") or 0) + 2)
    sample_files.WRITERS[data["name"]](folder, per_class=per_class)
    return {"data.root": str(folder), "trainer.batch_size": 4}


# Recipes whose smoke run at their own batch size costs seconds per step: PML's NTXentLoss builds an
# [n positive pairs, n negative pairs] matrix (512 x 261,120 entries at the recipe's batch of 256).
SMOKE_BATCH = {"pml_digits": 32}


def recipe_smoke_overrides(recipe, folder: Path) -> dict:
    """The overrides beside :data:`SMOKE` that a smoke run of ``recipe`` needs: tiny image files
    (:func:`sample_data_overrides`) and a smaller batch where :data:`SMOKE_BATCH` names one."""
    stem = Path(recipe).stem
    extra = {"trainer.batch_size": SMOKE_BATCH[stem]} if stem in SMOKE_BATCH else {}
    return {**extra, **sample_data_overrides(recipe, folder)}


def pytest_configure(config):
    """hypothesis keeps example and constant caches in a home folder; keep it out of the repository."""
    try:
        import tempfile

        from hypothesis import configuration
    except ImportError:
        return
    configuration.set_hypothesis_home_dir(tempfile.mkdtemp(prefix="sslkit-hypothesis-"))


def sslkit_main(*args) -> subprocess.CompletedProcess:
    """Run the ``sslkit`` command in this process (click's CliRunner): like :func:`sslkit_cli` without
    the seconds a new Python spends importing torch. An exception other than the command's own exit
    is put into ``stderr`` as a traceback, so tests can still assert that none escaped."""
    import traceback

    from click.testing import CliRunner

    from sslkit.cli import main

    res = CliRunner().invoke(main, [str(a) for a in args])
    err = res.stderr
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        err += "Traceback (most recent call last):\n" + "".join(traceback.format_exception(res.exception))
    return subprocess.CompletedProcess(list(args), res.exit_code, res.stdout, err)


@pytest.fixture
def smoke():
    return dict(SMOKE)


@pytest.fixture(autouse=True)
def _runs_outside_the_repository(tmp_path, monkeypatch):
    """Every test runs in its own temporary folder, so Python-API runs without ``out`` write their
    default ``runs/...`` folder there; and fails if it left a run folder in the repository anyway."""
    before = set((ROOT / "runs").glob("*")) if (ROOT / "runs").is_dir() else set()
    monkeypatch.chdir(tmp_path)
    yield
    after = set((ROOT / "runs").glob("*")) if (ROOT / "runs").is_dir() else set()
    assert not after - before, f"the test wrote into the repository: {sorted(map(str, after - before))}"


def recomputed_accuracy(run_dir) -> float:
    """The test accuracy of a finished run's saved model, computed here from its checkpoint (the argmax
    of the first objective's ``logits`` against the test labels), to check the reported number against."""
    import torch

    from sslkit.runner import load_run

    _, data, model = load_run(run_dir)
    obj, x, y = model.objectives[0], data.test["x"], data.test["y"]
    with torch.no_grad():
        pred = torch.cat([obj.logits(x[i:i + 256], model.encoder).argmax(1) for i in range(0, len(x), 256)])
    keep = y >= 0
    return float((pred[keep] == y[keep]).double().mean())


@pytest.fixture(scope="session")
def hf_models(tmp_path_factory):
    """Tiny Hugging Face models (2-layer BERT, GPT-2, Llama) with tokenizers trained on Python's help text,
    saved with save_pretrained once per session: ``{kind: folder}``."""
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    from sslkit.encoders.hf_tiny import KINDS, save_tiny

    base = tmp_path_factory.mktemp("hf_models")
    return {kind: save_tiny(kind, base / kind) for kind in KINDS}


def run_line(argv, monkeypatch) -> tuple:
    """Run one command line (a tutorial's, a benchmark's) in this process, as the shell would run it: ``sslkit ...`` through click's
    runner, ``python script.py ARGS`` / ``python -m module ARGS`` through runpy with ``sys.argv`` set.
    In-process saves the seconds each new Python spends importing torch (most of a smoke run's time).
    Returns (exit code, output)."""
    if argv[0] == "sslkit":
        proc = sslkit_main(*argv[1:])
        return proc.returncode, proc.stdout + "\n" + proc.stderr
    args = argv[1:]
    module = args[1] if args[0] == "-m" else None
    script = None if module else args[0]
    monkeypatch.setattr(sys, "argv", [module or script, *(args[2:] if module else args[1:])])
    if script:  # python puts the script's folder first on sys.path
        monkeypatch.syspath_prepend(os.path.dirname(os.path.abspath(script)))
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            if module:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return code, out.getvalue() + f"\n{exc.code}"
    return 0, out.getvalue()
