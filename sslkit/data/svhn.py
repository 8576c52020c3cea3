"""SVHN (cropped digits, format 2) from its MATLAB files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..registry import register
from .base import Examples
from . import disk
from .disk import check_images, check_labels, find_folder, image_examples

FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat", "extra": "extra_32x32.mat"}


def read_mat(path: Path) -> tuple:
    """``X`` ``[32, 32, 3, N]`` uint8 -> ``[N, 3, 32, 32]``; labels 1..10 with 10 meaning the digit 0."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
        x, y = mat["X"], mat["y"]
    except Exception as exc:  # truncated or foreign .mat files raise many types
        raise ConfigError("data.root", f"{path}: not an SVHN .mat file ({type(exc).__name__}: {str(exc)[:120]})") from None
    if x.ndim != 4:
        check_images(x, (32, 32, 3), path)
    x = np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1)))
    check_images(x, (3, 32, 32), path)
    y = np.asarray(y).reshape(-1).astype(np.int64)
    y[y == 10] = 0
    return x, check_labels(y, len(x), 10, path)


@register("datasets", "svhn")
def svhn(seed: int, *, root: str = "data/svhn", download: bool = False, verify_checksums: bool = False,
         extra: bool = False) -> Examples:
    """SVHN (73,257 train / 26,032 test 32x32 RGB house-number digits, 10 classes) from
    ``train_32x32.mat`` and ``test_32x32.mat`` in ``root``; digit 0 (stored as 10) is class 0.

    root: the folder. download: fetch the official files with torchvision first.
    verify_checksums: also check the official files' MD5 sums (torchvision's check).
    extra: add the 531,131 ``extra_32x32.mat`` images to the training rows (as USB does).
    """
    from torchvision.datasets import SVHN

    if download:
        disk.download(SVHN, root, "svhn", split=("train", "test") + (("extra",) if extra else ()))
    need = (FILES["train"], FILES["test"]) + ((FILES["extra"],) if extra else ())
    folder = find_folder(root, (), need, "SVHN", "use data.download: true, or put the .mat files from "
                                                 "http://ufldl.stanford.edu/housenumbers/ there")
    if verify_checksums:
        disk.verify_checksums(folder, [(f, md5) for _, f, md5 in SVHN.split_list.values()], "SVHN")
    parts = [read_mat(folder / FILES[s]) for s in ("train", "extra") if s == "train" or extra]
    test_x, test_y = read_mat(folder / FILES["test"])
    return image_examples("svhn", [str(c) for c in range(10)], np.concatenate([p[0] for p in parts]),
                          np.concatenate([p[1] for p in parts]), test_x, test_y)
