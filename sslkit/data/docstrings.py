"""Classify Python standard-library docstrings by the family of their module.

A real text classification task available offline on every Python install: the
docstrings of public functions, classes and methods of a fixed set of stdlib
modules, labeled with the family the module belongs to.
"""
from __future__ import annotations

import importlib
import inspect

from ..registry import register
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
def docstrings(seed: int, *, tokenizer: TokenizerSpec = "byte", max_length: int = 128, min_chars: int = 40):
    """Standard-library docstrings labeled by module family (text, math, files, network, concurrency, data).

    tokenizer: a registered tokenizer. max_length: ids per document (longer ones are truncated).
    min_chars: skip docstrings shorter than this.
    """
    texts, labels, seen = [], [], set()
    for label, (family, modules) in enumerate(FAMILIES.items()):
        for module in modules:
            for doc in _docstrings(module, min_chars, seen):
                texts.append(doc)
                labels.append(label)
    return text_examples(texts, labels, list(FAMILIES), tokenizer, max_length, "docstrings")
