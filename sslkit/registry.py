"""Registries of named parts (objectives, encoders, datasets, ...).

A part registers itself where it is defined::

    @register("objectives", "supervised")
    class Supervised(Objective):
        def __init__(self, ctx, *, label_smoothing: float = 0.0): ...

Positional parameters (``ctx`` above) are supplied by the framework; keyword
parameters are what a recipe may set, with their annotations used to validate
the recipe and their defaults shown by ``sslkit describe``.
"""
from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .errors import ConfigError, did_you_mean

KINDS = (
    "objectives",
    "encoders",
    "datasets",
    "relations",
    "regularizers",
    "optimizers",
    "schedulers",
    "views",
    "tokenizers",
    "reporters",
)

_NO_DEFAULT = inspect.Parameter.empty


@dataclass(frozen=True)
class Param:
    """One recipe-settable parameter of a part."""

    name: str
    annotation: Any
    default: Any = _NO_DEFAULT

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT


@dataclass
class Entry:
    """A registered part: the callable, its kind and name, and its recipe parameters."""

    kind: str
    name: str
    target: Callable
    injected: tuple[str, ...] = ()
    params: dict[str, Param] = field(default_factory=dict)
    accepts_extra: bool = False

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.target) or ""

    @property
    def summary(self) -> str:
        """The docstring's first sentence as plain text (what ``sslkit list`` shows)."""
        return first_sentence(self.doc)


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")  # :func:`x`, :class:`~a.B`
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)[.!?](?=\s|$)")


def plain_text(rst: str) -> str:
    """reStructuredText inline markup removed: ````x```` -> x, ``:func:`a.b``` -> b, ``*x*`` -> x."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], rst)
    text = re.sub(r"``(.+?)``", r"\1", text)
    text = re.sub(r"\*\*(.+?)\*\*|\*(\S(?:.*?\S)?)\*", lambda m: m.group(1) or m.group(2), text)
    return re.sub(r"(?<!\w)`([^`]+)`(?!\w)", r"\1", text)


def first_sentence(doc: str) -> str:
    """The first sentence of a docstring's first paragraph, on one line and without markup."""
    paragraph = " ".join(doc.strip().split("\n\n", 1)[0].split()) if doc.strip() else ""
    if paragraph.endswith("::"):  # introduces a literal block (a formula): end the sentence there
        paragraph = paragraph[:-2].rstrip() + ":"
    text = plain_text(paragraph)
    end = _SENTENCE_END.search(text)
    return text[:end.end()] if end else text


def _signature_params(target: Callable, injected: tuple[str, ...] | None, ranges: dict | None = None):
    fn = target.__init__ if inspect.isclass(target) else target
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # third-party callables with unresolvable annotations
        hints = {}
    names = list(sig.parameters)
    if names and names[0] == "self":
        names = names[1:]
    params, extra, auto_injected = {}, False, []
    for name in names:
        p = sig.parameters[name]
        if p.kind == p.VAR_KEYWORD:
            extra = True
            continue
        if p.kind == p.VAR_POSITIONAL:
            continue
        framework_supplied = (
            name in injected if injected is not None else p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        )
        if framework_supplied:
            auto_injected.append(name)
            continue
        annotation = hints.get(name, Any)
        if ranges and name in ranges:  # a third-party signature (e.g. torch's optimizers) gets its range here
            annotation = typing.Annotated[annotation, ranges[name]]
        params[name] = Param(name, annotation, p.default)
    return params, tuple(auto_injected), extra


class Registry:
    """Named parts of one kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: Callable, injected: tuple[str, ...] | None = None,
            ranges: dict | None = None) -> Callable:
        """Register ``target``; ``ranges`` maps parameter names to a ``schema.Range`` for callables
        whose signature cannot carry one (third-party classes)."""
        if name in self._entries and self._entries[name].target is not target:
            raise ValueError(f"{self.kind} '{name}' is already registered by {self._entries[name].target!r}")
        params, auto_injected, extra = _signature_params(target, injected, ranges)
        self._entries[name] = Entry(self.kind, name, target, auto_injected, params, extra)
        return target

    def get(self, name: str, path: str = "name") -> Entry:
        load_builtin_parts()
        if not isinstance(name, str) or name not in self._entries:
            raise ConfigError(
                path,
                f"unknown {self.kind[:-1]} '{name}'{did_you_mean(name, self._entries)} "
                f"(known: {', '.join(sorted(self._entries))})",
            )
        return self._entries[name]

    def names(self) -> list[str]:
        load_builtin_parts()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        load_builtin_parts()
        return name in self._entries


REGISTRIES: dict[str, Registry] = {kind: Registry(kind) for kind in KINDS}


def register(kind: str, name: str, injected: tuple[str, ...] | None = None):
    """Class/function decorator that adds the part to the ``kind`` registry under ``name``."""
    if kind not in REGISTRIES:
        raise ValueError(f"unknown registry kind '{kind}' (known: {', '.join(KINDS)})")

    def deco(target):
        REGISTRIES[kind].add(name, target, injected)
        return target

    return deco


def registry(kind: str) -> Registry:
    if kind not in REGISTRIES:
        raise ConfigError("kind", f"unknown kind '{kind}'{did_you_mean(kind, KINDS)} (known: {', '.join(KINDS)})")
    return REGISTRIES[kind]


def find(name: str) -> list[Entry]:
    """All entries called ``name`` across kinds (``kind/name`` narrows to one kind)."""
    load_builtin_parts()
    if "/" in name and name.split("/", 1)[0] in REGISTRIES:
        kind, part = name.split("/", 1)
        return [REGISTRIES[kind].get(part)]
    return [r._entries[name] for r in REGISTRIES.values() if name in r._entries]


_PACKAGES = ("objectives", "encoders", "data", "relations", "regularizers", "optim", "text", "reporters")
_loaded = False


def load_builtin_parts() -> None:
    """Import every module of sslkit's part packages so their ``@register`` calls run,
    then any third-party plugins advertised under the ``sslkit.plugins`` entry point."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package in _PACKAGES:
        pkg = importlib.import_module(f"sslkit.{package}")
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
            importlib.import_module(info.name)
    from importlib.metadata import entry_points

    for ep in entry_points(group="sslkit.plugins"):
        ep.load()


def unimplemented(cls: type) -> list:
    """The methods a registered part's class must define and does not: a module's ``forward``, and every
    method its bases declare ``@abstractmethod`` (a classifier objective's ``logits``, a rollout's ``collect``
    and ``update``, ...). ``nn.Module`` is no ``ABC``, so nothing else refuses such a class before it runs."""
    if not isinstance(cls, type):
        return []
    missing = [name for name in dir(cls) if getattr(getattr(cls, name, None), "__isabstractmethod__", False)]
    if getattr(cls, "forward", None) is torch.nn.Module.forward:
        missing.insert(0, "forward")
    return missing


def import_user_modules(modules: list[str], path: str = "imports") -> None:
    """Import modules named in a recipe's ``imports:`` so user parts register themselves. The working folder
    is searched too, as ``python -m sslkit`` searches it: the ``sslkit`` command's ``sys.path`` starts at its
    script's folder instead."""
    cwd = os.getcwd()
    if modules and cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)  # after the installed packages: a local file never shadows one of them
    for i, module in enumerate(modules):
        try:
            importlib.import_module(module)
        except (ImportError, ValueError) as exc:  # ValueError: an empty or relative name
            raise ConfigError(f"{path}[{i}]", f"cannot import module '{module}': {exc}") from None
