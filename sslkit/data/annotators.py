"""Simulated crowd annotators for weak supervision, and the majority vote of their labels.

``simulate_annotations(y, C, K, ...)`` gives every row K labels, each drawn independently:
correct with probability ``accuracy``, otherwise wrong, and missing (``-1``) with probability
``missing_rate``. The recipe keys ``data.annotators``, ``data.annotator_accuracy``,
``data.annotator_noise`` and ``data.annotator_missing_rate`` turn it on for the training split.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from .base import UNLABELED

NOISES = ("uniform", "class_confusing")


def confusion_partners(num_classes: int, annotators: int, rng: np.random.RandomState) -> np.ndarray:
    """``[K, C]``: the class each annotator mistakes each class for — a random derangement per
    annotator, so every annotator errs systematically but differently from the others."""
    partners = np.empty((annotators, num_classes), dtype=np.int64)
    for k in range(annotators):  # K is small (annotators, not samples)
        shift = rng.randint(1, num_classes)  # a cyclic shift of a random order has no fixed point
        order = rng.permutation(num_classes)
        partners[k, order] = np.roll(order, -shift)
    return partners


def simulate_annotations(y, num_classes: int, annotators: int, accuracy: float = 0.7, noise: str = "uniform",
                         missing_rate: float = 0.0, seed: int = 0, path: str = "data") -> torch.Tensor:
    """``[N, K]`` int64 labels of K simulated annotators for true labels ``y`` (``-1`` = missing).

    Each label is the true class with probability ``accuracy``; otherwise a wrong class, drawn
    uniformly from the C - 1 others (``noise="uniform"``) or the annotator's fixed confusion
    partner of the true class (``noise="class_confusing"``, see :func:`confusion_partners`).
    Independently, each label is missing with probability ``missing_rate``. Rows whose true
    label is ``-1`` get no annotations. Deterministic given ``seed``.
    """
    if annotators < 1:
        raise ConfigError(f"{path}.annotators", f"must be at least 1, got {annotators} (omit it for clean labels)")
    if not 0.0 <= accuracy <= 1.0:
        raise ConfigError(f"{path}.annotator_accuracy", f"must be in [0, 1], got {accuracy}")
    if not 0.0 <= missing_rate < 1.0:
        raise ConfigError(f"{path}.annotator_missing_rate", f"must be in [0, 1), got {missing_rate}")
    if noise not in NOISES:
        raise ConfigError(f"{path}.annotator_noise", f"must be one of {', '.join(NOISES)}, got {noise!r}")
    if num_classes < 2:
        raise ConfigError(f"{path}.annotators", "simulated annotators need a dataset with at least 2 classes")
    y = np.asarray(y, dtype=np.int64)
    rng = np.random.RandomState(seed)
    n, k = len(y), annotators
    truth = np.broadcast_to(y[:, None], (n, k))
    if noise == "uniform":
        # adding 1..C-1 modulo C reaches each wrong class with equal probability
        wrong = (truth + rng.randint(1, num_classes, size=(n, k))) % num_classes
    else:
        partners = confusion_partners(num_classes, k, rng)
        wrong = partners[np.arange(k)[None, :], np.clip(truth, 0, None)]
    correct = rng.random_sample((n, k)) < accuracy
    labels = np.where(correct, truth, wrong)
    labels[rng.random_sample((n, k)) < missing_rate] = UNLABELED
    labels[y < 0] = UNLABELED
    return torch.from_numpy(np.ascontiguousarray(labels))


def vote_counts(annotations: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[N, C]`` float: how many annotators gave each class to each row (missing labels ignored)."""
    ann = torch.as_tensor(annotations)
    valid = ann >= 0
    counts = torch.zeros(ann.shape[0], num_classes, dtype=torch.float32, device=ann.device)
    counts.scatter_add_(1, ann.clamp(min=0), valid.float())
    return counts


def majority_vote(annotations: torch.Tensor, num_classes: int, seed: int = 0) -> torch.Tensor:
    """``[N]`` the most frequent label of each row, ties broken uniformly at random (seeded);
    ``-1`` for rows without any annotation."""
    counts = vote_counts(annotations, num_classes)
    # a jitter below 1 only reorders tied classes
    g = torch.Generator().manual_seed(seed)
    jitter = torch.rand(counts.shape, generator=g).to(counts.device) * 0.5
    vote = (counts + jitter).argmax(1)
    return torch.where(counts.sum(1) > 0, vote, torch.full_like(vote, UNLABELED))
