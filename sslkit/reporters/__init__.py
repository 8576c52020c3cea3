"""Reporters: what runs after or beside training (sample quality, frozen-feature probes, figures,
curves), each a registered part of its own (``@register("reporters", name)``) given a
:class:`~sslkit.reporters.base.RunContext`."""
from .base import Reporter, ReporterContext, RunContext, build_reporters

__all__ = ["Reporter", "ReporterContext", "RunContext", "build_reporters"]
