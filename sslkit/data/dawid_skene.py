"""Dawid & Skene (1979): EM estimate of each annotator's confusion matrix and of every row's
posterior over the true class, from the label matrix alone."""
from __future__ import annotations

from typing import NamedTuple

import torch


class DawidSkeneFit(NamedTuple):
    """posterior: ``[N, C]`` p(true class | the row's labels). confusion: ``[K, C, C]``,
    ``confusion[k, c, j]`` = p(annotator k says j | true class c). prior: ``[C]`` class frequencies.
    iterations: EM iterations run."""

    posterior: torch.Tensor
    confusion: torch.Tensor
    prior: torch.Tensor
    iterations: int


def one_hot_annotations(annotations: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[N, K, C]`` float one-hot of ``[N, K]`` labels; all-zero where a label is missing (-1)."""
    valid = (annotations >= 0).unsqueeze(-1)
    return torch.nn.functional.one_hot(annotations.clamp(min=0), num_classes).float() * valid


def posterior(annotations: torch.Tensor, confusion: torch.Tensor, prior: torch.Tensor,
              log_model: torch.Tensor | None = None) -> torch.Tensor:
    """``[N, C]`` p(class | labels) ∝ prior_c * prod_k confusion[k, c, y_k] (missing labels skipped);
    ``log_model`` ``[N, C]``, when given, replaces the log prior (a classifier's belief about each row)."""
    onehot = one_hot_annotations(annotations, prior.shape[0]).to(confusion.dtype)
    log_like = torch.einsum("nkj,kcj->nc", onehot, confusion.clamp_min(1e-12).log())
    base = prior.clamp_min(1e-12).log() if log_model is None else log_model
    return torch.softmax(log_like + base, dim=1)


def estimate_confusion(annotations: torch.Tensor, q: torch.Tensor, smoothing: float = 0.01) -> torch.Tensor:
    """``[K, C, C]`` M-step: confusion[k, c, j] ∝ smoothing + sum_i q_ic [y_ik = j]."""
    onehot = one_hot_annotations(annotations, q.shape[1]).to(q.dtype)
    counts = torch.einsum("nc,nkj->kcj", q, onehot) + smoothing
    return counts / counts.sum(-1, keepdim=True)


def dawid_skene(annotations: torch.Tensor, num_classes: int, iterations: int = 100, tol: float = 1e-6,
                smoothing: float = 0.01) -> DawidSkeneFit:
    """Fit Dawid–Skene by EM, starting from the soft vote, until the posterior moves less than ``tol``.

    annotations: ``[N, K]`` labels in ``[0, C)``, ``-1`` = missing. smoothing: Dirichlet pseudo-count
    added to every confusion cell (keeps unseen (class, label) pairs possible).
    Rows without any label get the class prior as posterior.
    """
    annotations = torch.as_tensor(annotations, dtype=torch.long)
    onehot = one_hot_annotations(annotations, num_classes).double()
    votes = onehot.sum(1)
    q = torch.where(votes.sum(1, keepdim=True) > 0, votes, torch.ones_like(votes))
    q = q / q.sum(1, keepdim=True)
    done = 0
    for done in range(1, iterations + 1):
        prior = (q.sum(0) + smoothing) / (q.sum() + smoothing * num_classes)
        confusion = estimate_confusion(annotations, q, smoothing)
        new = posterior(annotations, confusion, prior)
        shift = (new - q).abs().max().item()
        q = new
        if shift < tol:
            break
    return DawidSkeneFit(q.float(), confusion.float(), prior.float(), done)
