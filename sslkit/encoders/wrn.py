"""WideResNet-28-2 / 28-8, the backbone of FixMatch and of USB's CIFAR/SVHN benchmarks.

Matches USB's ``semilearn.nets.wrn`` (itself a port of FixMatch's TensorFlow model): pre-activation
basic blocks, leaky-ReLU slope 0.1, BatchNorm momentum 0.001 and eps 0.001 (TensorFlow's decay
0.999), biased convolutions, Kaiming fan-out init, and the same quirk in the first block of a stage
(the shortcut and the first convolution both take the activated input). Module names are USB's, so
an exported state dict loads into USB's ``wrn_28_2`` (its classifier ``fc`` excepted: heads live
with sslkit's objectives).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import DataInfo
from ..errors import ConfigError
from ..registry import register
from ..schema import Count, Rate
from .base import Encoder
from .images import load_export_into, require_images, write_export

BN_MOMENTUM, BN_EPS, SLOPE = 0.001, 0.001, 0.1


class BasicBlock(nn.Module):
    """BN -> leaky ReLU -> conv3x3 (stride) -> BN -> leaky ReLU -> dropout -> conv3x3, plus the input
    (or a 1x1 convolution of it where the width or resolution changes)."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes, momentum=BN_MOMENTUM, eps=BN_EPS)
        self.relu1 = nn.LeakyReLU(SLOPE)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=True)
        self.bn2 = nn.BatchNorm2d(out_planes, momentum=BN_MOMENTUM, eps=BN_EPS)
        self.relu2 = nn.LeakyReLU(SLOPE)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=True)
        self.drop_rate = drop_rate
        self.equal = in_planes == out_planes
        # camelCase: USB's name, so exported weights load there unchanged
        self.convShortcut = None if self.equal else nn.Conv2d(in_planes, out_planes, 1, stride, 0, bias=True)

    def forward(self, x):
        act = self.relu1(self.bn1(x))
        if not self.equal:  # the first block of a stage: shortcut and branch both start from act
            x = act
        out = self.relu2(self.bn2(self.conv1(act)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        return (x if self.equal else self.convShortcut(x)) + out


class NetworkBlock(nn.Module):
    """A stage: ``n`` basic blocks, the first changing the width and applying the stride."""

    def __init__(self, n: int, in_planes: int, out_planes: int, stride: int, drop_rate: float):
        super().__init__()
        self.layer = nn.Sequential(*[BasicBlock(in_planes if i == 0 else out_planes, out_planes,
                                                stride if i == 0 else 1, drop_rate) for i in range(n)])

    def forward(self, x):
        return self.layer(x)


@register("encoders", "wrn")
class WideResNet(Encoder):
    """WideResNet-``depth``-``widen_factor`` (Zagoruyko & Komodakis 2016) as in FixMatch and USB:
    a 3x3 convolution to 16 channels, three stages of ``(depth - 4) / 6`` pre-activation blocks of
    width ``16k, 32k, 64k`` (strides ``first_stride``, 2, 2), BN + leaky ReLU and global average
    pooling; features are ``64 * widen_factor``-d (128 for WRN-28-2, 512 for WRN-28-8).

    depth: 6n + 4 (28 in FixMatch). widen_factor: k (2 for CIFAR-10 / SVHN, 8 for CIFAR-100).
    drop_rate: dropout between the two convolutions of a block (0 in FixMatch). first_stride: stride of
    the first stage (1 for 32x32 images; 2 halves larger inputs early).
    """

    input_shape: tuple  # (C, H, W) of the data it was built for

    def __init__(self, info: DataInfo, *, depth: Count = 28, widen_factor: Count = 2, drop_rate: Rate = 0.0,
                 first_stride: Count = 1):
        super().__init__()
        require_images(info, "wrn")
        if depth < 10 or (depth - 4) % 6:
            raise ConfigError("encoder.depth", f"must be 6n + 4 with n >= 1 (e.g. 28), got {depth}")
        self.input_shape = tuple(info.input_shape)
        self.config = {"depth": depth, "widen_factor": widen_factor, "drop_rate": drop_rate,
                       "first_stride": first_stride, "in_chans": info.input_shape[0]}
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(info.input_shape[0], widths[0], 3, 1, 1, bias=True)
        self.block1 = NetworkBlock(n, widths[0], widths[1], first_stride, drop_rate)
        self.block2 = NetworkBlock(n, widths[1], widths[2], 2, drop_rate)
        self.block3 = NetworkBlock(n, widths[2], widths[3], 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(widths[3], momentum=BN_MOMENTUM, eps=BN_EPS)
        self.relu = nn.LeakyReLU(SLOPE)
        self.out_dim = widths[3]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return torch.flatten(F.adaptive_avg_pool2d(self.relu(self.bn1(x)), 1), 1)

    def load_export(self, directory) -> None:
        """Start from an exported folder (``encoder.init_from``)."""
        load_export_into(self, directory)

    def export(self, directory) -> None:
        """``model.safetensors`` with USB's parameter names and ``config.json`` with the architecture
        keys (``WideResNet(DataInfo('image', (in_chans, H, W)), **config)`` rebuilds it)."""
        write_export(directory, self.state_dict(), {"architecture": f"wrn_{self.config['depth']}_"
                                                    f"{self.config['widen_factor']}", "library": "sslkit.wrn",
                                                    "input_shape": list(self.input_shape),
                                                    "num_features": self.out_dim, **self.config})
