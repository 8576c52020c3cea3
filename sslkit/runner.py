"""``sslkit.run``: resolve a recipe, build its parts, train, and write the run folder.

Run folder: ``config.yaml`` (resolved recipe), ``metrics.jsonl`` (one line per logged step or
evaluation), ``metrics.json`` (final flat metrics), ``checkpoints/last.pt`` and PNG figures.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from . import checkpoint, config, distributed
from .config import DataCommon, EncoderCommon, ObjectiveCommon, RegularizerCommon
from .data import DataBundle, prepare
from .errors import ConfigError, SSLKitError
from .model import SSLModel
from .objectives.base import ObjectiveContext
from .plots import save_curves
from .registry import registry
from .schema import Part, build, split_common
from .trainer import Trainer, resolve_device


@dataclass
class RunResult:
    """What :func:`run` returns: the final metrics and the run folder (None on ranks other than 0)."""

    metrics: dict
    run_dir: Optional[Path]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_data(cfg: dict) -> DataBundle:
    common, own = split_common(cfg["data"], Part("datasets", DataCommon))
    entry = registry("datasets").get(cfg["data"]["name"], "data.name")
    try:
        examples = entry.target(cfg["seed"], **own)
    except (ValueError, OSError) as exc:
        raise ConfigError("data", f"dataset '{entry.name}': {exc}") from None
    return prepare(examples, common, cfg["seed"])


def load_encoder_weights(encoder, source: str) -> None:
    """Copy the ``encoder.*`` weights of a run folder's (or a checkpoint file's) model into ``encoder``."""
    path = Path(source)
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    state = checkpoint.load(path)["model"]
    weights = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    try:
        encoder.load_state_dict(weights)
    except RuntimeError as exc:
        raise ConfigError("encoder.init_from", f"{path} does not hold weights for this encoder: "
                                               f"{' '.join(str(exc).split())[:400]}") from None


def build_model(cfg: dict, data: DataBundle, stages: Optional[dict] = None) -> SSLModel:
    """The encoder, objectives and regularizer of a resolved recipe, initialised from ``seed``."""
    torch.manual_seed(cfg["seed"])
    encoder = build("encoders", cfg["encoder"], data.info, path="encoder", common=EncoderCommon)
    if cfg["encoder"]["init_from"]:
        load_encoder_weights(encoder, cfg["encoder"]["init_from"])
    objectives, names, weights = [], [], []
    for i, ocfg in enumerate(cfg["objectives"]):
        path = f"objectives[{i}]"
        ctx = ObjectiveContext(data.info, encoder, data, path, cfg["seed"], stages=dict(stages or {}))
        objectives.append(build("objectives", ocfg, ctx, path=path, common=ObjectiveCommon))
        name = ocfg["name"] if ocfg["name"] not in names else f"{ocfg['name']}_{i}"
        names.append(name)
        weights.append(ocfg["weight"])
    reg, reg_weight = None, 0.0
    if cfg["regularizer"]:
        reg = build("regularizers", cfg["regularizer"], path="regularizer", common=RegularizerCommon)
        reg_weight = cfg["regularizer"]["weight"]
    return SSLModel(encoder, objectives, names, weights, reg, reg_weight)


def _run_dir(cfg_source: str, out: Optional[Union[str, Path]]) -> Path:
    if out is not None:
        return Path(out)
    stem = Path(cfg_source).stem if cfg_source else "run"
    return Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def load_run(run_dir, device="cpu"):
    """Rebuild a finished (or checkpointed) run's data and model with its trained weights, e.g. as a
    frozen reference or reward model for a later stage. Returns ``(cfg, data, model)``."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(str(run_dir), "not a run folder (no config.yaml)")
    cfg = config.resolve(config.load_yaml(run_dir / "config.yaml"))
    data = build_data(cfg)
    model = build_model(cfg, data)
    state = checkpoint.load(run_dir / "checkpoints" / "last.pt", map_location=device)
    model.load_state_dict(state["model"])
    return cfg, data, model.to(device).eval()


def _train(cfg: dict, run_dir: Optional[Path], state: Optional[dict], device, stages: Optional[dict] = None) -> dict:
    """Train one resolved recipe into ``run_dir`` (rank 0) and return its final metrics."""
    main = distributed.is_main()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(config.dump(cfg))
    if cfg["trainer"]["threads"]:
        torch.set_num_threads(cfg["trainer"]["threads"])
    seed_everything(cfg["seed"])
    data = build_data(cfg)
    model = build_model(cfg, data, stages=stages)
    trainer = Trainer(cfg, data, model, device, run_dir if main else None)
    metrics = trainer.fit(resume=state)
    if main:
        save_curves(trainer.history, run_dir / "curves.png")
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def run(recipe: Union[str, Path, dict, None] = None, overrides=None, out=None, resume=None,
        stage: Optional[str] = None) -> RunResult:
    """Train a recipe (a YAML path or a dict) with optional ``overrides`` (``{"trainer.max_steps": 5}``
    or ``["trainer.max_steps=5"]``). ``resume`` is a run folder to continue from its last checkpoint.
    A recipe with ``stages:`` runs its stages in order (``stage`` picks one). Returns a :class:`RunResult`."""
    overrides = overrides or {}
    if resume is not None:
        resume = Path(resume)
        if not (resume / "config.yaml").is_file():
            raise ConfigError("--resume", f"{resume} is not a run folder (no config.yaml)")
        raw, out = config.load_yaml(resume / "config.yaml"), resume
    elif isinstance(recipe, dict):
        raw = recipe
    elif recipe is not None:
        raw = config.load_yaml(recipe)
    else:
        raise ConfigError("recipe", "give a recipe file or --resume RUN_DIR")
    if raw.get("stages"):
        return _run_stages(raw, overrides, recipe, out, resume, stage)
    if stage is not None:
        raise ConfigError("--stage", "this recipe has no stages")
    cfg = config.resolve(config.apply_overrides(raw, overrides))
    state = checkpoint.load(resume / "checkpoints" / "last.pt") if resume is not None else None
    device = resolve_device(cfg["trainer"]["device"])
    distributed.init(device)
    try:
        main = distributed.is_main()
        run_dir = distributed.broadcast(str(_run_dir(recipe if isinstance(recipe, (str, Path)) else "", out))
                                        if main else None)
        run_dir = Path(run_dir) if main else None
        return RunResult(_train(cfg, run_dir, state, device), run_dir)
    finally:
        distributed.shutdown()


def _run_stages(raw, overrides, recipe, out, resume, only) -> RunResult:
    """Run a staged recipe: each stage into ``<run>/<stage>/``; stages that finished are skipped on
    ``--resume``; the top-level ``metrics.json`` holds every stage's metrics as ``stage/metric``."""
    from .stages import require_finished, resolve_stages

    stages = resolve_stages(raw, overrides)
    names = list(stages)
    if only is not None and only not in stages:
        from .errors import did_you_mean

        raise ConfigError("--stage", f"no stage '{only}'{did_you_mean(only, names)} (stages: {', '.join(names)})")
    device = resolve_device(stages[names[-1]][0]["trainer"]["device"])
    distributed.init(device)
    try:
        main = distributed.is_main()
        top = Path(distributed.broadcast(str(_run_dir(recipe if isinstance(recipe, (str, Path)) else "", out))
                                         if main else None))
        if main:
            top.mkdir(parents=True, exist_ok=True)
            # every stage fully resolved (overrides included), so --resume reruns exactly this pipeline
            resolved = {n: {**cfg, "stages": None, **({"from": src} if src else {})} for n, (cfg, src) in stages.items()}
            (top / "config.yaml").write_text(config.dump({"stages": resolved}))
        metrics, dirs = {}, {name: top / name for name in names}
        for name in names:
            cfg, source = stages[name]
            if source:
                cfg["encoder"]["init_from"] = str(dirs[source])
            done = (dirs[name] / "metrics.json").is_file()
            if only is not None and name != only:
                continue
            if source and not (done and resume is not None):
                require_finished(name, source, dirs[source])
            if done and resume is not None:
                stage_metrics = json.loads((dirs[name] / "metrics.json").read_text())
            else:
                ck = dirs[name] / "checkpoints" / "last.pt"
                state = checkpoint.load(ck) if resume is not None and ck.is_file() else None
                earlier = {n: dirs[n] for n in names[:names.index(name)]}
                stage_metrics = _train(cfg, dirs[name], state, device, earlier)
            metrics.update({f"{name}/{k}": v for k, v in stage_metrics.items()})
        if main:
            (top / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        return RunResult(metrics, top if main else None)
    finally:
        distributed.shutdown()


def validate(recipe, overrides=()) -> dict:
    """Resolve a recipe and build its data and parts without training; returns the resolved recipe
    (for a staged recipe: ``{"stages": {name: resolved stage}}``, each stage's data and parts checked
    except those that need an earlier stage's outputs)."""
    raw = config.load_yaml(recipe) if not isinstance(recipe, dict) else recipe
    if raw.get("stages"):
        from .stages import resolve_stages

        return {"stages": {name: cfg for name, (cfg, _) in resolve_stages(raw, overrides).items()}}
    cfg = config.resolve(config.apply_overrides(raw, overrides))
    data = build_data(cfg)
    build_model(cfg, data)
    return cfg


__all__ = ["RunResult", "run", "validate", "SSLKitError"]
