"""Shared helpers: run the CLI in a subprocess, and smoke-size overrides."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
# tiny runs: a few steps, no progress bar
SMOKE = {"trainer.max_steps": 3, "trainer.progress": False}


def smoke_args(**extra) -> list:
    out = []
    for k, v in {**SMOKE, **extra}.items():
        out += ["--set", f"{k}={v}"]
    return out


def sslkit_cli(*args, cwd=None, timeout=600, env=None) -> subprocess.CompletedProcess:
    """Run ``python -m sslkit ARGS`` and return the completed process (text output)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "sslkit", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=timeout, env=full_env)


def pytest_configure(config):
    """hypothesis keeps example and constant caches in a home folder; keep it out of the repository."""
    try:
        import tempfile

        from hypothesis import configuration
    except ImportError:
        return
    configuration.set_hypothesis_home_dir(tempfile.mkdtemp(prefix="sslkit-hypothesis-"))


@pytest.fixture
def smoke():
    return dict(SMOKE)


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
