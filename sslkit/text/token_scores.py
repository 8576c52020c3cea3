"""Held-out scores of token predictions, shared by the language-model objectives' ``evaluate``: the
accuracy and perplexity of the predicted tokens of the test split, with the corruption (masking,
noising, permutation) drawn from a fixed seed so every evaluation of a run scores the same positions."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ..data.batches import seeded_batches
from ..distributed import sum_over_ranks
from .lm_head import IGNORE


class TokenScores:
    """Running sums over predicted tokens: summed negative log-likelihood, correct argmax predictions and
    the count. :meth:`add` takes logits ``[..., V]`` and targets ``[...]`` (``IGNORE`` skipped)."""

    def __init__(self):
        self.nll, self.correct, self.n = 0.0, 0, 0

    def add(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        keep = target != IGNORE
        logits, target = logits[keep].float(), target[keep]
        self.nll += F.cross_entropy(logits, target, reduction="sum").item()
        self.correct += int((logits.argmax(-1) == target).sum())
        self.n += len(target)

    def metrics(self, name: str) -> dict:
        """``test_{name}_accuracy`` and ``test_{name}_perplexity`` (``exp`` of the mean NLL) over every rank's
        tokens; empty without tokens."""
        nll, correct, n = self.totals()
        if not n:
            return {}
        return {f"test_{name}_accuracy": correct / n, f"test_{name}_perplexity": math.exp(nll / n)}

    def totals(self) -> list:
        """``[nll, correct, n]`` summed over the ranks (this process's own in one process)."""
        return sum_over_ranks(self.nll, self.correct, self.n)


def predicted_token_metrics(predict: Callable, test, batch_size: int, device, seed: int, name: str) -> dict:
    """:class:`TokenScores` of ``predict(x, generator) -> (logits, targets)`` over the test split
    ``test`` (see :func:`sslkit.data.batches.seeded_batches`), named ``test_{name}_accuracy`` / ``test_{name}_perplexity``."""
    scores = TokenScores()
    for x, g in seeded_batches(test, batch_size, device, seed):
        scores.add(*predict(x, g))
    return scores.metrics(name)
