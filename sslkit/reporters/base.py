"""The reporter interface and the run context it is given.

A reporter computes metrics or writes files from a trained (or training) run without being part of
any loss: the quality of a generative model's samples, a linear probe of frozen features, a figure.
It is a registered part (``@register("reporters", "name")``) whose keyword parameters a recipe sets::

    reporters:
      - curves
      - {name: sample_quality, score_splits: 5}

Without a ``reporters:`` key a run gets ``curves`` plus the reporters its objectives name in their
class attribute ``reporters`` (what the shipped recipes rely on); with the key, exactly the listed ones.
A reporter may report twice: :meth:`Reporter.during` at each evaluation while training (metrics named
``test_*``, logged to ``metrics.jsonl``) and :meth:`Reporter.report` once at the end (final metrics
and files). Both run on rank 0 with the model in eval mode under ``torch.no_grad``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, runtime_checkable

import torch
from torch import nn

from ..data import DataBundle
from ..errors import ConfigError


@dataclass
class ReporterContext:
    """What a reporter may use to build itself: its recipe path (for error messages) and the run's seed."""

    path: str = "reporters[0]"
    seed: int = 0


@dataclass
class RunContext:
    """What a reporter sees of a run: the prepared ``data``, the built ``model`` (an ``SSLModel``: encoder,
    objectives and their recipe names), the ``device``, the ``run_dir`` (None when nothing is written),
    the trainer's ``history`` (the records of ``metrics.jsonl``), the ``seed`` and the evaluation
    ``batch_size``. ``cached`` shares work between reporters of one report (e.g. the samples that both
    the scores and the figure use)."""

    data: DataBundle
    model: nn.Module
    device: torch.device
    run_dir: Optional[Path] = None
    history: list = field(default_factory=list)
    seed: int = 0
    batch_size: int = 256
    cache: dict = field(default_factory=dict)

    @property
    def encoder(self) -> nn.Module:
        return self.model.encoder

    def cached(self, key, compute: Callable[[], Any]):
        """``compute()`` once per ``key`` for this context."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def objectives(self, protocol: type) -> list:
        """``(name, objective)`` of every objective that provides ``protocol`` (a runtime-checkable protocol
        or a class), in recipe order."""
        return [(n, o) for n, o in zip(self.model.names, self.model.objectives) if isinstance(o, protocol)]

    def objective(self, protocol: type, path: str, what: str):
        """The first objective providing ``protocol`` as ``(name, objective)``; a ConfigError at ``path`` (the
        reporter's recipe path) saying ``what`` it needs when none does."""
        found = self.objectives(protocol)
        if not found:
            raise ConfigError(path, f"needs an objective that {what}; this run's objectives "
                                    f"({', '.join(self.model.names)}) do not")
        return found[0]

    def file(self, name: str) -> Optional[Path]:
        """``run_dir / name``, or None when the run writes no files."""
        return None if self.run_dir is None else Path(self.run_dir) / name


class Reporter:
    """Base class of reporters; subclasses override :meth:`report` and/or :meth:`during`.

    ``__init__(self, ctx: ReporterContext, *, <recipe keys>)``: ``ctx`` is supplied by the framework.
    ``needs``: ``(protocol, what)`` when the reporter reads an objective that provides ``protocol``
    (checked when the recipe is built; ``what`` completes "needs an objective that ...").
    """

    needs: Optional[tuple] = None

    def __init__(self, ctx: ReporterContext):
        self.path, self.seed = ctx.path, ctx.seed

    def objective(self, run: RunContext) -> tuple:
        """``(name, objective)``: the first objective of the run providing :attr:`needs`."""
        return run.objective(self.needs[0], self.path, self.needs[1])

    def during(self, run: RunContext) -> dict:
        """Metrics (named ``test_*``) at each evaluation while training."""
        return {}

    def report(self, run: RunContext) -> dict:
        """Final metrics, and files written into ``run.run_dir``, once at the end of training."""
        return {}


def reporter_specs(cfg: dict, objectives) -> list:
    """``(recipe path, part mapping)`` of a run's reporters: the recipe's ``reporters:`` list, or, without
    one, ``curves`` and each objective's ``reporters`` defaults (each name once, the first mapping kept)."""
    if cfg.get("reporters") is not None:
        return [(f"reporters[{i}]", spec) for i, spec in enumerate(cfg["reporters"])]
    specs, seen = [("reporters", "curves")], {"curves"}
    for i, obj in enumerate(objectives):
        for spec in obj.default_reporters():
            name = spec if isinstance(spec, str) else spec["name"]
            if name not in seen:
                seen.add(name)
                specs.append((f"objectives[{i}].name", spec))
    return specs


def build_reporters(cfg: dict, objectives) -> list:
    """The built reporters of a resolved recipe (see :func:`reporter_specs`)."""
    from ..schema import build

    reporters = []
    for path, spec in reporter_specs(cfg, objectives):
        reporter = build("reporters", spec, ReporterContext(path, cfg["seed"]), path=path)
        if reporter.needs and not any(isinstance(o, reporter.needs[0]) for o in objectives):
            raise ConfigError(path, f"'{spec if isinstance(spec, str) else spec['name']}' needs an objective "
                                    f"that {reporter.needs[1]}; this recipe's objectives do not")
        reporters.append(reporter)
    return reporters


# ----------------------------------------------------------------------------- what objectives offer reporters
@runtime_checkable
class Sampler(Protocol):
    """An objective that generates inputs (VAE, GAN). sample_title: how a figure of its samples is titled."""

    sample_title: str

    def draw_samples(self, n: int, encoder: nn.Module, device, seed: int) -> tuple:
        """``(samples [n, *input_shape], codes [n] or None)`` drawn with their own generator seeded ``seed``."""


@runtime_checkable
class Reconstructor(Protocol):
    """An objective that maps an input back to input space (an autoencoder)."""

    def reconstruct(self, x: torch.Tensor, encoder: nn.Module) -> torch.Tensor:
        """The reconstruction of ``x`` (e.g. a VAE's ``E[x | mu(x)]``)."""


@runtime_checkable
class LatentModel(Protocol):
    """An objective with a latent code of its own (a VAE's posterior mean), probed and drawn instead of the
    encoder's features. latent_dim: the code's size."""

    latent_dim: int

    def latent_features(self, x: torch.Tensor, encoder: nn.Module) -> torch.Tensor:
        """``[B, latent_dim]`` codes of the inputs ``x``."""


@runtime_checkable
class CodeSampler(Protocol):
    """A generator with a categorical code (InfoGAN). code_size: the number of codes (0: none)."""

    code_size: int

    def code_grid(self, per_code: int, device, seed: int) -> torch.Tensor:
        """``per_code`` samples per code, code-major, with the same noise in every code's row."""


def cached_samples(run: RunContext, obj, n: int) -> tuple:
    """``obj.draw_samples(n, ...)`` at seed ``run.seed + 1`` as float32 CPU tensors, drawn once per run
    context and ``n``."""
    def draw():
        x, codes = obj.draw_samples(n, run.encoder, run.device, run.seed + 1)
        return x.float().cpu(), None if codes is None else codes.cpu()

    return run.cached(("samples", id(obj), n), draw)


def features(run: RunContext, split: str, how: str = "auto") -> torch.Tensor:
    """Frozen features ``[N, D]`` (float32, CPU) of every row of ``run.data.<split>``: the latent code of
    the first objective that has one (``how: auto | latent``), else (or with ``how: encoder``) the encoder's
    output. Computed once per run context."""
    from ..evaluation import extract_features

    latent = run.objectives(LatentModel) if how != "encoder" else []
    if how == "latent" and not latent:
        raise ConfigError("reporters", "features: latent needs an objective with a latent code (e.g. vae)")
    fn = (lambda x: latent[0][1].latent_features(x.float(), run.encoder)) if latent else run.encoder
    key = ("features", split, "latent" if latent else "encoder")
    return run.cached(key, lambda: extract_features(fn, getattr(run.data, split), run.batch_size, run.device))
