"""The on-disk image datasets read back tiny files written in each official format; missing and
corrupt files give one line naming where / which file; labels_per_class and STL-10's unlabeled split."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import RECIPES, sslkit_main
from sslkit import config
from sslkit.data import sample_files
from sslkit.data.images import ImageColumn
from sslkit.errors import ConfigError
from sslkit.runner import build_data


def load(name, root, **keys):
    return build_data(config.resolve({"data": {"name": name, "root": str(root), **keys}}))


@pytest.mark.parametrize("name,shape,classes", [("cifar10", (3, 32, 32), 10), ("cifar100", (3, 32, 32), 100),
                                                ("svhn", (3, 32, 32), 10), ("stl10", (3, 96, 96), 10),
                                                ("mnist", (1, 28, 28), 10), ("fashion_mnist", (1, 28, 28), 10)])
def test_reads_official_format(tmp_path, name, shape, classes):
    sample_files.WRITERS[name](tmp_path, per_class=3, test_per_class=2, seed=5)
    data = load(name, tmp_path)
    assert data.info.input_shape == shape and data.info.num_classes == classes and data.info.modality == "image"
    x = data.train["x"]
    assert isinstance(x, ImageColumn) and x[torch.arange(2)].dtype == torch.float32
    assert len(data.test) == 2 * classes  # the official test split, not a random one
    # the test images come back byte for byte, in file order, with their labels (SVHN's 10 is digit 0)
    expected_x, expected_y = sample_files.class_images(classes, 2, shape, 6)
    assert torch.equal(data.test["x"].raw(torch.arange(len(data.test))), torch.as_tensor(expected_x))
    assert data.test["y"].tolist() == expected_y.tolist()
    labeled = data.train["y"] >= 0
    assert int(labeled.sum()) == 3 * classes
    assert sorted(torch.bincount(data.train["y"][labeled]).tolist()) == [3] * classes
    if name == "stl10":  # the unlabeled split joins the training rows with label -1
        assert len(data.train) == 30 + 20 and int((data.train["y"] == -1).sum()) == 20


def test_mnist_plain_idx_and_torchvision_layout_agree_with_torchvision(tmp_path):
    from torchvision.datasets.mnist import read_image_file, read_label_file

    folder = sample_files.write_mnist(tmp_path / "MNIST" / "raw", per_class=2, gz=False)
    data = load("mnist", tmp_path, rgb=True)  # found under root/MNIST/raw, torchvision's layout
    assert data.info.input_shape == (3, 28, 28)
    tv = read_image_file(str(folder / "t10k-images-idx3-ubyte"))
    assert torch.equal(data.test["x"].raw(torch.arange(len(tv)))[:, 0], tv)
    assert torch.equal(data.test["y"], read_label_file(str(folder / "t10k-labels-idx1-ubyte")).long())


def test_labels_per_class_is_reproducible_and_bounded(tmp_path):
    sample_files.write_cifar(tmp_path, per_class=6)
    a, b = load("cifar10", tmp_path, labels_per_class=2), load("cifar10", tmp_path, labels_per_class=2)
    assert int((a.train["y"] >= 0).sum()) == 20 and torch.equal(a.train["y"], b.train["y"])
    other = build_data(config.resolve({"seed": 1, "data": {"name": "cifar10", "root": str(tmp_path),
                                                           "labels_per_class": 2}}))
    assert not torch.equal(a.train["y"], other.train["y"])
    with pytest.raises(ConfigError, match="data.labels_per_class: 7 labels per class requested but class 0 has only 6"):
        load("cifar10", tmp_path, labels_per_class=7)


def test_missing_root_says_where_and_how(tmp_path):
    with pytest.raises(ConfigError, match=r"data.root: no cifar10 files .* in .*nope, .*nope/cifar-10-batches-py; "
                                          r"use data.download: true, or unpack https://"):
        load("cifar10", tmp_path / "nope")
    proc = sslkit_main("run", RECIPES / "semi_digits.yaml", "--set", "data={name: stl10, root: " + str(tmp_path) + "}",
                      "--out", tmp_path / "run")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "no STL-10 files" in proc.stderr and "stl10_binary" in proc.stderr


@pytest.mark.parametrize("name,corrupt", [
    ("cifar10", lambda root: (root / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"\x80\x04garbage")),
    ("svhn", lambda root: (root / "test_32x32.mat").write_bytes(b"MATLAB 5.0 but not really")),
    ("stl10", lambda root: (root / "stl10_binary" / "test_X.bin").write_bytes(b"\0" * 1000)),
    ("mnist", lambda root: (root / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip")),
])
def test_corrupt_file_is_named(tmp_path, name, corrupt):
    sample_files.WRITERS[name](tmp_path, per_class=2)
    corrupt(tmp_path)
    with pytest.raises(ConfigError, match=r"data.root: .*(data_batch_2|test_32x32.mat|test_X.bin|"
                                          r"train-labels-idx1-ubyte.gz)"):
        load(name, tmp_path)


def test_structure_checks_labels_and_shapes(tmp_path):
    import pickle

    folder = sample_files.write_cifar(tmp_path, per_class=2)
    batch = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 10]}
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch))
    with pytest.raises(ConfigError, match=r"data_batch_1: labels must be integers in \[0, 10\), found 0..10"):
        load("cifar10", tmp_path)
    batch = {b"data": np.zeros((4, 1024), np.uint8), b"labels": [0, 1, 2, 3]}
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch))
    with pytest.raises(ConfigError, match=r"data_batch_1: expected uint8 rows of shape \[N, 3072\]"):
        load("cifar10", tmp_path)


def test_verify_checksums_rejects_repacked_copies(tmp_path):
    sample_files.write_svhn(tmp_path, per_class=2)
    assert len(load("svhn", tmp_path).train) == 20  # structure is enough without the flag
    with pytest.raises(ConfigError, match="data.verify_checksums: .*train_32x32.mat does not match the official"):
        load("svhn", tmp_path, verify_checksums=True)


def test_image_folder_of_unlabeled_images(tmp_path):
    from PIL import Image

    x, _ = sample_files.class_images(2, 3, (3, 16, 16), 0)
    for i, img in enumerate(x):
        Image.fromarray(img.transpose(1, 2, 0)).save(tmp_path / f"img{i}.png")
    data = build_data(config.resolve({"data": {"name": "image_folder", "root": str(tmp_path), "image_size": 16}}))
    assert data.info.num_classes == 0 and len(data.train) + len(data.test) == 6
    assert (data.train["y"] == -1).all() and data.train["x"][torch.arange(2)].shape == (2, 3, 16, 16)


def test_a_cifar_folder_missing_one_batch_is_refused_naming_it(tmp_path):
    """A CIFAR-10 folder without data_batch_3 (training on 4/5 of the rows without a word), or without
    test_batch: exit 2 naming the missing file."""
    for missing in ("data_batch_3", "test_batch"):
        root = tmp_path / missing
        folder = sample_files.write_cifar(root)
        (folder / missing).unlink()
        proc = sslkit_main("validate", RECIPES / "fixmatch_cifar10.yaml", "--set", f"data.root={root}")
        assert proc.returncode == 2, proc.stderr
        assert f"not {missing} (it needs data_batch_1" in proc.stderr and "Traceback" not in proc.stderr


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    """A test_batch whose pickle calls a function on load (``__reduce__``): exit 2 naming the file and the
    refused callable, before anything is called."""
    import os
    import pickle

    root = tmp_path / "cifar"
    folder = sample_files.write_cifar(root)
    marker = tmp_path / "payload_ran"

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Payload(), b"labels": [0]}))
    proc = sslkit_main("validate", RECIPES / "fixmatch_cifar10.yaml", "--set", f"data.root={root}")
    assert proc.returncode == 2, proc.stderr
    assert "test_batch" in proc.stderr and "refused to load 'posix.mkdir'" in proc.stderr
    assert not marker.exists()
