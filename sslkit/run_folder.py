"""Run-folder bookkeeping: which folders a run may write into, one process per folder, the
``status`` in ``metrics.json``, and cutting ``metrics.jsonl`` back to a checkpoint on resume.

A run folder is never mixed with another run: ``--out`` on an existing run refuses unless told to
``overwrite`` (replace) it or to ``resume`` it, and a lock file (``.lock``, holding the PID and host
of the process that trains in the folder) stops a second process. A lock left by a process that no
longer runs is taken over.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Optional

from .errors import ConfigError

LOCK = ".lock"


def is_run_folder(path: Path) -> bool:
    return (Path(path) / "config.yaml").is_file()


def default_run_dir(stem: str) -> Path:
    """``runs/<stem>-<time>`` under the current directory, with ``-2``, ``-3``, ... if that exists."""
    base = Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def prepare_new(path: Path, overwrite: bool, option: str = "--out") -> None:
    """Make ``path`` ready for a new run: refuse an existing run unless ``overwrite`` (then empty it).
    A folder that holds other files (not a run) is never emptied."""
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise ConfigError(option, f"{path} exists and is not a folder")
    if not any(path.iterdir()):
        return
    if not is_run_folder(path):
        raise ConfigError(option, f"{path} is not empty and holds no run (no config.yaml); choose another folder")
    if not overwrite and not never_trained(path):  # a run that failed before its first step holds nothing to keep
        raise ConfigError(option, f"{path} already holds a run; pass --overwrite to replace it or "
                                  f"--resume {path} to continue it")
    holder = _holder(path / LOCK)
    if holder is not None:
        raise ConfigError(option, f"{path} is in use by process {holder} (lock file {path / LOCK}); "
                                  f"it cannot be overwritten while that process runs")
    for child in path.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def never_trained(path: Path) -> bool:
    """Whether the run in ``path`` stopped before its first step: no checkpoint, no logged step, not finished
    (e.g. its data could not be prepared)."""
    path = Path(path)
    if (path / "checkpoints").exists() or read_metrics(path).get("status") not in ("failed", "interrupted"):
        return False
    log = path / "metrics.jsonl"
    return not (log.is_file() and log.read_text().strip())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(lock: Path) -> Optional[str]:
    """``"PID"`` (or ``"PID on HOST"``) of a live process holding ``lock``; None if free or stale."""
    try:
        text = lock.read_text().split()
    except OSError:
        return None
    if len(text) < 2 or not text[0].isdigit():
        return None  # torn or foreign: the writer died mid-write
    pid, host = int(text[0]), text[1]
    if host != socket.gethostname():
        return f"{pid} on {host}"  # cannot check another machine's processes: assume it runs
    if pid == os.getpid() or not _alive(pid):
        return None
    return str(pid)


class RunLock:
    """Holds ``<run>/.lock`` for the lifetime of a ``with`` block (rank 0 only in DDP runs)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self.held = False

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _holder(self.path)
                if holder is not None:
                    raise ConfigError(str(self.path.parent), f"in use by process {holder} (lock file "
                                                             f"{self.path}); wait for it to end or stop it") from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()} {socket.gethostname()}\n")
            self.held = True
            return self
        raise ConfigError(str(self.path.parent), f"cannot take the lock file {self.path}")

    def __exit__(self, *exc):
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def read_metrics(run_dir: Path) -> dict:
    try:
        return json.loads((Path(run_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def is_finished(run_dir: Path) -> bool:
    return read_metrics(run_dir).get("status") == "finished"


def write_metrics(run_dir: Path, metrics: dict) -> None:
    """Write ``metrics.json`` atomically (a crash leaves the old file or the new one)."""
    path = Path(run_dir) / "metrics.json"
    tmp = path.with_name(".metrics.json.tmp")
    tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(tmp, path)


def mark_failed(run_dir: Path, exc: BaseException, status: str = "failed") -> None:
    """Record why a run stopped (``status: failed`` and the message) so its folder does not look
    like a run that is still going."""
    message = str(exc) or type(exc).__name__
    write_metrics(run_dir, {"status": status, "error": message})


def cut_log(run_dir: Path, step: int) -> None:
    """Drop ``metrics.jsonl`` lines after ``step`` (written after the checkpoint a resume starts from)
    and any torn last line, so no step appears twice once the run continues."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("step", 0) <= step:
            kept.append(line)
    tmp = path.with_name(".metrics.jsonl.tmp")
    tmp.write_text("".join(f"{line}\n" for line in kept))
    os.replace(tmp, path)
