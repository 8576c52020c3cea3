"""Frozen-feature evaluation: how good is a representation for a downstream classifier?

* :func:`extract_features` runs a feature function (e.g. an encoder) over a :class:`TensorData`.
* :func:`probe_metrics` fits a linear probe (scikit-learn ``LogisticRegression`` on standardized
  features) and a cosine k-NN classifier on the training features, with every training label and
  with only ``labels_per_class`` labels per class, and scores both on the test features.
* :func:`embedding_figure` draws a 2-D t-SNE map of features coloured by class (PNG).

Labels are used here only to *evaluate* frozen features, never to train them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..data import TensorData

# scikit-learn's OpenMP/BLAS pools slow these small fits down badly when training processes share
# the cores (t-SNE of 45 points: 9 s instead of 0.3 s on a busy 2-core machine); one thread is fast
# at the sizes evaluated here
SKLEARN_THREADS = 1


@torch.no_grad()
def extract_features(fn: Callable[[torch.Tensor], torch.Tensor], data: TensorData, batch_size: int,
                     device) -> torch.Tensor:
    """``fn(x)`` for every row of ``data`` (in order, ``batch_size`` rows at a time on ``device``),
    concatenated on the CPU as float32 ``[N, D]``. The caller puts the model in eval mode."""
    n = len(data)
    if n == 0:
        return torch.zeros(0, 0)
    x = data["x"]
    out = []
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        feats = fn(x[idx].to(device, non_blocking=True))
        out.append(feats.detach().float().flatten(1).cpu())  # bf16 under autocast -> float32 for scikit-learn
    return torch.cat(out)


def few_label_subset(y: np.ndarray, labels_per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of ``labels_per_class`` rows of each class present in ``y`` (rows with ``y < 0`` are
    never chosen), drawn with ``seed``; a class with fewer rows contributes all of them."""
    y = np.asarray(y)
    rng = np.random.RandomState(seed)
    chosen = []
    for c in np.unique(y[y >= 0]):
        rows = np.flatnonzero(y == c)
        chosen.append(rng.choice(rows, min(labels_per_class, len(rows)), replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def knn_accuracy(train_feats: torch.Tensor, train_y: torch.Tensor, test_feats: torch.Tensor,
                 test_y: torch.Tensor, k: int = 20, chunk: int = 4096) -> float:
    """Accuracy of a majority vote of the ``k`` most cosine-similar training rows (ties go to the
    smaller class index). Batched matrix products, ``chunk`` test rows at a time."""
    train = torch.nn.functional.normalize(train_feats.float(), dim=1)
    test = torch.nn.functional.normalize(test_feats.float(), dim=1)
    train_y, test_y = train_y.long(), test_y.long()
    k = max(1, min(k, len(train)))
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    correct = 0
    for start in range(0, len(test), chunk):
        sim = test[start:start + chunk] @ train.T
        nearest = sim.topk(k, dim=1).indices
        votes = torch.zeros(len(nearest), num_classes).scatter_add_(
            1, train_y[nearest], torch.ones(nearest.shape))
        correct += int((votes.argmax(1) == test_y[start:start + chunk]).sum())
    return correct / len(test)


def linear_probe_accuracy(train_feats: np.ndarray, train_y: np.ndarray, test_feats: np.ndarray,
                          test_y: np.ndarray, C: float = 1.0, max_iter: int = 2000) -> float:
    """Test accuracy of scikit-learn's multinomial ``LogisticRegression`` fitted on standardized
    training features (the scaler is fitted on the training rows only)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    if len(np.unique(train_y)) < 2:  # nothing to separate: predict the single class
        return float(np.mean(test_y == train_y[0]))
    with threadpool_limits(SKLEARN_THREADS):
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
        probe.fit(train_feats, train_y)
        return float(probe.score(test_feats, test_y))


def probe_metrics(train_feats, train_y, test_feats, test_y, *, labels_per_class: int = 5, seed: int = 0,
                  k: int = 20) -> dict:
    """Linear-probe and k-NN test accuracy of frozen features.

    train_feats, test_feats: ``[N, D]`` features (tensors or arrays).
    train_y, test_y: class labels; training rows with ``y < 0`` and test rows with ``y < 0`` are ignored.
    labels_per_class: size per class of the few-label subset (drawn with ``seed``) for the
        ``*_{labels_per_class}pc`` metrics.
    k: neighbours of the k-NN vote; on the few-label subset it is capped at ``labels_per_class``
        (more neighbours than a class has labeled rows would always mix in other classes).

    Returns ``linear_probe_accuracy``, ``knn_accuracy``, ``linear_probe_accuracy_{n}pc`` and
    ``knn_accuracy_{n}pc`` (``n = labels_per_class``).
    """
    tr_x, te_x = torch.as_tensor(np.asarray(train_feats), dtype=torch.float32), \
        torch.as_tensor(np.asarray(test_feats), dtype=torch.float32)
    tr_y, te_y = torch.as_tensor(np.asarray(train_y)).long(), torch.as_tensor(np.asarray(test_y)).long()
    keep_tr, keep_te = tr_y >= 0, te_y >= 0
    tr_x, tr_y, te_x, te_y = tr_x[keep_tr], tr_y[keep_tr], te_x[keep_te], te_y[keep_te]
    if len(tr_y) == 0 or len(te_y) == 0:
        raise ValueError("probe_metrics needs labeled training and test rows")
    few = torch.as_tensor(few_label_subset(tr_y.numpy(), labels_per_class, seed))
    n = labels_per_class
    return {
        "linear_probe_accuracy": linear_probe_accuracy(tr_x.numpy(), tr_y.numpy(), te_x.numpy(), te_y.numpy()),
        "knn_accuracy": knn_accuracy(tr_x, tr_y, te_x, te_y, k),
        f"linear_probe_accuracy_{n}pc": linear_probe_accuracy(tr_x[few].numpy(), tr_y[few].numpy(),
                                                              te_x.numpy(), te_y.numpy()),
        f"knn_accuracy_{n}pc": knn_accuracy(tr_x[few], tr_y[few], te_x, te_y, min(k, n)),
    }


def embedding_figure(feats, y, path, seed: int = 0, *, class_names: Optional[Sequence[str]] = None,
                     title: str = "t-SNE of encoder features", max_points: int = 2000) -> Path:
    """Save a 2-D t-SNE map (scikit-learn, on standardized features) of
    ``feats`` coloured by ``y`` as a PNG at ``path``; at most ``max_points`` rows (a seeded random
    subset) are embedded, to bound t-SNE's cost. Rows with ``y < 0`` are drawn in grey."""
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from ..plots import pyplot

    feats = np.asarray(torch.as_tensor(np.asarray(feats)).float())
    y = np.asarray(y).astype(int)
    rng = np.random.RandomState(seed)
    if len(feats) > max_points:
        rows = np.sort(rng.choice(len(feats), max_points, replace=False))
        feats, y = feats[rows], y[rows]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    perplexity = float(min(30.0, max(2.0, (len(feats) - 1) / 3)))
    with threadpool_limits(SKLEARN_THREADS):
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
            StandardScaler().fit_transform(feats))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    unl = y < 0
    if unl.any():
        ax.scatter(xy[unl, 0], xy[unl, 1], s=6, c="lightgrey", label="unlabeled")
    cmap = plt.get_cmap("tab10" if y.max(initial=0) < 10 else "tab20")
    for c in np.unique(y[~unl]):
        m = y == c
        name = class_names[c] if class_names is not None and c < len(class_names) else str(c)
        ax.scatter(xy[m, 0], xy[m, 1], s=8, color=cmap(c % cmap.N), label=name)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(markerscale=2, fontsize=7, loc="best", ncol=1 + (len(np.unique(y)) > 10))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
