"""Validation of recipe values against type annotations.

Every error names the path in the recipe (``objectives[1].relation.threshold``)
and, for unknown keys or names, suggests the closest valid one.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional, Union

from .errors import ConfigError, did_you_mean
from .registry import registry, unimplemented


@dataclass(frozen=True)
class Part:
    """Marks a recipe value as a registered part: ``{name: ..., **params}`` or just ``name``.

    ``common`` is a dataclass of keys every part of this slot accepts besides its own
    parameters (e.g. ``weight`` for objectives). ``default`` names the part used when
    the mapping has no ``name``.
    """

    kind: str
    common: type | None = None
    default: str | None = None


class RangeError(ConfigError):
    """A value of the right type outside its declared :class:`Range`."""


@dataclass(frozen=True)
class Range:
    """The allowed values of a number, declared where the parameter is declared::

        dropout: Annotated[float, Range(0, 1, max_open=True)] = 0.1     # 0 <= dropout < 1
        lr: Annotated[float, Range(0, None, min_open=True)] = 1e-3       # lr > 0
        hidden: list[Annotated[int, Range(1)]] = ...                     # every width >= 1

    ``min``/``max`` are the bounds (None: unbounded); ``min_open``/``max_open`` exclude the bound.
    Recipe validation checks it with the value's path: ``trainer.batch_size: must be >= 1, got -5``.
    """

    min: Optional[float] = None
    max: Optional[float] = None
    min_open: bool = False
    max_open: bool = False

    def __str__(self) -> str:
        lo, hi = self.min, self.max
        if lo is not None and hi is not None:
            return f"in {'(' if self.min_open else '['}{lo}, {hi}{')' if self.max_open else ']'}"
        if lo is not None:
            return f"{'>' if self.min_open else '>='} {lo}"
        if hi is not None:
            return f"{'<' if self.max_open else '<='} {hi}"
        return "any number"

    def contains(self, value) -> bool:
        if not math.isfinite(value):  # nan passes every comparison; inf is never a meaningful setting
            return False
        if self.min is not None and (value <= self.min if self.min_open else value < self.min):
            return False
        if self.max is not None and (value >= self.max if self.max_open else value > self.max):
            return False
        return True

    def check(self, value, path: str):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not self.contains(value):
            raise RangeError(path, f"must be {self}, got {value}")
        return value


# The ranges most parameters need, named so a signature stays one readable line
# (``k: Count = 10``, ``threshold: Probability = 0.95``); others spell out ``Annotated[..., Range(...)]``.
Count = Annotated[int, Range(1)]  # sizes, widths, steps between events: >= 1
NonNegativeInt = Annotated[int, Range(0)]  # e.g. warm-up steps, where 0 means none
AtLeastTwo = Annotated[int, Range(2)]  # e.g. a sequence length that must hold an input and a target
Positive = Annotated[float, Range(0, None, min_open=True)]  # temperatures, scales, learning rates
NonNegative = Annotated[float, Range(0)]  # loss weights and coefficients, where 0 switches a term off
Probability = Annotated[float, Range(0, 1)]  # probabilities and thresholds on them
PositiveProbability = Annotated[float, Range(0, 1, min_open=True)]  # (0, 1], e.g. a share or a success rate
Rate = Annotated[float, Range(0, 1, max_open=True)]  # dropout, momentum/decay of a moving average: [0, 1)
OpenProbability = Annotated[float, Range(0, 1, min_open=True, max_open=True)]  # (0, 1), e.g. a split fraction


def part_name(value) -> str | None:
    return value if isinstance(value, str) else (value or {}).get("name")


def _type_name(annotation) -> str:
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        return {"int": "integer", "float": "number", "str": "string", "bool": "boolean", "dict": "mapping",
                "list": "list", "tuple": "list"}.get(annotation.__name__, annotation.__name__)
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *meta = typing.get_args(annotation)
        return " ".join([_type_name(base)] + [str(m) for m in meta if isinstance(m, Range)])
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin is not None:
        return _type_name(origin)
    return str(annotation)


def _describe(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_value(value, annotation, path: str):
    """Return ``value`` checked (and lightly coerced: int→float, list→tuple) against ``annotation``."""
    if annotation is Any or annotation is typing.Any or annotation is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        for meta in args[1:]:
            if isinstance(meta, Part):
                return check_part(value, meta, path)
        checked = check_value(value, args[0], path)
        for meta in args[1:]:
            if isinstance(meta, Range):
                meta.check(value, path)  # the value as written (``-1``, not the coerced ``-1.0``)
        return checked
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return check_value(value, option, path)
            except ConfigError as exc:
                errors.append(exc)
        in_type = [e for e in errors if isinstance(e, RangeError)]  # the type fit, the value did not
        if len(errors) == 1 or in_type:
            raise (in_type or errors)[0]
        raise ConfigError(path, f"expected {_type_name(annotation)}, got {_describe(value)}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(path, f"expected one of {', '.join(map(repr, args))}, got {value!r}{did_you_mean(value, args)}")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(path, f"expected null, got {_describe(value)}")
    if dataclasses.is_dataclass(annotation):
        return check_dataclass(value, annotation, path)
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif annotation in (list, tuple) or origin in (list, tuple, typing.Sequence):
        if isinstance(value, (list, tuple)):
            if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
                if len(value) != len(args):
                    raise ConfigError(path, f"expected a list of {len(args)} items, got {len(value)}")
                return tuple(check_value(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
            item = args[0] if args else Any
            items = [check_value(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
            return tuple(items) if (annotation is tuple or origin is tuple) else items
    elif annotation is dict or origin is dict:
        if isinstance(value, dict):
            if args:
                return {k: check_value(v, args[1], f"{path}.{k}") for k, v in value.items()}
            return dict(value)
    elif isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
    else:
        return value  # a typing construct we do not police (e.g. Iterable in a third-party signature)
    raise ConfigError(path, f"expected {_type_name(annotation)}, got {_describe(value)}")



def _check_keys(value: dict, allowed: dict, path: str, what: str):
    for key in value:
        if key not in allowed:
            raise ConfigError(f"{path}.{key}" if path else str(key),
                              f"unknown key for {what}{did_you_mean(key, allowed)} (valid: {', '.join(sorted(allowed))})")


def check_dataclass(value, cls, path: str) -> dict:
    """Validate a mapping against a dataclass schema and fill in defaults; returns a plain dict."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected a mapping, got {_describe(value)}")
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _check_keys(value, fields, path, path or "the recipe")
    out = {}
    for name, f in fields.items():
        sub = f"{path}.{name}" if path else name
        if name in value:
            out[name] = check_value(value[name], hints[name], sub)
        elif f.default is not dataclasses.MISSING:
            out[name] = check_value(f.default, hints[name], sub) if f.default is not None else None
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
            out[name] = check_value({} if dataclasses.is_dataclass(default) else default, hints[name], sub)
        else:
            raise ConfigError(sub, "required key is missing")
    return out


def check_part(value, part: Part, path: str) -> dict:
    """Validate ``{name, **params}`` against the registered part's signature; fill defaults."""
    if isinstance(value, str):
        value = {"name": value}
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(path, f"expected a {part.kind[:-1]} name or a mapping with 'name', got {_describe(value)}")
    name = value.get("name", part.default)
    if name is None:
        raise ConfigError(f"{path}.name", f"required: which {part.kind[:-1]} to use "
                                          f"(known: {', '.join(registry(part.kind).names())})")
    entry = registry(part.kind).get(name, f"{path}.name")
    common = {f.name: f for f in dataclasses.fields(part.common)} if part.common else {}
    allowed = {"name": None, **common, **entry.params}
    if not entry.accepts_extra:
        _check_keys(value, allowed, path, f"{part.kind[:-1]} '{name}'")
    out = {"name": name}
    if part.common:
        out.update(check_dataclass({k: v for k, v in value.items() if k in common}, part.common, path))
    hints = entry.params
    for pname, p in hints.items():
        sub = f"{path}.{pname}"
        if pname in value:
            out[pname] = check_value(value[pname], p.annotation, sub)
        elif not p.required:
            out[pname] = p.default
        else:
            raise ConfigError(sub, f"required parameter of {part.kind[:-1]} '{name}' is missing")
    for key in value:  # extra keys of parts that take **kwargs pass through
        if key not in out:
            out[key] = value[key]
    return out


def split_common(cfg: dict, part: Part) -> tuple[dict, dict]:
    """Split a checked part mapping into (common keys, the part's own parameters without ``name``)."""
    common_names = {f.name for f in dataclasses.fields(part.common)} if part.common else set()
    common = {k: v for k, v in cfg.items() if k in common_names}
    own = {k: v for k, v in cfg.items() if k not in common_names and k != "name"}
    return common, own


def build(kind: str, cfg, *context, path: str = "", common: type | None = None, **more_context):
    """Build a registered part from a (checked or raw) mapping, passing ``context`` positionally."""
    part = Part(kind, common)
    checked = check_part(cfg, part, path)
    _, own = split_common(checked, part)
    entry = registry(kind).get(checked["name"], f"{path}.name")
    missing = unimplemented(entry.target)
    if missing:  # found when the recipe is built, not as a traceback at the first evaluation
        raise ConfigError(f"{path}.name", f"{kind[:-1]} '{checked['name']}' ({entry.target.__module__}."
                                          f"{entry.target.__qualname__}) does not define {', '.join(missing)}, which "
                                          f"its base class needs")
    return entry.target(*context, **more_context, **own)
