"""Recipes: loading YAML, applying ``--set`` overrides, and resolving against the schema.

The schema below is the single source of truth for top-level recipe keys; the keys
of each named part come from that part's signature (see ``sslkit describe NAME``).
"""
from __future__ import annotations

import copy
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

import yaml

from .errors import ConfigError
from .registry import import_user_modules
from .schema import Part, Range, check_dataclass, check_value


@dataclass
class DataCommon:
    """Keys every dataset accepts, handled by the framework rather than the dataset."""

    labels_per_class: Optional[Annotated[int, Range(1)]] = None  # keep this many labels per class, hide the rest (semi-supervised)
    test_size: Annotated[float, Range(0, 1, min_open=True, max_open=True)] = 0.25  # stratified test fraction, for datasets without a fixed split
    annotators: Optional[Annotated[int, Range(1)]] = None  # K simulated annotators per training row (weak supervision; see data/annotators.py)
    annotator_accuracy: Annotated[float, Range(0, 1)] = 0.7  # probability that an annotator's label is the true class
    annotator_noise: Literal["uniform", "class_confusing"] = "uniform"  # how wrong labels are drawn
    annotator_missing_rate: Annotated[float, Range(0, 1, max_open=True)] = 0.0  # probability that an annotator skipped a row (label -1)


@dataclass
class EncoderCommon:
    """Keys every encoder accepts."""

    init_from: Optional[str] = None  # a run folder or checkpoint file whose encoder weights start this run


@dataclass
class ObjectiveCommon:
    """Keys every objective accepts."""

    weight: Annotated[float, Range(0)] = 1.0  # w_k in  sum_k w_k * L_k + lambda * Omega
    optimizers: dict = field(default_factory=dict)  # per-player optimizer overrides, e.g. {generator: {lr: 2e-4}}


@dataclass
class RegularizerCommon:
    weight: Annotated[float, Range(0)] = 1e-4  # lambda in  lambda * Omega(theta)


@dataclass
class TrainerConfig:
    """The ``trainer:`` section: the loop, its optimizer and schedule, devices, logging and checkpoints."""

    epochs: Annotated[int, Range(1)] = 10  # passes over the longest stream
    max_steps: Optional[Annotated[int, Range(1)]] = None  # caps any run (smoke tests)
    batch_size: Annotated[int, Range(1)] = 64  # global batch, split across DDP ranks
    optimizer: Annotated[dict, Part("optimizers", default="adamw")] = field(
        default_factory=lambda: {"name": "adamw", "lr": 1e-3})
    scheduler: Annotated[dict, Part("schedulers", default="constant")] = field(
        default_factory=lambda: {"name": "constant"})
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    grad_clip: Optional[Annotated[float, Range(0, None, min_open=True)]] = None  # max global grad norm
    # decay of an exponential moving average of the model's weights (encoder and heads), updated after each
    # step with timm's warm-up min(decay, (1 + step) / (10 + step)); evaluation, metrics.json, export and
    # init_from use the average. null: off
    ema_decay: Optional[Annotated[float, Range(0, 1, min_open=True, max_open=True)]] = None
    eval_every: Optional[Annotated[int, Range(1)]] = None  # steps between evaluations; null: once per epoch
    log_every: Annotated[int, Range(1)] = 10  # steps between lines of metrics.jsonl
    checkpoint_every: Optional[Annotated[int, Range(1)]] = None  # steps between checkpoints; null: once per epoch
    progress: bool = True  # a progress bar on a terminal
    # torch CPU threads: a number, auto (one per core that other work leaves idle at the start, at least 1;
    # sslkit.runner.auto_threads) or null (torch's default). One is often much faster on a busy machine.
    threads: Optional[Union[Annotated[int, Range(1)], Literal["auto"]]] = None
    num_workers: Optional[Annotated[int, Range(0)]] = None  # DataLoader workers augmenting stored images (null: up to 8 on CUDA, 0 on CPU)
    compile: bool = False  # torch.compile the encoder
    # under torchrun: BatchNorm statistics of the global batch (torch's SyncBatchNorm on CUDA; sslkit's
    # GlobalBatchNorm on the CPU), so they do not depend on the number of processes. Off: each rank's own rows
    sync_batchnorm: bool = False


@dataclass
class Recipe:
    """A recipe's top-level keys (each section's own: ``sslkit describe trainer``, ``data``, ``encoder``,
    ``objective``, ``regularizer``; a part's: ``sslkit describe NAME``)."""

    seed: int = 0
    imports: list[str] = field(default_factory=list)  # modules whose parts register themselves
    data: Annotated[dict, Part("datasets", DataCommon)] = field(default_factory=lambda: {"name": "digits"})
    encoder: Annotated[dict, Part("encoders", EncoderCommon)] = field(default_factory=lambda: {"name": "mlp"})
    objectives: list[Annotated[dict, Part("objectives", ObjectiveCommon)]] = field(
        default_factory=lambda: [{"name": "supervised"}])
    regularizer: Optional[Annotated[dict, Part("regularizers", RegularizerCommon)]] = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    # what runs after/beside training (sslkit.reporters); null: curves + the objectives' defaults
    reporters: Optional[list[Annotated[dict, Part("reporters")]]] = None
    stages: Optional[dict] = None  # name -> recipe; see sslkit.stages


class DuplicateKey(yaml.YAMLError):
    """A mapping of a recipe names the same key twice."""


class RecipeLoader(yaml.SafeLoader):
    """YAML as recipes are read: ``1e-3`` is a number (YAML 1.1 reads exponents without a dot as strings;
    every form Python's ``float()`` takes is a number here), and a key given twice in one mapping is an
    error naming both lines, where PyYAML would keep the last silently."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise DuplicateKey(f"duplicate key '{key}' (lines {seen[key]} and {line})")
            seen[key] = line
        return super().construct_mapping(node, deep)


RecipeLoader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
RecipeLoader.add_implicit_resolver(  # YAML 1.2's floats: 1e-3, 1E5, .5, 5., -2.5e+3 (after the 1.1 ones)
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."))


def read_yaml(text: str):
    """``text`` parsed as a recipe's YAML (:class:`RecipeLoader`)."""
    return yaml.load(text, Loader=RecipeLoader)


# what `sslkit describe NAME` shows for a recipe section rather than a registered part
SECTIONS = {"recipe": Recipe, "trainer": TrainerConfig, "data": DataCommon, "encoder": EncoderCommon,
            "objective": ObjectiveCommon, "regularizer": RegularizerCommon}


def section_keys(cls: type) -> list:
    """``(key, type, default, comment)`` of each key of a recipe section's dataclass, the comment being the one
    written beside (or just above) the key in this file."""
    import dataclasses
    import inspect

    from .schema import _type_name

    comments, above = {}, []
    for line in inspect.getsource(cls).splitlines():
        text = line.strip()
        if text.startswith("#"):
            above.append(text.lstrip("# "))
            continue
        match = re.match(r"(\w+)\s*:", text)
        if match:
            inline = text.split("  # ", 1)[1] if "  # " in text else ""
            comments[match.group(1)] = " ".join([*above, inline]).strip()
        above = []
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for f in dataclasses.fields(cls):
        default = (f.default if f.default is not dataclasses.MISSING else
                   f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if dataclasses.is_dataclass(default):  # a nested section: described on its own
            default = {g.name: getattr(default, g.name) for g in dataclasses.fields(default)}
        out.append((f.name, _type_name(hints[f.name]), default, comments.get(f.name, "")))
    return out


def load_yaml(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "recipe file not found")
    try:
        data = read_yaml(path.read_text())
    except DuplicateKey as exc:
        raise ConfigError(str(path), str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(str(path), f"malformed YAML{where}: {problem}") from None
    if not data:  # an empty file would otherwise silently train the defaults
        raise ConfigError(str(path), "the recipe names no data and no objective (the file is empty)")
    if not isinstance(data, dict):
        raise ConfigError(str(path), f"a recipe must be a mapping of keys, got {type(data).__name__}")
    if not any(k in data for k in ("data", "objectives", "stages")):
        raise ConfigError(str(path), "the recipe names no data and no objective (add `data:` and `objectives:`; "
                                     "see recipes/ for examples)")
    return data


_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _split_key(key: str, spec: str) -> list:
    parts, pos = [], 0
    for m in _TOKEN.finditer(key):
        if m.start() != pos and key[pos:m.start()] != ".":
            raise ConfigError(f"--set {spec}", f"malformed key '{key}'")
        parts.append(int(m.group(2)) if m.group(2) is not None else
                     (int(m.group(1)) if m.group(1).isdigit() else m.group(1)))
        pos = m.end()
    if not parts or pos != len(key):
        raise ConfigError(f"--set {spec}", f"malformed key '{key}'")
    return parts


def parse_override(spec: str) -> tuple[str, object]:
    """``'trainer.max_steps=5'`` -> ``('trainer.max_steps', 5)``; the value is parsed as YAML."""
    if "=" not in spec:
        raise ConfigError(f"--set {spec}", "expected KEY=VALUE, e.g. --set trainer.max_steps=5")
    key, raw = spec.split("=", 1)
    key = key.strip()
    try:
        value = read_yaml(raw) if raw.strip() else None
    except DuplicateKey as exc:
        raise ConfigError(f"--set {spec}", str(exc)) from None
    except yaml.YAMLError:
        raise ConfigError(f"--set {spec}", f"value '{raw}' is not valid YAML") from None
    _split_key(key, spec)
    return key, value


def apply_overrides(cfg: dict, overrides) -> dict:
    """Set dotted keys (``a.b[0].c`` or ``a.b.0.c``) in a copy of ``cfg``."""
    cfg = copy.deepcopy(cfg)
    items = overrides.items() if isinstance(overrides, dict) else [parse_override(s) for s in overrides]
    for key, value in items:
        parts = _split_key(key, f"{key}={value}")
        node = cfg
        for i, part in enumerate(parts[:-1]):
            where = f"--set {key}"
            nxt = parts[i + 1]
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    raise ConfigError(where, f"index [{part}] does not exist")
                node = node[part]
            else:
                if not isinstance(node, dict):
                    raise ConfigError(where, f"'{part}' is not inside a mapping")
                if isinstance(node.get(part), str):  # `encoder: mlp` shorthand, then `--set encoder.hidden=...`
                    node[part] = {"name": node[part]}
                node = node.setdefault(part, [] if isinstance(nxt, int) else {})
        last = parts[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or last > len(node):
                raise ConfigError(f"--set {key}", f"index [{last}] does not exist")
            if last == len(node):
                node.append(value)
            else:
                node[last] = value
        else:
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}", "the parent of this key is not a mapping")
            node[last] = value
    return cfg


MAX_SEED = 2**31 - 1


def resolve(cfg: dict) -> dict:
    """Check a raw recipe against the schema and every part's signature; return it with defaults filled."""
    if not isinstance(cfg, dict):
        raise ConfigError("", "a recipe must be a mapping")
    # imported before the rest is checked: the modules register the parts the rest may name
    import_user_modules(check_value(cfg.get("imports") or [], list[str], "imports"))
    if not cfg:  # not a silent run of the defaults
        raise ConfigError("", "the recipe names no data and no objective")
    resolved = check_dataclass(cfg, Recipe, "")
    if not 0 <= resolved["seed"] <= MAX_SEED:  # numpy / scikit-learn take 32-bit seeds; parts add small offsets
        raise ConfigError("seed", f"must be in [0, {MAX_SEED}], got {resolved['seed']}")
    if not resolved["objectives"]:
        raise ConfigError("objectives", "at least one objective is required")
    return resolved


def load_recipe(path, overrides=()) -> dict:
    """Load, override and resolve a recipe file."""
    return resolve(apply_overrides(load_yaml(path), overrides))


def dump(cfg: dict) -> str:
    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return yaml.safe_dump(plain(cfg), sort_keys=False)
