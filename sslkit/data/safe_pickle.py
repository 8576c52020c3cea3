"""Unpickling that runs no code: a pickle can name any callable to rebuild its objects (``__reduce__``), so a
file from an untrusted mirror could run anything on load. :func:`load` admits only the classes a dataset's
pickle holds (containers, strings, numbers and numpy arrays) and refuses every other one before it is
called."""
from __future__ import annotations

import pickle
from pathlib import Path

# (module, name) pairs a numpy array or a protocol-2 bytes object is rebuilt from; nothing else is looked up
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class RefusedPickle(pickle.UnpicklingError):
    """The pickle names a class or function outside :data:`ALLOWED`; ``name`` is ``module.name``."""

    def __init__(self, name: str):
        super().__init__(f"refused to load '{name}': a dataset pickle holds only dicts, lists, bytes, strings, "
                         f"numbers and numpy arrays")
        self.name = name


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise RefusedPickle(f"{module}.{name}")


def load(path: Path, encoding: str = "bytes"):
    """The object pickled in ``path`` (Python 2 strings as ``bytes`` by default, as CIFAR's batches need)."""
    with open(path, "rb") as f:
        return _Unpickler(f, encoding=encoding).load()
