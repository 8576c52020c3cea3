"""Classify Python standard-library docstrings by the family of their module.

A real text classification task available offline on every Python install: the
docstrings of public functions, classes and methods of a fixed set of stdlib
modules, labeled with the family the module belongs to. ``unlabeled: stdlib`` adds
the docstrings of the other top-level stdlib modules as unlabeled training rows
(label -1, never in the test split): in-domain text for pretraining or
semi-supervised objectives.
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import sys
import warnings
from typing import Literal

from ..registry import register
from ..schema import Count, NonNegativeInt
from .text import TokenizerSpec, text_examples

FAMILIES = {
    "text": ["string", "re", "textwrap", "difflib", "unicodedata", "codecs", "html", "html.parser", "locale"],
    "math": ["math", "cmath", "statistics", "decimal", "fractions", "random", "numbers"],
    "files": ["os", "os.path", "shutil", "pathlib", "glob", "fnmatch", "tempfile", "filecmp", "stat", "zipfile",
              "tarfile", "io"],
    "network": ["socket", "http.client", "http.server", "urllib.request", "urllib.parse", "smtplib", "ftplib",
                "email.message", "ipaddress", "socketserver"],
    "concurrency": ["threading", "multiprocessing", "concurrent.futures", "asyncio", "subprocess", "queue",
                    "sched", "selectors"],
    "data": ["collections", "heapq", "bisect", "array", "copy", "enum", "dataclasses", "json", "csv", "pickle",
             "struct", "itertools", "functools"],
}


_TOPS = {m.split(".")[0] for ms in FAMILIES.values() for m in ms}
# never imported for unlabeled text: side effects (a browser, a window, printing) or test suites
_SKIP = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "test", "ensurepip", "venv",
         "lib2to3", "pydoc_data", "curses", "readline", "sqlite3", "dbm", "xxlimited", "xxsubtype"}


def _unlabeled_docstrings(min_chars: int, seen: set) -> list:
    """Docstrings of the public top-level stdlib modules outside ``FAMILIES`` (sorted, so the same on
    every run of one Python version)."""
    labeled = {m for ms in FAMILIES.values() for m in ms}
    names = sorted(m for m in sys.stdlib_module_names if not m.startswith("_") and m not in _SKIP | labeled)
    docs = []
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # deprecated modules warn on import
        for name in names:
            try:
                docs += _docstrings(name, min_chars, seen)
            except Exception:  # noqa: BLE001 - a module that cannot be imported here has no text to give
                continue
    return docs


def _docstrings(module_name: str, min_chars: int, seen: set):
    try:
        module = importlib.import_module(module_name)
    except ImportError:  # a stripped-down Python build may lack one; skip it
        return []
    docs = []
    for name, obj in sorted(vars(module).items()):
        owner = (getattr(obj, "__module__", None) or module_name).split(".")[0]
        # skip private names, submodules and names re-exported from another listed module
        if name.startswith("_") or inspect.ismodule(obj) or (owner in _TOPS and owner != module_name.split(".")[0]):
            continue
        members = [obj]
        if inspect.isclass(obj):
            members += [m for n, m in sorted(vars(obj).items()) if not n.startswith("_") and callable(m)]
        for m in members:
            doc = inspect.getdoc(m)
            if doc and len(doc) >= min_chars and doc not in seen:
                seen.add(doc)
                docs.append(doc)
    return docs


@register("datasets", "docstrings")
def docstrings(seed: int, *, tokenizer: TokenizerSpec = "byte", max_length: Count = 128, min_chars: NonNegativeInt = 40,
               unlabeled: Literal["none", "stdlib"] = "none"):
    """Standard-library docstrings labeled by module family (text, math, files, network, concurrency, data).

    tokenizer: a registered tokenizer. max_length: ids per document (longer ones are truncated).
    min_chars: skip docstrings shorter than this.
    unlabeled: ``stdlib`` adds the docstrings of the other top-level stdlib modules (about 2,000 on
        CPython 3.11) as unlabeled training rows; the test split holds labeled rows only.
    """
    texts, labels, seen = [], [], set()
    for label, (family, modules) in enumerate(FAMILIES.items()):
        for module in modules:
            for doc in _docstrings(module, min_chars, seen):
                texts.append(doc)
                labels.append(label)
    if unlabeled == "stdlib":
        extra = _unlabeled_docstrings(min_chars, seen)
        texts += extra
        labels += [-1] * len(extra)
    return text_examples(texts, labels, list(FAMILIES), tokenizer, max_length, "docstrings")
