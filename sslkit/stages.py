"""Multi-stage recipes (pretrain -> SFT -> reward model -> PPO, ...).

A recipe with ``stages:`` maps stage names, in order, to recipes of their own. Every other
top-level key is a default that each stage inherits (mappings merge key by key, lists and
scalars are replaced), and a ``--set`` on a top-level key applies to every stage, so
``--set trainer.max_steps=2`` shrinks the whole pipeline. ``from: NAME`` starts a stage's
encoder from an earlier stage's weights; objectives can also load earlier stages by name
(their run folders arrive in ``ObjectiveContext.stages``). A stage ``{export: NAME}`` (optionally
``to: FOLDER``) exports stage NAME's encoder like ``sslkit export``, into ``<run>/<stage>`` by default.
"""
from __future__ import annotations

import copy

from . import config
from .errors import ConfigError


def merge(base: dict, override: dict) -> dict:
    """Recursive merge: mappings merge, everything else in ``override`` replaces ``base``."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _split_overrides(overrides) -> tuple[list, list]:
    items = list(overrides.items()) if isinstance(overrides, dict) else [config.parse_override(s) for s in overrides]
    staged = [(k, v) for k, v in items if k.startswith("stages.") or k.startswith("stages[")]
    shared = [(k, v) for k, v in items if (k, v) not in staged]
    return staged, shared


def export_stage(stage: dict, path: str, trained: list) -> dict:
    """An export stage ``{export: STAGE, to: FOLDER}``: ``sslkit export`` of the earlier stage ``STAGE``
    into ``FOLDER`` (default: the stage's own folder in the run, ``<run>/<name>``)."""
    unknown = set(stage) - {"export", "to", "stages"}  # "stages": null in a resolved, re-read recipe
    if unknown:
        raise ConfigError(f"{path}.{sorted(unknown)[0]}", "an export stage takes only 'export' and 'to'")
    if stage["export"] not in trained:
        raise ConfigError(f"{path}.export", f"'{stage['export']}' is not an earlier trained stage "
                                            f"(earlier: {', '.join(trained) or 'none'})")
    return {"export": stage["export"], "to": stage.get("to")}


def require_finished(name: str, source: str, source_dir) -> None:
    """Refuse to start stage ``name`` from stage ``source`` unless ``source`` finished (its run folder's
    ``metrics.json`` says ``status: finished``, written only after its last step): a failed or interrupted
    pretraining stage has no final weights, or only a partial checkpoint, and the next stage must not
    start from those (or from random weights) silently."""
    from .run_folder import is_finished

    if not is_finished(source_dir):  # no metrics.json, or one with status failed/interrupted
        raise ConfigError(f"stages.{name}.from", f"stage '{source}' did not finish ({source_dir} has no "
                                                 f"finished metrics.json); run or resume it first (--stage {source}, or --resume on the run folder) "
                                                 f"before stage '{name}'")


def resolve_stages(raw: dict, overrides=()) -> dict:
    """``{stage name: (resolved recipe, name of the stage it starts from or None)}`` in order."""
    staged, shared = _split_overrides(overrides)
    raw = config.apply_overrides(raw, dict(staged))
    stages = raw.get("stages")
    if not isinstance(stages, dict) or not stages:
        raise ConfigError("stages", "expected a mapping of stage names to recipes")
    defaults = {k: v for k, v in raw.items() if k != "stages"}
    out, seen = {}, []
    for name, stage in stages.items():
        path = f"stages.{name}"
        if not isinstance(stage, dict):
            raise ConfigError(path, "expected a mapping (a recipe for this stage)")
        stage = dict(stage)
        if "export" in stage:
            out[name] = (export_stage(stage, path, [n for n in seen if "export" not in out[n][0]]), None)
            seen.append(name)
            continue
        source = stage.pop("from", None)
        if source is not None and source not in seen:
            raise ConfigError(f"{path}.from", f"'{source}' is not an earlier stage (earlier: {', '.join(seen) or 'none'})")
        merged = config.apply_overrides(merge(defaults, stage), dict(shared))
        try:
            cfg = config.resolve(merged)
        except ConfigError as exc:
            raise ConfigError(f"{path}.{exc.path}" if exc.path else path, exc.message) from None
        out[name] = (cfg, source)
        seen.append(name)
    return out
