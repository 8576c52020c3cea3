"""Feeding a stream's batches to the trainer.

In-memory tensors (digits, tabular rows, token ids) go as they are: the batch is gathered, moved to
the device, and its views are made there on the whole batch (:mod:`sslkit.data.views`).

Images stored as bytes (the on-disk datasets' ``uint8`` :class:`~sslkit.data.images.ImageColumn`, or
a lazily decoded folder) go through :class:`ImageBatches`: DataLoader workers gather each batch's
rows and augment every image separately with ``torchvision.transforms.v2``
(:mod:`sslkit.data.transforms`), while the device trains on the previous batches; batches arrive as
``uint8`` in pinned memory and become float on the device.

Either way the rows of every batch come from the stream's seeded, resumable
:class:`~sslkit.data.stream.Stream`, and the stream's position is what the trainer consumed (not what
the workers prefetched), so checkpoints resume exactly. Each image's augmentation is seeded from
(stream seed, position in the stream, view), so any number of workers gives the same batches.
"""
from __future__ import annotations

import contextlib
import copy
import os
from typing import Optional

import torch

from ..distributed import gather_rows, my_rows
from ..errors import ConfigError, SSLKitError
from .base import LazyColumn, TensorData
from .images import ImageColumn, uint8_rows
from .stream import Stream
from .transforms import per_sample

PREFETCH = 4  # batches each worker keeps ready
_MASK = 2**64 - 1


def mix(*values: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps): nearby positions give unrelated seeds."""
    z = 0
    for v in values:
        z = (z + 0x9E3779B97F4A7C15 + (v & _MASK)) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        z ^= z >> 31
    return z >> 1


def uses_workers(data: TensorData, modality: str) -> bool:
    """Whether a stream over ``data`` goes through :class:`ImageBatches` (images not held as floats)."""
    return modality == "image" and "x" in data and isinstance(data["x"], LazyColumn)


@contextlib.contextmanager
def seeded_rng(seed: int, device: torch.device):
    """Torch's generator (the one of ``device``) seeded with ``seed`` inside, restored on leaving: code that
    draws from the global generator, as views do, draws a stream fixed by ``seed`` alone."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        # Generator.manual_seed: torch.manual_seed would also visit every CUDA device
        torch.random.default_generator.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.default_generators[device.index or 0].manual_seed(seed)
        yield


class TensorBatches:
    """A stream's batches gathered from in-memory tensors, moved to ``device``, with ``views`` made
    on the device (batched, per-sample randomness).

    The views' randomness is drawn for the global batch from torch's generator seeded by the stream's
    position (its seed, pass and offset), and each rank keeps its rows' views: a row's view depends on
    its place in the global batch alone, never on the number of processes or on what else drew random
    numbers before. Under ``torchrun`` each rank makes the views of the whole global batch (batched
    tensor work, small beside the model's), as one process would.
    """

    def __init__(self, stream: Stream, views: list, device: torch.device):
        self.stream, self.views, self.device = stream, views, device

    def _to_device(self, batch: dict) -> dict:
        if self.device.type == "cpu":
            return batch
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def __next__(self) -> dict:
        if not self.views:
            return self._to_device(next(self.stream))
        s = self.stream
        seed = mix(s.base_seed, s.epoch, s.pos)
        rows = s.next_global_indices()
        batch = self._to_device(s.data.fetch(rows[s.rank::s.world]))
        x = batch["x"] if s.world == 1 else s.data["x"][rows].to(self.device, non_blocking=True)
        with seeded_rng(seed, self.device):
            batch["views"] = [view(x)[s.rank::s.world] for view in self.views]
        return batch


class _Tasks(torch.utils.data.Sampler):
    """The stream's batches as tasks ``(rows, seed, state after)``, from a copy of the stream, so the
    DataLoader can run ahead without moving the stream the trainer checkpoints."""

    def __init__(self, stream: Stream):
        self.stream = copy.copy(stream)
        self.stream._perm = None

    def __iter__(self):
        s = self.stream
        while True:
            seed = mix(s.base_seed, s.epoch, s.pos)
            rows = s.next_indices()
            yield rows, seed, (s.epoch, s.pos)


class _Augment(torch.utils.data.Dataset):
    """Worker side: the rows of a task, ``x`` and each view as ``uint8`` ``[B, C, H, W]``; each image's
    transform runs with torch's generator seeded from (task seed, row, view)."""

    def __init__(self, data: TensorData, transforms: list, rank: int, world: int):
        self.data, self.transforms, self.rank, self.world = data, transforms, rank, world

    def __getitem__(self, task):
        rows, seed, state = task
        try:
            batch = {k: v[rows] for k, v in self.data.columns.items() if k != "x"}
            x = uint8_rows(self.data["x"], rows)
        except SSLKitError as exc:  # e.g. an unreadable image file: re-raised in the trainer as it is
            return {"error": (getattr(exc, "path", ""), getattr(exc, "message", str(exc)))}
        batch["x"] = x
        threads = torch.get_num_threads()
        # one thread, as in DataLoader workers: per-image ops are tiny, and a thread pool only adds
        # waits (25x slower on a busy machine); also keeps float rounding the same with and without workers
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]):  # without workers this runs in the trainer: keep its RNG
                views = [x if t is None else self._augment(t, x, seed, v) for v, t in enumerate(self.transforms)]
        finally:
            torch.set_num_threads(threads)
        batch["views"] = views
        batch["state"] = torch.tensor(state)
        batch["seed"] = torch.tensor(seed)  # the batch-level views' too
        return batch

    def _augment(self, transform, x: torch.Tensor, seed: int, view: int) -> torch.Tensor:
        out = torch.empty_like(x)
        generator = torch.random.default_generator  # the one v2 transforms draw from
        for j in range(len(x)):  # the row's place in the global batch: ranks together = one process
            # Generator.manual_seed: 200x cheaper than torch.manual_seed (which also visits CUDA)
            generator.manual_seed(mix(seed, self.rank + self.world * j, view))
            out[j] = transform(x[j])
        return out


def default_workers(device: torch.device) -> int:
    """Workers when ``trainer.num_workers`` is null: on a GPU all but one core up to 8 (decoding and
    augmenting must keep up with it); on the CPU none (workers would take the cores the step uses)."""
    return min(8, max(1, (os.cpu_count() or 2) - 1)) if device.type == "cuda" else 0


class ImageBatches:
    """A stream's image batches, augmented per sample in ``num_workers`` DataLoader workers (0: in
    the training process), delivered on ``device`` as float in [0, 1] (``channels_last`` on CUDA).

    stream: the stream whose position is checkpointed. views: the built views; those without a
    per-sample form are applied to the batch on the device. shape: ``(C, H, W)`` of the images.
    """

    def __init__(self, stream: Stream, views: list, shape: tuple, device: torch.device, num_workers: int):
        self.stream, self.device, self.num_workers = stream, device, num_workers
        self.transforms = [per_sample(v, shape) for v in views]
        self.batched = [v if t is None else None for v, t in zip(views, self.transforms)]
        self._it, self._expected = None, None

    def _start(self):
        dataset = _Augment(self.stream.data, self.transforms, self.stream.rank, self.stream.world)
        workers = self.num_workers
        loader = torch.utils.data.DataLoader(
            dataset, sampler=_Tasks(self.stream), batch_size=None, num_workers=workers,
            pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
            prefetch_factor=PREFETCH if workers else None,
            # its own generator: the DataLoader draws a worker base seed, which must not move the
            # trainer's RNG (a resumed run restarts the loader and would draw once more)
            generator=torch.Generator().manual_seed(self.stream.base_seed))
        self._it = iter(loader)

    def _batch_view(self, view, x: torch.Tensor, seed: int) -> torch.Tensor:
        """A view without a per-sample form, made on the device as for in-memory data: of the global batch (every
        rank's images, gathered), from torch's generator seeded by the batch's position, this rank's rows kept."""
        with seeded_rng(seed, self.device):
            return my_rows(view(gather_rows(x)))

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x.float().div_(255)

    def __next__(self) -> dict:
        if self._it is None or self.stream.state_dict() != self._expected:  # first batch, or resumed
            self._start()
        batch = next(self._it)
        if "error" in batch:
            raise ConfigError(*batch["error"])
        epoch, pos = batch.pop("state").tolist()
        seed = int(batch.pop("seed"))
        self.stream.load_state_dict({"epoch": epoch, "pos": pos})
        self._expected = self.stream.state_dict()
        out = {k: v.to(self.device, non_blocking=True) for k, v in batch.items() if k not in ("x", "views")}
        out["x"] = self._to_device(batch["x"])
        out["views"] = [self._to_device(v) if view is None else self._batch_view(view, out["x"], seed)
                        for v, view in zip(batch["views"], self.batched)]
        if not self.batched:
            del out["views"]
        return out


def make_batches(stream: Stream, views: list, info, device: torch.device, num_workers: Optional[int]):
    """The batch source of one stream: :class:`ImageBatches` for images stored as bytes or decoded
    lazily, :class:`TensorBatches` for in-memory tensors."""
    if not uses_workers(stream.data, info.modality):
        return TensorBatches(stream, views, device)
    if num_workers is not None and num_workers < 0:
        raise ConfigError("trainer.num_workers", f"must be >= 0 (or null for automatic), got {num_workers}")
    workers = default_workers(device) if num_workers is None else num_workers
    return ImageBatches(stream, views, tuple(info.input_shape), device, workers)


def cache_images(data, budget_bytes: int = 4 << 30, workers: int = 0) -> None:
    """Decode a lazily read image column (an image folder) once into a ``uint8``
    :class:`ImageColumn`, for the training and test rows, when it fits ``budget_bytes``; later epochs
    then only augment. Columns already in memory are left alone."""
    for split in (data.train, data.test):
        column = split.columns.get("x")
        if not isinstance(column, LazyColumn) or isinstance(column, ImageColumn) or len(column) == 0:
            continue
        first = column[torch.tensor([0])]
        if first.dim() != 4 or len(column) * first[0].numel() > budget_bytes:
            continue
        loader = torch.utils.data.DataLoader(range(len(column)), batch_size=256, num_workers=workers,
                                             collate_fn=lambda rows: uint8_rows(column, torch.tensor(rows)))
        split.columns["x"] = ImageColumn(torch.cat(list(loader)))
