"""Small copies of the image datasets in their official on-disk formats, made of generated images,
so recipes, tutorials and tests run the real readers without downloading anything::

    python -m sslkit.data.sample_files cifar10 data/cifar10

Each class gets its own colour and stripe pattern plus noise, so a few training steps can learn
something; the files are a handful of KB.
"""
from __future__ import annotations

import gzip
import pickle
import sys
from pathlib import Path

import numpy as np


def class_images(num_classes: int, per_class: int, shape: tuple, seed: int) -> tuple:
    """``uint8`` images ``[num_classes * per_class, *shape]`` (C, H, W) and their labels, class by class."""
    rng = np.random.RandomState(seed)
    c, h, w = shape
    palette = rng.randint(40, 216, size=(num_classes, c))
    ys, xs = [], []
    for k in range(num_classes):
        stripes = ((np.arange(w)[None, :] + np.arange(h)[:, None] * (k % 3)) // (2 + k % 5)) % 2
        base = palette[k][:, None, None] + 30 * stripes[None]
        noise = rng.randint(-25, 26, size=(per_class, c, h, w))
        xs.append(np.clip(base[None] + noise, 0, 255).astype(np.uint8))
        ys.append(np.full(per_class, k, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def _pickle(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_cifar(root, num_classes: int = 10, per_class: int = 6, test_per_class: int = 2, seed: int = 0) -> Path:
    """CIFAR-10 (``cifar-10-batches-py``: ``data_batch_1`` to ``_5``, ``test_batch``, ``batches.meta``) or,
    with 100 classes, CIFAR-100 (``cifar-100-python``: ``train``, ``test``, ``meta``)."""
    ten = num_classes == 10
    folder = Path(root) / ("cifar-10-batches-py" if ten else "cifar-100-python")
    folder.mkdir(parents=True, exist_ok=True)
    key = b"labels" if ten else b"fine_labels"
    x, y = class_images(num_classes, per_class, (3, 32, 32), seed)
    tx, ty = class_images(num_classes, test_per_class, (3, 32, 32), seed + 1)
    order = np.random.RandomState(seed).permutation(len(x))
    x, y = x[order], y[order]
    if ten:
        for i, rows in enumerate(np.array_split(np.arange(len(x)), 5), 1):  # the official five training batches
            _pickle(folder / f"data_batch_{i}", {b"data": x[rows].reshape(-1, 3072), key: y[rows].tolist()})
        _pickle(folder / "test_batch", {b"data": tx.reshape(-1, 3072), key: ty.tolist()})
        _pickle(folder / "batches.meta", {b"label_names": [f"class{k}".encode() for k in range(10)]})
    else:
        _pickle(folder / "train", {b"data": x.reshape(-1, 3072), key: y.tolist(), b"coarse_labels": (y // 5).tolist()})
        _pickle(folder / "test", {b"data": tx.reshape(-1, 3072), key: ty.tolist(), b"coarse_labels": (ty // 5).tolist()})
        _pickle(folder / "meta", {b"fine_label_names": [f"class{k}".encode() for k in range(100)]})
    return folder


def write_svhn(root, per_class: int = 6, test_per_class: int = 2, seed: int = 0) -> Path:
    """``train_32x32.mat`` and ``test_32x32.mat``: ``X`` ``[32, 32, 3, N]``, ``y`` ``[N, 1]`` with 10 for 0."""
    import scipy.io

    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, s in (("train", per_class, seed), ("test", test_per_class, seed + 1)):
        x, y = class_images(10, n, (3, 32, 32), s)
        y = np.where(y == 0, 10, y)
        scipy.io.savemat(folder / f"{name}_32x32.mat", {"X": np.transpose(x, (2, 3, 1, 0)), "y": y[:, None].astype(np.uint8)})
    return folder


def write_stl10(root, per_class: int = 3, test_per_class: int = 2, unlabeled: int = 20, seed: int = 0) -> Path:
    """``stl10_binary/{train,test}_{X,y}.bin`` and ``unlabeled_X.bin``: images as column-major planes,
    labels as bytes 1..10."""
    folder = Path(root) / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)

    def images(x):  # the file stores each plane column-major
        return np.ascontiguousarray(np.transpose(x, (0, 1, 3, 2))).tobytes()

    for name, n, s in (("train", per_class, seed), ("test", test_per_class, seed + 1)):
        x, y = class_images(10, n, (3, 96, 96), s)
        (folder / f"{name}_X.bin").write_bytes(images(x))
        (folder / f"{name}_y.bin").write_bytes((y + 1).astype(np.uint8).tobytes())
    if unlabeled:
        x, _ = class_images(10, -(-unlabeled // 10), (3, 96, 96), seed + 2)
        (folder / "unlabeled_X.bin").write_bytes(images(x[:unlabeled]))
    (folder / "class_names.txt").write_text("\n".join(f"class{k}" for k in range(10)) + "\n")
    return folder


def _idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = np.array([0x0800 + array.ndim, *array.shape], dtype=">u4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(f"{path}.gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_mnist(root, per_class: int = 6, test_per_class: int = 2, seed: int = 0, gz: bool = True) -> Path:
    """The four IDX files of MNIST / Fashion-MNIST (same format), gzipped unless ``gz`` is False."""
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, s in (("train", per_class, seed), ("t10k", test_per_class, seed + 1)):
        x, y = class_images(10, n, (1, 28, 28), s)
        _idx(folder / f"{name}-images-idx3-ubyte", x[:, 0], gz)
        _idx(folder / f"{name}-labels-idx1-ubyte", y, gz)
    return folder


WRITERS = {"cifar10": write_cifar, "cifar100": lambda root, **kw: write_cifar(root, 100, **kw), "svhn": write_svhn,
           "stl10": write_stl10, "mnist": write_mnist, "fashion_mnist": write_mnist}


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in WRITERS:
        raise SystemExit(f"usage: python -m sslkit.data.sample_files {{{','.join(WRITERS)}}} FOLDER")
    print(WRITERS[argv[0]](argv[1]))


if __name__ == "__main__":
    main()
