"""What the on-disk image datasets share: finding their files under ``data.root`` (one clear line
when they are missing), torchvision's downloaders and checksum checks on request, structure checks
that accept re-packed or sub-sampled copies, and the :class:`Examples` they return."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import ConfigError
from .base import DataInfo, Examples
from .images import ImageColumn


def find_folder(root: str, subdirs: tuple, required: tuple, dataset: str, how: str) -> Path:
    """The first of ``root`` and ``root/<subdir>`` holding every file of ``required`` (glob patterns);
    otherwise a ConfigError at ``data.root``: for a folder holding some of them, the files it lacks (a
    dataset is never read in part), else where it looked and how to get the files."""
    base = Path(root).expanduser()
    candidates = [base] + [base / s for s in subdirs]
    present = {folder: [p for p in required if any(folder.glob(p))] for folder in candidates if folder.is_dir()}
    for folder, found in present.items():
        if len(found) == len(required):
            return folder
    for folder, found in present.items():
        if found:
            missing = [p for p in required if p not in found]
            raise ConfigError("data.root", f"{folder} holds {dataset} files but not {', '.join(missing)} (it needs "
                                           f"{', '.join(required)}); {how}")
    looked = ", ".join(str(c) for c in candidates)
    raise ConfigError("data.root", f"no {dataset} files ({', '.join(required)}) in {looked}; {how}")


def download(torchvision_cls, root: str, dataset: str, **splits) -> None:
    """Fetch the official archives with torchvision's downloader (it checks their checksums).
    ``splits`` maps a keyword (``train``/``split``) to the values to fetch."""
    (key, values), = splits.items()
    try:
        for value in values:
            torchvision_cls(root, **{key: value}, download=True)
    except Exception as exc:  # network errors come in many types
        raise ConfigError("data.download", f"downloading {dataset} into {root} failed: "
                                           f"{str(exc).splitlines()[0][:300]}") from None


def verify_checksums(folder: Path, resources, dataset: str) -> None:
    """torchvision's MD5 check of the official files (``resources``: ``(file name, md5)`` pairs;
    files that are absent, e.g. an optional split, are skipped)."""
    from torchvision.datasets.utils import check_integrity

    for name, md5 in resources:
        path = folder / name
        if path.exists() and not check_integrity(str(path), md5):
            raise ConfigError("data.verify_checksums", f"{path} does not match the official {dataset} file "
                                                       f"(MD5 {md5}); re-download it or drop verify_checksums")


def check_images(x: np.ndarray, shape: tuple, path, what: str = "images") -> None:
    """Structure check: ``x`` is ``uint8`` ``[N, *shape]`` with N >= 1."""
    if x.dtype != np.uint8 or x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape) or len(x) == 0:
        raise ConfigError("data.root", f"{path}: expected uint8 {what} of shape [N, {', '.join(map(str, shape))}], "
                                       f"got {x.dtype} {list(x.shape)} (corrupt or not this dataset's file?)")


def check_labels(y: np.ndarray, n: int, num_classes: int, path) -> np.ndarray:
    """Structure check: ``n`` integer labels in ``[0, num_classes)``; returns them as int64."""
    y = np.asarray(y).reshape(-1)
    if len(y) != n:
        raise ConfigError("data.root", f"{path}: {len(y)} labels for {n} images")
    if not np.issubdtype(y.dtype, np.integer) or (n and (y.min() < 0 or y.max() >= num_classes)):
        lo, hi = (y.min(), y.max()) if n else (0, 0)
        raise ConfigError("data.root", f"{path}: labels must be integers in [0, {num_classes}), found {lo}..{hi}")
    return y.astype(np.int64)


def image_examples(name: str, classes: list, train_x, train_y, test_x: Optional[np.ndarray] = None,
                   test_y: Optional[np.ndarray] = None) -> Examples:
    """Examples with ``uint8`` :class:`ImageColumn` ``x`` (``[N, C, H, W]`` arrays or tensors, or lists
    of them) and the official test split (when given) as the fixed test set. Labels of -1 mark
    unlabeled rows."""
    def column(x):
        return ImageColumn([torch.as_tensor(p) for p in x] if isinstance(x, list) else torch.as_tensor(x))

    train = {"x": column(train_x), "y": torch.as_tensor(np.asarray(train_y, dtype=np.int64))}
    test = None
    if test_x is not None:
        test = {"x": column(test_x), "y": torch.as_tensor(np.asarray(test_y, dtype=np.int64))}
    info = DataInfo("image", tuple(train["x"].shape[1:]), len(classes), list(classes), name=name)
    return Examples(train, info, test_columns=test)
