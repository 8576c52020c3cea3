"""CIFAR-10 and CIFAR-100 from their python pickle batches (``cifar-10-batches-py``, ``cifar-100-python``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..registry import register
from .base import Examples
from . import disk, safe_pickle
from .disk import check_images, check_labels, find_folder, image_examples


def read_batch(path: Path, label_key: str, num_classes: int) -> tuple:
    """One pickled batch: ``data`` ``[N, 3072]`` uint8 (R, G, B planes of 32x32) and its labels."""
    try:
        batch = safe_pickle.load(path)
        data, labels = batch[b"data"], batch[label_key.encode()]
    except safe_pickle.RefusedPickle as exc:
        raise ConfigError("data.root", f"{path}: {exc}; nothing in it was run") from None
    except Exception as exc:  # truncated files, foreign pickles, missing keys
        raise ConfigError("data.root", f"{path}: not a CIFAR pickle batch ({type(exc).__name__}: "
                                       f"{str(exc)[:120]})") from None
    x = np.asarray(data)
    check_images(x, (3072,), path, "rows")
    return x.reshape(-1, 3, 32, 32), check_labels(labels, len(x), num_classes, path)


def read_names(path: Path, key: str, count: int) -> list:
    try:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in safe_pickle.load(path)[key.encode()]]
        return names if len(names) == count else [str(c) for c in range(count)]
    except safe_pickle.RefusedPickle as exc:
        raise ConfigError("data.root", f"{path}: {exc}; nothing in it was run") from None
    except Exception:  # the meta file only names the classes; re-packed copies may lack it
        return [str(c) for c in range(count)]


def _cifar(root, download_, verify, *, name, subdir, train_files, test_file, meta, label_key, names_key,
           num_classes, url, tv_cls) -> Examples:
    if download_:
        disk.download(tv_cls, root, name, train=(True, False))
    how = f"use data.download: true, or unpack {url} there"
    folder = find_folder(root, (subdir,), (*train_files, test_file), name, how)
    if verify:
        disk.verify_checksums(folder, tv_cls.train_list + tv_cls.test_list, name)
    parts = [read_batch(folder / f, label_key, num_classes) for f in train_files]
    test_x, test_y = read_batch(folder / test_file, label_key, num_classes)
    names = read_names(folder / meta, names_key, num_classes)
    return image_examples(name, names, np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                          test_x, test_y)


@register("datasets", "cifar10")
def cifar10(seed: int, *, root: str = "data/cifar10", download: bool = False,
            verify_checksums: bool = False) -> Examples:
    """CIFAR-10 (50,000 train / 10,000 test 32x32 RGB images, 10 classes) from the python version's
    pickle batches in ``root`` or ``root/cifar-10-batches-py`` (the official test batch is the test set):
    ``data_batch_1`` to ``data_batch_5`` and ``test_batch``, every one of them. Files are checked by
    structure, so re-packed or sub-sampled batches load; they are unpickled admitting only what a CIFAR
    batch holds (:mod:`sslkit.data.safe_pickle`).

    root: the folder. download: fetch the official archive with torchvision first.
    verify_checksums: also check the official files' MD5 sums (torchvision's check).
    """
    from torchvision.datasets import CIFAR10

    return _cifar(root, download, verify_checksums, name="cifar10", subdir="cifar-10-batches-py",
                  train_files=tuple(f"data_batch_{i}" for i in range(1, 6)), test_file="test_batch", meta="batches.meta", label_key="labels",
                  names_key="label_names", num_classes=10, tv_cls=CIFAR10,
                  url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz")


@register("datasets", "cifar100")
def cifar100(seed: int, *, root: str = "data/cifar100", download: bool = False,
             verify_checksums: bool = False) -> Examples:
    """CIFAR-100 (50,000 train / 10,000 test 32x32 RGB images, 100 fine classes) from the python
    version's ``train`` and ``test`` pickles in ``root`` or ``root/cifar-100-python``.

    root: the folder. download: fetch the official archive with torchvision first.
    verify_checksums: also check the official files' MD5 sums (torchvision's check).
    """
    from torchvision.datasets import CIFAR100

    return _cifar(root, download, verify_checksums, name="cifar100", subdir="cifar-100-python",
                  train_files=("train",), test_file="test", meta="meta", label_key="fine_labels",
                  names_key="fine_label_names", num_classes=100, tv_cls=CIFAR100,
                  url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz")
