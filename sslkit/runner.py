"""``sslkit.run``: resolve a recipe, build its parts, train, and write the run folder.

Run folder: ``config.yaml`` (resolved recipe), ``metrics.jsonl`` (one line per logged step or
evaluation), ``metrics.json`` (final flat metrics), ``checkpoints/last.pt`` and PNG figures.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from . import checkpoint, config, distributed, run_folder
from .config import DataCommon, EncoderCommon, ObjectiveCommon, RegularizerCommon
from .data import DataBundle, prepare
from .encoders.capabilities import BringsTokenizer, check_requirements
from .errors import ConfigError, Interrupted, SSLKitError
from .model import SSLModel
from .objectives.base import ObjectiveContext
from .registry import registry
from .schema import Part, build, part_name, split_common
from .text.tokenizers import recorded_tokenizer, refuse_other_tokenizer
from .trainer import Trainer, resolve_device


@dataclass
class RunResult:
    """What :func:`run` returns: the final metrics and the run folder (None on ranks other than 0)."""

    metrics: dict
    run_dir: Optional[Path]
    already_finished: bool = False  # a --resume of a finished run: nothing was trained or written
    notes: list = field(default_factory=list)  # one-line remarks for the end-of-run summary (stderr)


def _usable_cpus() -> Optional[set]:
    """The CPU ids this process may run on (its affinity), or None where the platform does not say."""
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def _core_count(cpus: Optional[set]) -> int:
    """The cores this process may use: its affinity set's size, else the machine's count."""
    return len(cpus) if cpus else (os.cpu_count() or 1)


def _load_average() -> Optional[float]:
    """The 1-minute load average, or None where the platform has none (Windows)."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def busy_machine_note(train_time_s: float, threads: Optional[int] = None, load: Optional[float] = None,
                      cores: Optional[int] = None) -> Optional[str]:
    """A one-line note when a run was probably much slower than it could have been: other work kept
    more processes runnable than there are cores (1-minute load average) while torch ran a thread per
    core, so its threads waited on each other (measured 2-10x on tiny models; BENCHMARKS.md). The run's own
    threads (up to one per core) are part of that load: other work counts from 0.7 of a process above them,
    as in :func:`auto_threads` (a quiet run on every core ends near a load of ``cores``, and 1 thread would
    be slower there)."""
    threads = torch.get_num_threads() if threads is None else threads
    cores = _core_count(_usable_cpus()) if cores is None else cores
    load = _load_average() if load is None else load
    if load is None or train_time_s < 1.0 or threads < cores or threads == 1 or load - min(threads, cores) < 0.7:
        return None
    return (f"the machine was busy (load average {load:.1f} on {cores} cores) while torch used {threads} threads; "
            f"on a busy machine --set trainer.threads=1 is often several times faster")


TORCH_DEFAULT_THREADS = torch.get_num_threads()  # read at import, before any run changes it (honours OMP_NUM_THREADS)


def _cpu_jiffies(cpus) -> Optional[tuple]:
    """``(busy, total)`` clock ticks since boot summed over the CPU ids ``cpus`` (``/proc/stat``; idle and
    iowait are the idle ticks, steal counts as busy: a hypervisor gave that time to someone else; the
    guest columns after steal are already inside user and nice). None where the file cannot be read or
    parsed (not Linux, an unusual ``/proc``)."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy = total = 0
    try:
        for line in lines:
            name, *fields = line.split() or [""]
            if name[:3] == "cpu" and name[3:].isdigit() and int(name[3:]) in cpus and len(fields) >= 5:
                ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
                total += sum(ticks)
                busy += sum(ticks) - ticks[3] - ticks[4]
    except ValueError:
        return None
    return (busy, total) if total else None


def busy_cores(cpus, interval: float = 0.2) -> Optional[float]:
    """How many of the CPUs ``cpus`` other work keeps busy *now*: their busy share over ``interval``
    seconds times their number, less this process's own use over the same window (threads of an earlier
    stage still winding down), within ``[0, len(cpus)]``. None where ``/proc/stat`` is missing. Unlike
    the 1-minute load average, it does not still count a run that finished seconds ago."""
    before, own, wall = _cpu_jiffies(cpus), time.process_time(), time.perf_counter()
    if before is None:
        return None
    time.sleep(interval)
    after = _cpu_jiffies(cpus)
    if after is None or after[1] <= before[1]:
        return None
    own_cores = (time.process_time() - own) / max(time.perf_counter() - wall, 1e-6)
    busy = len(cpus) * (after[0] - before[0]) / (after[1] - before[1]) - own_cores
    return min(max(busy, 0.0), float(len(cpus)))


def auto_threads(cores: Optional[int] = None, load: Optional[float] = None,
                 default: Optional[int] = None) -> int:
    """``trainer.threads: auto``: one torch thread per core that other work leaves idle — the cores this
    process may use minus the cores other work keeps busy (``load``; default: :func:`busy_cores`, sampled
    over 0.2 s, or the 1-minute load average where that cannot be read; a core counts as busy from 0.7 on),
    at least 1 and at most torch's default.
    On a quiet 2-core machine that is 2 (1.1-1.8x faster than 1 thread); with other jobs running it is 1,
    where two threads would wait on each other (up to 95x slower; BENCHMARKS.md). The load average alone
    gave 1 thread to a run started on a quiet machine just after another run finished (it decays over
    a minute), about 1.5x slower than 2 for the text recipes."""
    cpus = _usable_cpus()
    cores = _core_count(cpus) if cores is None else cores
    if load is None:
        load = busy_cores(cpus) if cpus else None
    if load is None:
        load = _load_average() or 0.0  # none on this platform: assume the machine is ours
    default = TORCH_DEFAULT_THREADS if default is None else default
    return max(1, min(default, cores, cores - int(load + 0.3)))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def encoder_tokenizer(cfg: dict) -> Optional[dict]:
    """The ``data.tokenizer`` the recipe's encoder requires (e.g. a pretrained model's own), or None:
    asked of the encoder class (capability ``BringsTokenizer``) before any text is tokenized."""
    target = registry("encoders").get(cfg["encoder"]["name"], "encoder.name").target
    if not (isinstance(target, type) and issubclass(target, BringsTokenizer)):
        return None
    return target.data_tokenizer(split_common(cfg["encoder"], Part("encoders", EncoderCommon))[1])


def build_data(cfg: dict) -> DataBundle:
    common, own = split_common(cfg["data"], Part("datasets", DataCommon))
    entry = registry("datasets").get(cfg["data"]["name"], "data.name")
    required = encoder_tokenizer(cfg)
    if required is not None:
        if "tokenizer" not in entry.params:
            raise ConfigError("data.name", f"encoder '{cfg['encoder']['name']}' tokenizes text with its own tokenizer, "
                                           f"but dataset '{entry.name}' has no text to tokenize")
        given = own["tokenizer"]
        if part_name(given) not in (part_name(entry.params["tokenizer"].default), required["name"]):
            raise ConfigError("data.tokenizer", f"encoder '{cfg['encoder']['name']}' brings its own tokenizer "
                                                f"({required['model']}); remove data.tokenizer")
        own = {**own, "tokenizer": required}
    try:
        examples = entry.target(cfg["seed"], **own)
    except (ValueError, OSError) as exc:
        raise ConfigError("data", f"dataset '{entry.name}': {exc}") from None
    return prepare(examples, common, cfg["seed"])


def _recorded_tokenizer(path: Path, saved: Optional[dict]) -> Optional[dict]:
    """The tokenizer state a source recorded (a checkpoint's ``tokenizer``, an export's), or None when it
    recorded none: a checkpoint of a run without text or older than the record, an export whose model
    brings its own tokenizer."""
    if saved is None:
        from .export import CONFIG

        return json.loads((path / CONFIG).read_text()).get("tokenizer")
    return recorded_tokenizer(saved)


def load_encoder_weights(encoder, source: str, tokenizer=None) -> None:
    """Copy the ``encoder.*`` weights of a run folder's (or a checkpoint file's) model into ``encoder``, or
    the weights of a folder written by ``sslkit export``. ``tokenizer``: this run's data tokenizer; a source
    whose recorded tokenizer differs is refused (its embeddings were trained for other ids)."""
    from .export import is_export, load_export

    path = Path(source)
    if path.is_dir() and not is_export(path):
        path = path / "checkpoints" / "last.pt"
    saved = checkpoint.load(path) if not is_export(path) else None
    refuse_other_tokenizer(_recorded_tokenizer(path, saved), tokenizer, "encoder.init_from", source)
    if saved is None:
        return load_export(encoder, path)
    state = checkpoint.trained_weights(saved)
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
        load_encoder_weights(encoder, cfg["encoder"]["init_from"], data.info.tokenizer)
    objectives, names, weights = [], [], []
    for i, ocfg in enumerate(cfg["objectives"]):
        path = f"objectives[{i}]"
        target = registry("objectives").get(ocfg["name"], f"{path}.name").target
        check_requirements(target, encoder, cfg["encoder"]["name"], ocfg["name"], path)
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


def _run_dir(cfg_source, out: Optional[Union[str, Path]]) -> Path:
    if out is not None:
        return Path(out)
    return run_folder.default_run_dir(Path(cfg_source).stem if isinstance(cfg_source, (str, Path)) else "run")


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
    refuse_other_tokenizer(_recorded_tokenizer(run_dir, state), data.info.tokenizer, str(run_dir), str(run_dir))
    model.load_state_dict(checkpoint.trained_weights(state))
    return cfg, data, model.to(device).eval()


# Keys a --set may change on --resume: they change neither the math of the steps already taken nor
# (with the step-budget check in Trainer.load_state) that of the steps to come, so a resumed run
# still ends where an uninterrupted run with the same settings would.
RESUME_KEYS = ("trainer.max_steps", "trainer.epochs", "trainer.progress", "trainer.log_every",
               "trainer.checkpoint_every", "trainer.threads")


def _resume_target(overrides) -> Optional[int]:
    """The ``trainer.max_steps`` a ``--resume`` sets, if any: the step the continued run trains to."""
    items = overrides if isinstance(overrides, dict) else dict(config.parse_override(s) for s in overrides)
    value = items.get("trainer.max_steps")
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _check_resume_overrides(overrides) -> None:
    items = overrides if isinstance(overrides, dict) else dict(config.parse_override(s) for s in overrides)
    for key in items:
        if key not in RESUME_KEYS:
            raise ConfigError(f"--set {key}", f"cannot be changed on --resume (it would make the continued run differ "
                                              f"from the run so far); keys that may change: {', '.join(RESUME_KEYS)}")


def _train(cfg: dict, run_dir: Optional[Path], resume: bool, device, stages: Optional[dict] = None,
           extend_to: Optional[int] = None) -> dict:
    """Train one resolved recipe into ``run_dir`` (rank 0; continuing its checkpoint if ``resume``, up to step
    ``extend_to`` if given, raising ``trainer.epochs`` as needed) and return its final metrics, with ``notes``
    for the user. ``metrics.json`` gets ``status``: finished, failed (with the error) or interrupted."""
    main = distributed.is_main()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    ck = run_dir / "checkpoints" / "last.pt" if run_dir is not None else None
    # a run killed before its first checkpoint starts over; a torn checkpoint is an error, and so is a missing
    # one where the run had written one (its folder exists) or finished: there is nothing to continue from
    if resume and ck is not None and not ck.exists() and (ck.parent.is_dir() or run_folder.is_finished(run_dir)):
        raise ConfigError("--resume", f"{run_dir} has no checkpoint to continue from ({ck} is missing); nothing "
                                      f"to resume. Train it again: sslkit run RECIPE --out {run_dir} --overwrite")
    state = checkpoint.load(ck) if resume and ck is not None and ck.exists() else None
    # rank 0's checkpoint on every rank (the others have no run folder; on several machines none may share
    # one): all ranks continue from it, whatever number of processes wrote it
    state = distributed.broadcast(state)
    try:
        if main and not resume:
            (run_dir / "config.yaml").write_text(config.dump(cfg))
        threads = cfg["trainer"]["threads"]
        if threads:  # auto is decided again on a resume (threads may change then: RESUME_KEYS)
            torch.set_num_threads(auto_threads() if threads == "auto" else threads)
        seed_everything(cfg["seed"])
        data = build_data(cfg)
        model = build_model(cfg, data, stages=stages)
        trainer = Trainer(cfg, data, model, device, run_dir if main else None, extend_to if resume else None)
        finished = main and state is not None and run_folder.is_finished(run_dir)
        if distributed.broadcast(finished) and state["step"] >= trainer.total_steps:
            return {**run_folder.read_metrics(run_dir), "already_finished": True} if main else {"already_finished": True}
        if main and resume:  # with the keys --set changed, so the next resume keeps them
            (run_dir / "config.yaml").write_text(config.dump(cfg))
            run_folder.cut_log(run_dir, state["step"] if state is not None else 0)
        metrics = trainer.fit(resume=state)
    except Interrupted as exc:
        if main:
            run_folder.mark_failed(run_dir, exc, status="interrupted")
        raise
    except Exception as exc:
        if main:
            run_folder.mark_failed(run_dir, exc)
        raise
    metrics["status"] = "finished"
    if main:
        run_folder.write_metrics(run_dir, metrics)
    if trainer.replanned and cfg["trainer"]["scheduler"]["name"] != "constant":
        before, after = trainer.replanned
        metrics["notes"] = [f"the '{cfg['trainer']['scheduler']['name']}' schedule, planned for {before} steps, was "
                            f"re-planned over {after}: from step {state['step']} on, the learning rate followed "
                            f"the new plan"]
    return metrics


def _resolve_target(recipe, out, resume, overwrite, stage):
    """Check the combination of arguments; return ``(raw recipe, run folder or None)``."""
    if resume is not None:
        resume = Path(resume)
        if recipe is not None:
            raise ConfigError("--resume", "cannot be combined with a RECIPE: the run folder's config.yaml is the "
                                          "recipe (use --set for the keys that may change)")
        if out is not None and Path(out) != resume:
            raise ConfigError("--resume", "cannot be combined with --out: a resumed run continues in its own folder")
        if overwrite:
            raise ConfigError("--resume", "cannot be combined with --overwrite: choose one")
        if not run_folder.is_run_folder(resume):
            raise ConfigError("--resume", f"{resume} is not a run folder (no config.yaml)")
        return config.load_yaml(resume / "config.yaml"), resume
    if isinstance(recipe, dict):
        return recipe, None if out is None else Path(out)
    if recipe is not None:
        return config.load_yaml(recipe), None if out is None else Path(out)
    raise ConfigError("recipe", "give a recipe file or --resume RUN_DIR")


def run(recipe: Union[str, Path, dict, None] = None, overrides=None, out=None, resume=None,
        stage: Optional[str] = None, overwrite: bool = False) -> RunResult:
    """Train a recipe (a YAML path or a dict) with optional ``overrides`` (``{"trainer.max_steps": 5}``
    or ``["trainer.max_steps=5"]``) into ``out`` (default ``runs/<recipe>-<time>`` under the current
    folder). An existing run in ``out`` is refused unless ``overwrite``. ``resume`` is a run folder to
    continue from its last checkpoint (only :data:`RESUME_KEYS` may be overridden). A recipe with
    ``stages:`` runs its stages in order (``stage`` picks one). Returns a :class:`RunResult`."""
    overrides = overrides or {}
    raw, target = _resolve_target(recipe, out, resume, overwrite, stage)
    resuming = resume is not None
    if resuming:
        _check_resume_overrides(overrides)
    if raw.get("stages"):
        return _run_stages(raw, overrides, recipe, target, resuming, stage, overwrite)
    if stage is not None:
        raise ConfigError("--stage", "this recipe has no stages")
    cfg = config.resolve(config.apply_overrides(raw, overrides))
    device = resolve_device(cfg["trainer"]["device"])
    distributed.init(device)
    try:
        main = distributed.is_main()
        run_dir = None
        if main:
            run_dir = _run_dir(recipe, target)
            if not resuming:
                run_folder.prepare_new(run_dir, overwrite)
        run_dir = distributed.broadcast(str(run_dir) if main else None)
        run_dir = Path(run_dir) if main else None
        with run_folder.RunLock(run_dir) if main else contextlib.nullcontext():
            metrics = _train(cfg, run_dir, resuming, device, extend_to=_resume_target(overrides) if resuming else None)
        distributed.barrier()  # rank 0 reports alone at the end: the others wait before tearing the group down
        finished_before = bool(metrics.pop("already_finished", False))
        notes = metrics.pop("notes", [])
        note = None if finished_before else busy_machine_note(metrics.get("train_time_s", 0.0))
        return RunResult(metrics, run_dir, finished_before, notes + ([note] if note else []))
    except Exception as exc:  # under torchrun: one line naming the rank that failed, not gloo's traceback
        failure = distributed.explain_failure(exc)
        if failure is exc:
            raise
        raise failure from None
    finally:
        distributed.shutdown()


def _run_stages(raw, overrides, recipe, target, resuming, only, overwrite) -> RunResult:
    """Run a staged recipe: each stage into ``<run>/<stage>/``; stages that finished are skipped on
    ``--resume``; the top-level ``metrics.json`` holds every stage's metrics as ``stage/metric``."""
    from .stages import resolve_stages

    stages = resolve_stages(raw, overrides)
    names = list(stages)
    if only is not None and only not in stages:
        from .errors import did_you_mean

        raise ConfigError("--stage", f"no stage '{only}'{did_you_mean(only, names)} (stages: {', '.join(names)})")
    trained = [n for n in names if "export" not in stages[n][0]]
    device = resolve_device(stages[trained[-1]][0]["trainer"]["device"])
    distributed.init(device)
    try:
        main = distributed.is_main()
        top = None
        if main:
            top = _run_dir(recipe, target)
            if only is not None and not resuming:  # one stage of an existing pipeline folder
                run_folder.prepare_new(top / only, overwrite, option="--stage")
            elif not resuming:
                run_folder.prepare_new(top, overwrite)
        top = Path(distributed.broadcast(str(top) if main else None))
        with run_folder.RunLock(top) if main else contextlib.nullcontext():
            result = _train_stages(stages, names, top, resuming, only, device)
        distributed.barrier()  # as in run(): no rank leaves while rank 0 still reports
        return result
    except Exception as exc:  # under torchrun: one line naming the rank that failed, not gloo's traceback
        failure = distributed.explain_failure(exc)
        if failure is exc:
            raise
        raise failure from None
    finally:
        distributed.shutdown()


def _train_stages(stages, names, top, resuming, only, device) -> RunResult:
    main = distributed.is_main()
    if main:
        top.mkdir(parents=True, exist_ok=True)
        # every stage fully resolved (overrides included), so --resume reruns exactly this pipeline
        resolved = {n: cfg if "export" in cfg else {**cfg, "stages": None, **({"from": src} if src else {})}
                    for n, (cfg, src) in stages.items()}
        (top / "config.yaml").write_text(config.dump({"stages": resolved}))
    metrics, dirs, trained, notes = {}, {name: top / name for name in names}, False, []
    for name in names:
        cfg, source = stages[name]
        if only is not None and name != only:
            continue
        if "export" in cfg:
            _export_stage(cfg, name, dirs, resuming, main)
            continue
        if source:
            cfg["encoder"]["init_from"] = str(dirs[source])
            # rank 0 reads the folders (the others may be on machines without them) and tells the others
            if distributed.broadcast(main and not (resuming and run_folder.is_finished(dirs[name]))
                                     and not run_folder.is_finished(dirs[source])):
                from .stages import require_finished

                require_finished(name, source, dirs[source])
        try:
            stage_metrics = _train(cfg, dirs[name], resuming, device, {n: dirs[n] for n in names[:names.index(name)]})
        except Exception as exc:
            if main:
                run_folder.mark_failed(top, exc, "interrupted" if isinstance(exc, Interrupted) else "failed")
            raise
        distributed.barrier()  # the stage's folder is complete (rank 0 reports last) before the next starts
        trained |= not stage_metrics.pop("already_finished", False)
        notes += [f"stage {name}: {n}" for n in stage_metrics.pop("notes", [])]
        stage_metrics.pop("status", None)
        metrics.update({f"{name}/{k}": v for k, v in stage_metrics.items()})
    metrics["status"] = "finished"
    if main and (trained or not run_folder.is_finished(top)):
        run_folder.write_metrics(top, metrics)
    note = trained and busy_machine_note(sum(v for k, v in metrics.items() if k.endswith("/train_time_s")))
    return RunResult(metrics, top if main else None, not trained, notes + ([note] if note else []))


def _export_stage(cfg: dict, name: str, dirs: dict, resuming: bool, main: bool) -> None:
    """Run an export stage (see :func:`sslkit.stages.export_stage`); on ``--resume`` a finished one is kept."""
    from .export import export, is_export

    target = Path(cfg["to"]) if cfg["to"] else dirs[name]
    if not main or (resuming and is_export(target)):
        return
    export(dirs[cfg["export"]], target, path=f"stages.{name}.to" if cfg["to"] else f"stages.{name}")


def validate(recipe, overrides=()) -> dict:
    """Resolve a recipe and build its data and parts without training; returns the resolved recipe
    (for a staged recipe: ``{"stages": {name: resolved stage}}``, each stage's data and parts checked
    except those that need an earlier stage's outputs)."""
    return validate_report(recipe, overrides)[0]


def validate_report(recipe, overrides=()) -> tuple[dict, list]:
    """:func:`validate`, plus lines saying what was resolved: data sizes, labeled rows, parameters,
    steps per epoch and total steps (what ``sslkit validate`` prints)."""
    raw = config.load_yaml(recipe) if not isinstance(recipe, dict) else recipe
    if raw.get("stages"):
        from .stages import resolve_stages

        stages = resolve_stages(raw, overrides)
        lines = [f"stage {name}: export of stage {cfg['export']}" if "export" in cfg else
                 f"stage {name}: {cfg['data']['name']} data, {cfg['encoder']['name']} encoder, objectives "
                 f"{', '.join(o['name'] for o in cfg['objectives'])}" + (f", from stage {src}" if src else "")
                 for name, (cfg, src) in stages.items()]
        return {"stages": {name: cfg for name, (cfg, _) in stages.items()}}, lines
    cfg = config.resolve(config.apply_overrides(raw, overrides))
    data = build_data(cfg)
    model = build_model(cfg, data)
    trainer = Trainer(cfg, data, model, torch.device("cpu"), None)  # checks streams and optimizers too
    return cfg, plan_lines(cfg, data, model, trainer)


def plan_lines(cfg: dict, data: DataBundle, model: SSLModel, trainer: Trainer) -> list:
    train, test, info = data.train, data.test, data.info
    labeled = int((train["y"] >= 0).sum()) if "y" in train else 0
    classes = f", {info.num_classes} classes" if info.num_classes else ", no classes"
    enc = sum(p.numel() for p in model.encoder.parameters())
    total = sum(p.numel() for p in model.parameters())
    t = cfg["trainer"]
    steps = f"{trainer.steps_per_epoch} per epoch (batch {t['batch_size']}) x {t['epochs']} epochs"
    full = trainer.steps_per_epoch * t["epochs"]
    steps += (f" = {full} steps" if trainer.total_steps == full
              else f" = {full}, capped at {trainer.total_steps} by trainer.max_steps")
    return [f"data: {info.name or cfg['data']['name']}, {len(train)} training rows ({labeled} labeled), "
            f"{len(test)} test rows{classes}",
            f"encoder: {cfg['encoder']['name']}, {enc:,} parameters ({total:,} with the objectives' heads)",
            f"objectives: {', '.join(model.names)}",
            f"steps: {steps}"] + ([f"evaluation and saved model: an exponential moving average of the weights "
                                  f"(decay {t['ema_decay']}, warm-up min(decay, (1 + step) / (10 + step)))"]
                                 if t["ema_decay"] else [])


__all__ = ["RunResult", "run", "validate", "SSLKitError"]
