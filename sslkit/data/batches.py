"""A :class:`~sslkit.data.TensorData` in batches, in order, for evaluation: optionally only this rank's share
of the batches under ``torchrun``, and optionally with a generator per batch seeded from its first row, so a
stochastic score (a masked-token accuracy, a VAE's bound) draws the same noise for a row at any number of
processes and at every evaluation."""
from __future__ import annotations

import torch

from ..distributed import shard_range
from .base import TensorData
from .loader import mix


def batch_starts(n: int, batch_size: int, shard: bool = False) -> range:
    """The first row of each batch of ``batch_size`` over ``n`` rows; ``shard``: this rank's contiguous share
    of the batches under ``torchrun`` (every batch on exactly one rank), all of them in one process."""
    starts = range(0, n, batch_size)
    if shard:
        first, stop = shard_range(len(starts))
        starts = starts[first:stop]
    return starts


def batched(data: TensorData, batch_size: int, device, columns=("x", "y"), shard: bool = False):
    """Yield ``data`` in order, ``batch_size`` rows at a time, selected columns moved to ``device``;
    ``shard``: only this rank's batches (:func:`batch_starts`), whose sums the caller adds up over the ranks
    (:func:`sslkit.distributed.sum_over_ranks`). Evaluations shard; reporters, which run on rank 0, do not."""
    for start in batch_starts(len(data), batch_size, shard):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        rows = data.fetch(idx)
        yield {k: rows[k].to(device, non_blocking=True) for k in columns if k in rows}


def seeded_batches(data: TensorData, batch_size: int, device, seed: int):
    """``(x, generator)`` for this rank's share of the batches of ``data`` (:func:`batch_starts` with
    ``shard=True``), each generator seeded from ``seed`` and the batch's first row: the same draws at every
    evaluation, whatever the number of processes."""
    g = torch.Generator(device=device)
    for start in batch_starts(len(data), batch_size, shard=True):
        rows = data.fetch(torch.arange(start, min(start + batch_size, len(data))))
        yield rows["x"].to(device, non_blocking=True), g.manual_seed(mix(seed, start))
