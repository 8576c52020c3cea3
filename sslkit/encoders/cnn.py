"""A small convolutional network for 8x8 up to 32x32 images."""
from __future__ import annotations

from torch import nn

from ..data import DataInfo
from ..errors import ConfigError
from ..registry import register
from ..schema import Count, Rate
from .base import Encoder


@register("encoders", "cnn")
class CNN(Encoder):
    """``[Conv3x3 -> BatchNorm -> ReLU] x 2`` per stage, 2x2 max-pool between stages while the map is
    larger than 2x2, then global average pooling.

    channels: width of each stage. dropout: dropout on the pooled features.
    """

    input_shape: tuple  # (C, H, W) of the data it was built for

    def __init__(self, info: DataInfo, *, channels: list[Count] = (32, 64, 128), dropout: Rate = 0.0):
        super().__init__()
        self.input_shape = tuple(info.input_shape)
        if info.modality != "image":
            raise ConfigError("encoder.name", f"'cnn' takes images, not {info.modality} data")
        c, size = info.input_shape[0], min(info.input_shape[1:])
        layers = []
        for i, width in enumerate(channels):
            if i and size > 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            for _ in range(2):
                layers += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
                c = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)
        self.out_dim = c

    def forward(self, x):
        return self.net(x)
