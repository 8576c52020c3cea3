"""STL-10 from its binary files, with the 100,000-image unlabeled split as unlabeled training rows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..registry import register
from . import disk
from .base import UNLABELED, Examples
from .disk import check_labels, find_folder, image_examples

SIDE = 96
CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def read_images(path: Path) -> torch.Tensor:
    """``[N, 3, 96, 96]`` uint8, memory-mapped: the file stores each image's planes column-major, so
    the last two axes are swapped as a view. Nothing is read until rows are used."""
    size = path.stat().st_size
    if size == 0 or size % (3 * SIDE * SIDE):
        raise ConfigError("data.root", f"{path}: {size} bytes is not a whole number of 3x96x96 images "
                                       f"(corrupt or not an STL-10 file?)")
    images = np.memmap(path, dtype=np.uint8, mode="c").reshape(-1, 3, SIDE, SIDE)  # "c": writable, file untouched
    return torch.from_numpy(images).transpose(2, 3)


def read_labels(path: Path, n: int) -> np.ndarray:
    """Labels stored as bytes 1..10 -> classes 0..9."""
    return check_labels(np.fromfile(path, dtype=np.uint8).astype(np.int64) - 1, n, 10, path)


@register("datasets", "stl10")
def stl10(seed: int, *, root: str = "data/stl10", download: bool = False, verify_checksums: bool = False,
          unlabeled: bool = True) -> Examples:
    """STL-10 (5,000 labeled train / 8,000 test 96x96 RGB images, 10 classes, and 100,000 unlabeled
    images) from ``train_X.bin``, ``train_y.bin``, ``test_X.bin``, ``test_y.bin`` and ``unlabeled_X.bin``
    in ``root`` or ``root/stl10_binary``. The unlabeled images join the training rows with label -1,
    so semi- and self-supervised objectives draw them (``source: all``) and supervised ones do not.
    Images are memory-mapped, not loaded.

    root: the folder. download: fetch the official archive with torchvision first.
    verify_checksums: also check the official files' MD5 sums (torchvision's check).
    unlabeled: include the unlabeled split.
    """
    from torchvision.datasets import STL10

    if download:
        disk.download(STL10, root, "STL-10", split=("train+unlabeled" if unlabeled else "train", "test"))
    need = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin") + (("unlabeled_X.bin",) if unlabeled else ())
    folder = find_folder(root, ("stl10_binary",), need, "STL-10", "use data.download: true, or unpack "
                         "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz there")
    if verify_checksums:
        disk.verify_checksums(folder, STL10.train_list + STL10.test_list, "STL-10")
    train_x = read_images(folder / "train_X.bin")
    train_y = read_labels(folder / "train_y.bin", len(train_x))
    test_x = read_images(folder / "test_X.bin")
    test_y = read_labels(folder / "test_y.bin", len(test_x))
    if unlabeled:
        extra = read_images(folder / "unlabeled_X.bin")
        train_x = [train_x, extra]  # one column over both files, nothing copied
        train_y = np.concatenate([train_y, np.full(len(extra), UNLABELED)])
    return image_examples("stl10", CLASSES, train_x, train_y, test_x, test_y)
