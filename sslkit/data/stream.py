"""Endless, resumable, DDP-aware batch streams over a :class:`TensorData`.

Each stream walks seeded permutations of its rows (one per pass), wrapping across
pass boundaries so every batch has exactly ``batch_size`` rows. Its position is two
integers, so a checkpoint resumes it exactly. Under DDP each rank takes every
``world``-th row of the same global batch, so the ranks together see what one
process would see.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Optional

import torch

from .base import TensorData


@dataclass(frozen=True)
class StreamSpec:
    """What an objective asks the trainer to feed it.

    source: ``labeled`` (rows with a label) or ``all`` (every training row; hidden labels are -1).
    batch_ratio: batch size as a multiple of ``trainer.batch_size`` (FixMatch's mu = 7 for unlabeled data).
    views: names of registered views to make of ``x`` (e.g. ``("weak", "strong")``); they arrive in
        ``batch["views"]`` in this order.
    """

    source: str = "labeled"
    batch_ratio: float = 1.0
    views: Optional[tuple] = None


class Stream:
    def __init__(self, data: TensorData, batch_size: int, seed: int, key: str, rank: int = 0, world: int = 1):
        if len(data) == 0:
            raise ValueError(f"stream '{key}' has no rows")
        self.data, self.batch_size, self.rank, self.world = data, batch_size, rank, world
        self.base_seed = (seed * 1_000_003 + zlib.crc32(key.encode())) % (2**63)
        self.epoch, self.pos = 0, 0
        self._perm = None

    def _permutation(self) -> torch.Tensor:
        if self._perm is None:
            g = torch.Generator().manual_seed(self.base_seed + self.epoch)
            self._perm = torch.randperm(len(self.data), generator=g)
        return self._perm

    def next_indices(self) -> torch.Tensor:
        """This rank's rows of the next global batch."""
        return self.next_global_indices()[self.rank::self.world]

    def next_global_indices(self) -> torch.Tensor:
        """The rows of the next global batch (every rank's), in order."""
        parts, need = [], self.batch_size
        while need:
            perm = self._permutation()
            take = perm[self.pos:self.pos + need]
            parts.append(take)
            need -= len(take)
            self.pos += len(take)
            if self.pos >= len(perm):
                self.epoch, self.pos, self._perm = self.epoch + 1, 0, None
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def __next__(self) -> dict:
        return self.data.fetch(self.next_indices())

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos, self._perm = int(state["epoch"]), int(state["pos"]), None
