"""MNIST and Fashion-MNIST from their IDX files (gzipped or not)."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..registry import register
from . import disk
from .base import Examples
from .disk import check_images, check_labels, find_folder, image_examples

FILES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
         "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(folder: Path, name: str, dims: int) -> np.ndarray:
    """An IDX file of unsigned bytes with ``dims`` dimensions (``name`` or ``name.gz``): a big-endian
    header ``0x0000 0x08 dims`` then ``dims`` sizes, then the data."""
    path = folder / name if (folder / name).exists() else folder / f"{name}.gz"
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise ConfigError("data.root", f"{path}: cannot read ({exc})") from None
    header = np.frombuffer(raw[:4 + 4 * dims], dtype=">u4") if len(raw) >= 4 + 4 * dims else np.zeros(0)
    if len(header) != 1 + dims or header[0] != 0x0800 + dims:
        raise ConfigError("data.root", f"{path}: not an IDX file of {dims}-d unsigned bytes (bad header)")
    shape = tuple(int(s) for s in header[1:])
    data = np.frombuffer(bytearray(raw), dtype=np.uint8, offset=4 + 4 * dims)  # bytearray: writable for torch
    if data.size != int(np.prod(shape)):
        raise ConfigError("data.root", f"{path}: header says {list(shape)} but holds {data.size} bytes (truncated?)")
    return data.reshape(shape)


def _idx_dataset(root, download, verify, rgb, *, name, subdir, classes, tv_cls) -> Examples:
    if download:
        disk.download(tv_cls, root, name, train=(True, False))
    folder = find_folder(root, (f"{subdir}/raw",), tuple(f"{f}*" for f in FILES.values()), name,
                         f"use data.download: true, or put the four idx files (gzipped or not) there")
    if verify:
        disk.verify_checksums(folder, tv_cls.resources, name)
    arrays = {}
    for split in ("train", "test"):
        x = read_idx(folder, FILES[f"{split}_x"], 3)
        check_images(x, (28, 28), folder / FILES[f"{split}_x"])
        y = check_labels(read_idx(folder, FILES[f"{split}_y"], 1), len(x), 10, folder / FILES[f"{split}_y"])
        x = x[:, None]
        arrays[split] = (np.repeat(x, 3, axis=1) if rgb else x, y)
    return image_examples(name, classes, *arrays["train"], *arrays["test"])


@register("datasets", "mnist")
def mnist(seed: int, *, root: str = "data/mnist", download: bool = False, verify_checksums: bool = False,
          rgb: bool = False) -> Examples:
    """MNIST (60,000 train / 10,000 test 28x28 grayscale digits) from the four IDX files in ``root``
    or ``root/MNIST/raw`` (torchvision's layout), gzipped or not.

    root: the folder. download: fetch the official files with torchvision first.
    verify_checksums: also check the official ``.gz`` files' MD5 sums (torchvision's check).
    rgb: repeat the gray channel three times (for backbones that take RGB).
    """
    from torchvision.datasets import MNIST

    return _idx_dataset(root, download, verify_checksums, rgb, name="mnist", subdir="MNIST",
                        classes=[str(c) for c in range(10)], tv_cls=MNIST)


@register("datasets", "fashion_mnist")
def fashion_mnist(seed: int, *, root: str = "data/fashion_mnist", download: bool = False,
                  verify_checksums: bool = False, rgb: bool = False) -> Examples:
    """Fashion-MNIST (60,000 train / 10,000 test 28x28 grayscale clothing images, 10 classes) from the
    four IDX files in ``root`` or ``root/FashionMNIST/raw``, gzipped or not.

    root: the folder. download: fetch the official files with torchvision first.
    verify_checksums: also check the official ``.gz`` files' MD5 sums (torchvision's check).
    rgb: repeat the gray channel three times (for backbones that take RGB).
    """
    from torchvision.datasets import FashionMNIST

    return _idx_dataset(root, download, verify_checksums, rgb, name="fashion_mnist", subdir="FashionMNIST",
                        classes=FASHION, tv_cls=FashionMNIST)
