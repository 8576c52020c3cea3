"""Views: random transformations of a batch of ``x`` made on the fly for an objective's stream
(registered under ``views``; built with the data's :class:`DataInfo`)."""
from __future__ import annotations

import torch

from ..registry import register
from .base import DataInfo


@register("views", "identity")
class Identity:
    """The input unchanged."""

    def __init__(self, info: DataInfo):
        pass

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x
