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


@pytest.fixture
def smoke():
    return dict(SMOKE)
