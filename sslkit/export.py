"""``sslkit export RUN_DIR --to DIR``: write a trained encoder in a format other tools load without sslkit.

* An encoder with an ``export(directory)`` method (capability ``Exportable``; e.g. ``hf`` writes
  ``save_pretrained`` files, model and tokenizer) writes itself.
* Any other encoder: ``encoder.safetensors`` (its ``state_dict``).

Both get ``sslkit_encoder.json``: the encoder's registry name and recipe keys, the data's shape, and the
state of the data's sslkit tokenizer (when it is not the model's own), so ``encoder.init_from`` can
start a run from the folder and a reader can rebuild the ids.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

from .config import read_yaml
from .encoders.capabilities import Exportable
from .errors import ConfigError, did_you_mean

CONFIG = "sslkit_encoder.json"
WEIGHTS = "encoder.safetensors"


def is_export(path) -> bool:
    """Whether ``path`` is a folder written by :func:`export`."""
    return (Path(path) / CONFIG).is_file()


def run_folder_of(run_dir: Path, stage: Optional[str] = None) -> Path:
    """The run folder to export: ``run_dir`` itself, or a stage of a staged run (``stage``, by default the last
    trained one)."""
    cfg_file = run_dir / "config.yaml"
    stages = (read_yaml(cfg_file.read_text()) or {}).get("stages") if cfg_file.is_file() else None
    if stage is not None:
        if not stages:
            raise ConfigError("--stage", f"{run_dir} is not a staged run")
        trained = [n for n, s in stages.items() if "export" not in s]
        if stage not in trained:
            raise ConfigError("--stage", f"'{stage}' is not a trained stage of {run_dir} (stages: "
                                         f"{', '.join(trained)}){did_you_mean(stage, trained)}")
        if not (run_dir / stage / "checkpoints" / "last.pt").is_file():
            raise ConfigError("--stage", f"stage '{stage}' of {run_dir} has no checkpoint (it has not run)")
        return run_dir / stage
    if (run_dir / "checkpoints" / "last.pt").is_file():
        return run_dir
    if stages:
        trained = [run_dir / n for n, s in stages.items() if "export" not in s and (run_dir / n / "checkpoints" / "last.pt").is_file()]
        if trained:
            return trained[-1]
    raise ConfigError(str(run_dir), "not a finished run folder (no checkpoints/last.pt, nor a staged run with one)")


def export(run_dir, to, path: str = "--to", stage: Optional[str] = None) -> Path:
    """Export the encoder of the run ``run_dir`` (of a staged run: of ``stage``, by default its last trained
    stage) into the new folder ``to``; returns it. ``path`` names the recipe key or option that gave ``to``
    in errors."""
    from safetensors.torch import save_file

    from .runner import load_run

    to = Path(to)
    if to.exists():
        raise ConfigError(path, f"{to} already exists; export into a new folder")
    source = run_folder_of(Path(run_dir), stage)
    cfg, data, model = load_run(source)
    encoder = model.encoder
    tmp = to.with_name(f".{to.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if isinstance(encoder, Exportable):
        encoder.export(tmp)
        fmt = "own"
    else:
        save_file({k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}, str(tmp / WEIGHTS))
        fmt = "safetensors"
    tok = data.info.tokenizer
    meta = {
        "format": fmt,
        "encoder": {k: v for k, v in cfg["encoder"].items() if k != "init_from"},
        "data": {"name": cfg["data"]["name"], "modality": data.info.modality, "input_shape": list(data.info.input_shape),
                 "class_names": list(data.info.class_names)},
        "tokenizer": tok.state() if tok is not None and tok.name != "hf" else None,
        "run": str(source),
    }
    (tmp / CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
    tmp.rename(to)  # all or nothing: a half-written export never has the final name
    return to


def load_export(encoder, directory, path: str = "encoder.init_from") -> None:
    """Load an exported folder's weights into ``encoder``: through its ``load_export(directory)`` when it
    has one (``hf``: ``from_pretrained``), else from ``encoder.safetensors``."""
    directory = Path(directory)
    meta = json.loads((directory / CONFIG).read_text())
    if hasattr(encoder, "load_export"):
        encoder.load_export(directory)
        return
    if not (directory / WEIGHTS).is_file():
        raise ConfigError(path, f"{directory} has no {WEIGHTS}, and this encoder cannot read its "
                                f"'{meta['format']}' export")
    from safetensors.torch import load_file

    try:
        encoder.load_state_dict(load_file(str(directory / WEIGHTS)))
    except RuntimeError as exc:
        raise ConfigError(path, f"{directory} does not hold weights for this encoder: "
                                f"{' '.join(str(exc).split())[:400]}") from None
