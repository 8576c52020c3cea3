"""The objective interface.

The trainer minimises ``sum_k w_k * L_k + lambda * Omega(theta)`` over the objectives of a
recipe. An objective

* declares the batches it needs (:meth:`Objective.streams`): which rows (``labeled`` or ``all``),
  at what batch-size ratio, with which augmented views;
* owns its heads (sub-modules) and computes its loss and named metrics in :meth:`forward`;
* may split its parameters into several *players* stepped in turn with their own optimizers
  (a GAN's discriminator and generator); single-player objectives use the ``model`` player;
* may report evaluation metrics on the test split (:meth:`evaluate`), update state after each
  training step (:meth:`after_step`, e.g. an EMA teacher), and report metrics of its own state at the
  end (:meth:`final_metrics`);
* names the reporters (:mod:`sslkit.reporters`: sample quality, probes, figures) a run gets by default
  (:attr:`Objective.reporters`); what is not its loss lives there, not in the objective.
"""
from __future__ import annotations

from abc import abstractmethod

from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import torch
from torch import nn

from ..data import DataBundle, DataInfo
from ..data.stream import StreamSpec
from ..data.batches import batched  # noqa: F401  (objectives and reporters import it from here)
from ..distributed import sum_over_ranks


class Output(NamedTuple):
    """An objective's result for one batch: the scalar loss and metrics to log.

    A metric is a tensor, a float, or a zero-argument callable returning one; callables are
    evaluated only on the steps the trainer logs (``trainer.log_every``), so a metric that costs
    extra tensor work (e.g. a batch accuracy) does not slow down the other steps."""

    loss: torch.Tensor
    metrics: dict = {}


@dataclass
class ObjectiveContext:
    """What an objective may use to build itself: the data description, the shared encoder (for
    its ``out_dim`` and modality), the prepared data (e.g. to size a decoder), the recipe path of
    this objective for error messages, the run's seed, and (in a staged recipe) the run folders of
    earlier stages, which :func:`sslkit.runner.load_run` rebuilds as frozen models."""

    info: DataInfo
    encoder: nn.Module
    data: Optional[DataBundle] = None
    path: str = "objectives[0]"
    seed: int = 0
    stages: dict = field(default_factory=dict)  # run folders of earlier stages of a staged recipe, by name


class Objective(nn.Module):
    """Base class. Subclasses implement ``forward(batch, encoder, player="model") -> Output``.

    ``batch`` maps each stream name of :meth:`streams` to a dict of tensors (``x``, ``y``, any
    other data columns, and ``views`` when views were requested).
    """

    players: tuple = ("model",)
    requires: tuple = ()  # Capabilities (sslkit.encoders.capabilities) the encoder must have; checked at build
    reporters: tuple = ()  # reporters (names or part mappings) a run gets when its recipe lists none

    def streams(self) -> dict:
        return {"labeled": StreamSpec("labeled")}

    def player_parameters(self, player: str, encoder: nn.Module) -> list:
        """Parameters stepped by ``player``'s optimizer; the ``model`` player gets every parameter that
        no other player claims, so single-player objectives need not override this."""
        return []

    def needs_batch(self) -> bool:
        """Whether the next training step draws a batch for this objective (a rollout objective still
        updating on its buffer does not; its stream then stays where it is)."""
        return True

    def updates_per_batch(self, n: int) -> int:
        """Training steps (optimizer updates) one drawn batch of ``n`` rows lasts (rollouts: several)."""
        return 1

    def after_step(self, step: int, encoder: nn.Module) -> None:
        """Called once per training step ``step`` (0-based), after every player's optimizer has stepped
        (EMA updates, step counters)."""

    @torch.no_grad()
    def evaluate(self, data: DataBundle, encoder: nn.Module, batch_size: int, device) -> dict:
        """Metrics named ``test_*``, on ``data.test`` (the rest of the run's data, e.g. training rows for a
        probe, is in ``data``); called in eval mode under ``torch.no_grad``, ``batch_size`` rows at a time, on
        every rank under ``torchrun``: each scores its share (:func:`batched` with ``shard=True``) and the
        sums are added over the ranks, so every test row counts once and every rank returns the same."""
        return {}

    def default_reporters(self) -> tuple:
        """The reporters this objective names for a recipe without ``reporters:`` (default: :attr:`reporters`)."""
        return self.reporters

    def final_metrics(self) -> dict:
        """Metrics of the objective's own state at the end of training (e.g. a running mask rate), on rank 0.
        Figures and evaluations of the trained model are reporters."""
        return {}


class Classifier(Objective):
    """Mixin for objectives with a class-prediction head: ``logits(x, encoder)``; reports
    ``test_accuracy`` on the test split."""

    @abstractmethod
    def logits(self, x: torch.Tensor, encoder: nn.Module) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, data, encoder, batch_size, device) -> dict:
        correct = total = 0
        for b in batched(data.test, batch_size, device, shard=True):
            pred = self.logits(b["x"], encoder).argmax(1)
            keep = b["y"] >= 0
            correct += (pred[keep] == b["y"][keep]).sum().item()
            total += int(keep.sum())
        correct, total = sum_over_ranks(correct, total)
        return {"test_accuracy": correct / total} if total else {}
