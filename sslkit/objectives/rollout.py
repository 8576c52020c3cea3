"""Objectives that learn from their own rollouts: collect once, then spend several optimizer updates on it.

PPO samples responses to a batch of prompts, scores them and then takes ``ppo_epochs`` passes over them
in minibatches. :class:`RolloutObjective` makes that part of the training lifecycle instead of state
hidden in ``forward``:

* the trainer draws a batch for it only when its queue of updates is empty (:meth:`needs_batch`), so no
  stream batch is drawn and dropped while a rollout drains, and an epoch of its rows counts every update
  (:meth:`updates_per_batch`): one trainer step is one optimizer update;
* the rollout buffer and the queue of minibatches travel with the model's checkpoint (module extra state),
  so a run resumed mid-rollout continues the same rollout with the same minibatches.
"""
from __future__ import annotations

from abc import abstractmethod

import math
from typing import Optional

import torch
from torch import nn

from ..data.loader import mix
from ..distributed import rank as dist_rank
from ..distributed import world_size
from .base import Objective, Output


class RolloutObjective(Objective):
    """Base class. Subclasses implement :meth:`collect` (a batch -> the rollout buffer) and :meth:`update`
    (one minibatch of the buffer -> the loss), and set ``epochs`` (passes over each rollout) and
    ``minibatch_size`` (rows of the global batch per update; None: the whole rollout). Under ``torchrun``
    :meth:`collect` returns the global rollout (every rank's rows, gathered)."""

    epochs: int = 1
    minibatch_size: Optional[int] = None

    def __init__(self, seed: int = 0):
        super().__init__()
        self.seed = seed
        self.buffer: Optional[dict] = None  # tensors with one row per rollout row, and "stats" to log
        self.queue: list = []  # index tensors of the minibatches still to update on
        self.rollouts = 0  # collected so far: with the seed, it seeds each rollout's own random numbers

    def rollout_generator(self, device, stream: int = 0) -> torch.Generator:
        """A generator seeded from (seed, rollouts collected, ``stream``): the same random numbers on every rank
        and at any number of processes, whatever else drew from torch's (dropout draws per rank)."""
        return torch.Generator(device=device).manual_seed(mix(self.seed, self.rollouts, stream))

    @abstractmethod
    def collect(self, batch: dict, encoder: nn.Module) -> dict:  # pragma: no cover - interface
        """The rollout of one batch: tensors with a row per example, plus ``stats`` (a dict of logged scalars)."""
        raise NotImplementedError

    @abstractmethod
    def update(self, rows: dict, stats: dict, encoder: nn.Module) -> Output:  # pragma: no cover - interface
        """The loss of one minibatch ``rows`` of the buffer (``stats``: the rollout's logged scalars)."""
        raise NotImplementedError

    def needs_batch(self) -> bool:
        return not self.queue

    def schedule(self, n: int) -> list:
        """The minibatches of a rollout of ``n`` rows: ``epochs`` random permutations, each cut into
        ``minibatch_size`` pieces (drawn from :meth:`rollout_generator`)."""
        size, g = self.minibatch_size or n, self.rollout_generator("cpu")
        return [idx for _ in range(self.epochs) for idx in torch.randperm(n, generator=g).split(size)]

    def updates_per_batch(self, n: int) -> int:
        """How many optimizer updates one batch of ``n`` rows makes."""
        return self.epochs * math.ceil(n / (self.minibatch_size or n))

    def forward(self, batch, encoder, player="model"):
        if not self.queue:
            self.buffer = self.collect(batch, encoder)
            rows = next(v for k, v in self.buffer.items() if k != "stats")
            self.queue = self.schedule(len(rows))
            self.rollouts += 1
        idx = self.queue.pop(0)
        # under torchrun the buffer is the global rollout (collect gathers it): a rank updates on the rows of
        # the minibatch that it sampled (row g of the global batch is rank g % W's)
        idx = idx[idx % world_size() == dist_rank()] if world_size() > 1 else idx
        device = next(encoder.parameters()).device  # a resumed buffer comes back on the CPU
        rows = {k: v[idx.to(v.device)].to(device) for k, v in self.buffer.items() if k != "stats"}
        return self.update(rows, self.buffer.get("stats", {}), encoder)

    # the rollout in progress is part of the training state
    def get_extra_state(self):
        return {"buffer": self.buffer, "queue": list(self.queue), "rollouts": self.rollouts}

    def set_extra_state(self, state):
        self.buffer, self.queue = state["buffer"], list(state["queue"])
        self.rollouts = int(state.get("rollouts", 0))
