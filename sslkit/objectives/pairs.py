"""Segment-pair classification: next-sentence prediction (BERT) and sentence-order prediction
(ALBERT). Rows come from ``pydoc_blocks`` with ``layout: pairs``: consecutive segments ``A``, ``B``
of one document. Each batch, half of the pairs (drawn afresh) are corrupted:

* ``nsp``: ``B`` is replaced by a random ``B`` segment of another document of the same split (two
  draws; if both come from the row's own document the pair is left intact and stays positive);
* ``sop``: ``A`` and ``B`` are swapped.

The encoder reads ``<cls> A <sep> B <sep>`` and a linear head on its pooled features predicts
1 (in order / next) or 0; the loss is the mean binary cross-entropy over the 2-way softmax.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.corpus import join_pair
from ..data.stream import StreamSpec
from ..distributed import on_global_rows
from ..errors import ConfigError
from ..registry import register
from ..schema import OpenProbability
from .base import ObjectiveContext, Objective, Output, batched

EVAL_SEED = 4321


def random_segments(doc, pool_b, pool_doc, generator=None) -> tuple:
    """For each row, a random ``B`` segment of the pool from another document when one of two draws
    finds one; returns ``(segments, found)``."""
    n = len(pool_doc)
    draws = torch.randint(0, n, (2, len(doc)), device=doc.device, generator=generator)
    first_ok = pool_doc[draws[0]] != doc
    pick = torch.where(first_ok, draws[0], draws[1])
    return pool_b[pick], pool_doc[pick] != doc


def make_pairs(a, b, doc, task: str, tokenizer, max_length: int, prob: float = 0.5, generator=None,
               pool_b=None, pool_doc=None) -> tuple:
    """Corrupt about ``prob`` of the pairs for ``task`` (``nsp`` or ``sop``); returns ``(x, label)`` with
    label 1 for an intact pair. ``nsp`` draws its random segments from ``pool_b`` (default: the batch)."""
    flip = torch.rand(len(a), device=a.device, generator=generator) < prob
    if task == "nsp":
        pool_b, pool_doc = (b, doc) if pool_b is None else (pool_b, pool_doc)
        other, found = random_segments(doc, pool_b, pool_doc, generator)
        flip = flip & found  # a segment of the same document would still be related
        b = torch.where(flip.unsqueeze(1), other, b)
    else:
        a, b = torch.where(flip.unsqueeze(1), b, a), torch.where(flip.unsqueeze(1), a, b)
    return join_pair(a, b, tokenizer, max_length), (~flip).long()


class PairObjective(Objective):
    """Shared by ``nsp`` and ``sop``: cross-entropy of a 2-way head on ``encoder(<cls> A <sep> B <sep>)``;
    reports ``pair_accuracy`` and ``test_pair_accuracy``."""

    task = ""

    def __init__(self, ctx: ObjectiveContext, *, prob: OpenProbability = 0.5):
        super().__init__()
        train = ctx.data.train if ctx.data is not None else None
        if train is not None and not all(k in train for k in ("a", "b", "doc")):
            raise ConfigError(f"{ctx.path}.name", f"'{self.task}' needs consecutive segment pairs: use "
                                                  f"data.name: pydoc_blocks with data.layout: pairs")
        self.tokenizer, self.prob = ctx.info.tokenizer, prob
        self.max_length = ctx.info.input_shape[0]
        self.head = nn.Linear(ctx.encoder.out_dim, 2)
        if self.task == "nsp" and train is not None:  # random segments come from the whole training split
            self.register_buffer("pool_b", train["b"], persistent=False)
            self.register_buffer("pool_doc", train["doc"], persistent=False)

    def streams(self):
        return {"all": StreamSpec("all")}

    def _logits(self, rows, encoder, generator=None, pool=None):
        """Training (no ``generator``) pairs the global batch's rows, so a row's pair does not depend on the
        number of processes; evaluation draws from ``generator``."""
        pool_b, pool_doc = pool if pool is not None else (getattr(self, "pool_b", None), getattr(self, "pool_doc", None))

        def pairs(a, b, doc):
            return make_pairs(a, b, doc, self.task, self.tokenizer, self.max_length, self.prob, generator, pool_b,
                              pool_doc)

        segments = rows["a"], rows["b"], rows["doc"]
        x, label = pairs(*segments) if generator is not None else on_global_rows(pairs, *segments)
        return self.head(encoder(x)), label

    def forward(self, batch, encoder, player="model"):
        logits, label = self._logits(batch["all"], encoder)
        loss = F.cross_entropy(logits, label)
        return Output(loss, {"pair_accuracy": (logits.argmax(1) == label).float().mean()})

    @torch.no_grad()
    def evaluate(self, data, encoder, batch_size, device):
        g = torch.Generator(device=device).manual_seed(EVAL_SEED)
        correct = n = 0
        pool = (data.test["b"].to(device), data.test["doc"].to(device))  # random segments of held-out documents
        for rows in batched(data.test, batch_size, device, columns=("a", "b", "doc")):
            logits, label = self._logits(rows, encoder, g, pool)
            correct += int((logits.argmax(1) == label).sum())
            n += len(label)
        return {"test_pair_accuracy": correct / n} if n else {}


@register("objectives", "nsp")
class NextSentencePrediction(PairObjective):
    """BERT's next-sentence prediction: is ``B`` the segment that follows ``A`` (1) or a random segment
    of another document (0)? Loss: cross-entropy of a linear head on the pooled features.

    prob: share of pairs whose ``B`` is replaced (0.5).
    """

    task = "nsp"


@register("objectives", "sop")
class SentenceOrderPrediction(PairObjective):
    """ALBERT's sentence-order prediction: are the consecutive segments in order (1) or swapped (0)?
    Loss: cross-entropy of a linear head on the pooled features.

    prob: share of pairs that are swapped (0.5).
    """

    task = "sop"
