"""Multi-layer perceptron over flattened inputs."""
from __future__ import annotations

import math

from torch import nn

from ..data import DataInfo
from ..errors import ConfigError
from ..registry import register
from ..schema import Count, Rate
from .base import Activation, Encoder, make_activation


@register("encoders", "mlp")
class MLP(Encoder):
    """Flatten ``x`` and apply ``Linear -> [BatchNorm] -> activation -> [Dropout]`` per hidden layer.

    hidden: widths of the hidden layers; the last is the feature size.
    activation: nonlinearity. dropout: dropout after each layer. batch_norm: BatchNorm1d before the activation.
    """

    def __init__(self, info: DataInfo, *, hidden: list[Count] = (256, 256), activation: Activation = "relu",
                 dropout: Rate = 0.0, batch_norm: bool = False):
        super().__init__()
        if info.modality not in ("image", "tabular"):
            raise ConfigError("encoder.name", f"'mlp' takes image or tabular data, not {info.modality}")
        if not hidden:
            raise ConfigError("encoder.hidden", "needs at least one layer width")
        layers, width = [nn.Flatten()], math.prod(info.input_shape)
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(make_activation(activation))
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        self.net = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, x):
        return self.net(x)

