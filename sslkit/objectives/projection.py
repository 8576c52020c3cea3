"""Projection heads: the small network between the encoder and a representation-learning loss.

SimCLR's finding is that the loss is best computed on a projection ``g(h)`` of the features ``h``
while downstream tasks use ``h`` itself; evaluation in sslkit therefore always reads the encoder.
"""
from __future__ import annotations

from typing import Literal

from torch import nn


ProjectionKind = Literal["mlp", "linear", "none"]


class ProjectionHead(nn.Module):
    """``g(h)``: ``Linear -> BatchNorm -> ReLU -> Linear`` (``mlp``), one ``Linear`` (``linear``), or the
    identity (``none``).

    in_dim: encoder feature size. kind: head type. hidden: width of the ``mlp`` hidden layer.
    out_dim: projection size (ignored for ``none``). path: recipe path for error messages.
    """

    def __init__(self, in_dim: int, kind: ProjectionKind = "mlp", hidden: int = 256, out_dim: int = 64,
                 path: str = "objectives[0]"):
        super().__init__()
        if kind == "mlp":
            self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                     nn.Linear(hidden, out_dim))
        elif kind == "linear":
            self.net = nn.Linear(in_dim, out_dim)
        else:
            self.net = nn.Identity()
        self.out_dim = in_dim if kind == "none" else out_dim

    def forward(self, h):
        return self.net(h)
