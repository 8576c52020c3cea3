"""Decoded images kept in memory as ``uint8`` (a quarter of float32's size), read as float in [0, 1].

:class:`ImageColumn` is the ``x`` column of the on-disk image datasets (CIFAR, SVHN, STL-10, MNIST):
indexing it gives float batches, so everything that reads ``data["x"]`` (batched views, evaluation,
probes) works unchanged, while the worker input pipeline (:mod:`sslkit.data.loader`) reads the raw
bytes with :func:`uint8_rows` and augments them per sample.
"""
from __future__ import annotations

from typing import Optional

import torch

from .base import LazyColumn


class ImageColumn(LazyColumn):
    """Images ``[N, C, H, W]`` stored as ``uint8`` tensors (possibly memory-mapped from the dataset's
    files, so STL-10's 2.8 GB unlabeled split is paged in on demand, and possibly several parts read
    as one, so it is never copied to join the labeled split); rows read as float32 / 255.

    images: the ``uint8`` tensor, or a list of them with equal ``[C, H, W]`` (rows numbered across them
    in order). index: the rows this column holds (a subset's).
    """

    def __init__(self, images, index: Optional[torch.Tensor] = None):
        self.parts = list(images) if isinstance(images, (list, tuple)) else [images]
        shapes = {(p.dtype, p.dim(), tuple(p.shape[1:])) for p in self.parts}
        if len(shapes) != 1 or next(iter(shapes))[:2] != (torch.uint8, 4):
            raise ValueError(f"expected uint8 images [N, C, H, W] of one size, got {sorted(shapes)}")
        self.offsets = torch.tensor([0] + [len(p) for p in self.parts]).cumsum(0)
        self.index = torch.arange(int(self.offsets[-1])) if index is None else index

    @property
    def shape(self) -> tuple:
        """``(rows, C, H, W)`` of this column."""
        return (len(self.index),) + tuple(self.parts[0].shape[1:])

    def load_row(self, i: int) -> torch.Tensor:
        return self._gather(torch.tensor([i]))[0].float().div_(255)

    def __getitem__(self, idx):
        return self.raw(idx).float().div_(255)

    def raw(self, idx) -> torch.Tensor:
        """The ``uint8`` rows at ``idx`` (positions in this column)."""
        rows = self.index[idx]
        if rows.dim() == 0:
            return self._gather(rows.view(1))[0]
        return self._gather(rows)

    def _gather(self, rows: torch.Tensor) -> torch.Tensor:
        if len(self.parts) == 1:
            return self.parts[0][rows].contiguous()
        part = torch.bucketize(rows, self.offsets[1:], right=True)
        out = torch.empty((len(rows),) + tuple(self.parts[0].shape[1:]), dtype=torch.uint8)
        for p in part.unique().tolist():
            hit = part == p
            out[hit] = self.parts[p][rows[hit] - self.offsets[p]]
        return out

    def subset(self, idx) -> "ImageColumn":
        return ImageColumn(self.parts, self.index[idx])


def uint8_rows(column, idx) -> torch.Tensor:
    """Rows ``idx`` of an image column as ``uint8`` ``[B, C, H, W]``: the stored bytes of an
    :class:`ImageColumn`, or the decoded float rows of any other column scaled back to 0-255."""
    if isinstance(column, ImageColumn):
        return column.raw(idx)
    return column[idx].mul(255).round_().clamp_(0, 255).to(torch.uint8)
