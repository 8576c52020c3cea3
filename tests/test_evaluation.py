"""Frozen-feature evaluation: feature extraction, few-label subsets, k-NN, linear probe, t-SNE figure."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sslkit.data import TensorData
from sslkit.evaluation import embedding_figure, extract_features, few_label_subset, knn_accuracy, probe_metrics


def blobs(n_per_class=30, classes=3, dim=5, spread=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(classes, dim) * 5
    y = torch.arange(classes).repeat_interleave(n_per_class)
    return centres[y] + spread * torch.randn(len(y), dim, generator=g), y


def test_extract_features_keeps_order_across_uneven_batches():
    x = torch.arange(10 * 4, dtype=torch.float32).view(10, 1, 2, 2)
    feats = extract_features(lambda b: b * 2, TensorData({"x": x, "y": torch.zeros(10)}), 3, "cpu")
    assert feats.shape == (10, 4)
    assert torch.equal(feats, (x * 2).flatten(1))


def test_few_label_subset_takes_n_per_class_ignores_hidden_and_follows_seed():
    y = np.array([0] * 10 + [1] * 10 + [-1] * 5 + [2] * 3)
    rows = few_label_subset(y, 4, seed=0)
    counts = np.bincount(y[rows])
    assert counts.tolist() == [4, 4, 3]  # class 2 has only 3 rows
    assert (y[rows] >= 0).all()
    assert np.array_equal(rows, few_label_subset(y, 4, seed=0))
    assert not np.array_equal(rows, few_label_subset(y, 4, seed=1))


def test_knn_uses_cosine_similarity_and_majority_vote():
    train = torch.tensor([[1.0, 0.0], [10.0, 0.5], [0.0, 1.0], [0.2, 5.0]])
    train_y = torch.tensor([0, 0, 1, 1])
    # (3, 0.1) is far from (1, 0) in Euclidean terms but almost parallel: cosine picks class 0
    test = torch.tensor([[3.0, 0.1], [0.1, 3.0]])
    assert knn_accuracy(train, train_y, test, torch.tensor([0, 1]), k=1) == 1.0
    # with k=3, two of three neighbours of (1, 0.05) are class 0 -> vote 0
    assert knn_accuracy(train, train_y, torch.tensor([[1.0, 0.05]]), torch.tensor([0]), k=3) == 1.0
    assert knn_accuracy(train, train_y, torch.tensor([[1.0, 0.05]]), torch.tensor([1]), k=3) == 0.0


def test_probe_metrics_on_separable_and_on_random_features():
    x, y = blobs()
    xt, yt = blobs(seed=1)
    m = probe_metrics(x, y, xt, yt, labels_per_class=3, seed=0, k=5)
    assert set(m) == {"linear_probe_accuracy", "knn_accuracy", "linear_probe_accuracy_3pc", "knn_accuracy_3pc"}
    assert all(v == 1.0 for v in m.values())
    g = torch.Generator().manual_seed(0)
    noise, noise_t = torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g)
    ry, ryt = torch.randint(0, 3, (300,), generator=g), torch.randint(0, 3, (300,), generator=g)
    m = probe_metrics(noise, ry, noise_t, ryt)
    assert all(v < 0.5 for v in m.values())  # chance is 1/3


def test_probe_metrics_ignores_hidden_labels():
    x, y = blobs()
    y_hidden = y.clone()
    y_hidden[::2] = -1
    wrong = x.clone()
    wrong[::2] = -wrong[::2]  # rows with a hidden label carry misleading features: they must be ignored
    xt, yt = blobs(seed=1)
    assert probe_metrics(wrong, y_hidden, xt, yt, k=5)["knn_accuracy"] == 1.0


def test_probe_metrics_rejects_unlabeled_input():
    x, _ = blobs()
    with pytest.raises(ValueError):
        probe_metrics(x, torch.full((len(x),), -1), x, torch.zeros(len(x)))


@pytest.mark.slow
def test_embedding_figure_writes_png(tmp_path):
    x, y = blobs(n_per_class=15)
    path = embedding_figure(x, y, tmp_path / "sub" / "emb.png", seed=0, class_names=["a", "b", "c"])
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
