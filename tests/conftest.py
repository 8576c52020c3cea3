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


@pytest.fixture
def smoke():
    return dict(SMOKE)


@pytest.fixture(scope="session")
def hf_models(tmp_path_factory):
    """Tiny Hugging Face models (2-layer BERT, GPT-2, Llama) with tokenizers trained on Python's help text,
    saved with save_pretrained once per session: ``{kind: folder}``."""
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    from sslkit.encoders.hf_tiny import KINDS, save_tiny

    base = tmp_path_factory.mktemp("hf_models")
    return {kind: save_tiny(kind, base / kind) for kind in KINDS}
