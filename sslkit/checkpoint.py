"""Checkpoints: written atomically (temporary file, fsync, rename) and read with
``torch.load(weights_only=True)``, so a crash mid-write never leaves a torn file and loading
never runs pickled code."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .errors import ConfigError


def save(state: dict, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("", f"checkpoint {path} not found.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # torch's own message is long and often cut; one sentence that names the file
        raise ConfigError("", f"cannot read checkpoint {path}: the file is truncated or corrupt, or it is "
                              f"not an sslkit checkpoint.") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ConfigError("", f"cannot read checkpoint {path}: it is not an sslkit checkpoint (no 'model' entry).")
    return state


def trained_weights(state: dict) -> dict:
    """The model weights a later stage, an export or ``load_run`` should use from a checkpoint's ``state``:
    its ``model`` entry, with the averaged parameters of ``ema_model`` in place of the raw ones when the
    run kept an average (``trainer.ema_decay``; the raw ones stay in ``model`` to continue training)."""
    return {**state["model"], **state.get("ema_model", {})}
