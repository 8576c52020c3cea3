"""torchvision's ResNet-18 with its stem adapted to small images."""
from __future__ import annotations

from torch import nn

from ..data import DataInfo
from ..errors import ConfigError
from ..registry import register
from ..schema import Count
from .base import Encoder


@register("encoders", "resnet18")
class ResNet18(Encoder):
    """``torchvision.models.resnet18`` (random init) with a 3x3 stride-1 first convolution taking the
    data's channels and no max-pool (the CIFAR stem), so 8x8-32x32 inputs keep spatial detail; the
    classifier is removed and the 512-d pooled features are returned.

    width: channels of the first stage (64 in the original; the others scale with it).
    """

    input_shape: tuple  # (C, H, W) of the data it was built for

    def __init__(self, info: DataInfo, *, width: Count = 64):
        super().__init__()
        self.input_shape = tuple(info.input_shape)
        from torchvision.models import resnet18
        from torchvision.models.resnet import BasicBlock, ResNet

        if info.modality != "image":
            raise ConfigError("encoder.name", f"'resnet18' takes images, not {info.modality} data")
        net = resnet18(weights=None) if width == 64 else ResNet(BasicBlock, [2, 2, 2, 2])
        if width != 64:  # rebuild with scaled widths
            net.inplanes = width
            net.layer1 = net._make_layer(BasicBlock, width, 2)
            net.layer2 = net._make_layer(BasicBlock, 2 * width, 2, stride=2)
            net.layer3 = net._make_layer(BasicBlock, 4 * width, 2, stride=2)
            net.layer4 = net._make_layer(BasicBlock, 8 * width, 2, stride=2)
        net.conv1 = nn.Conv2d(info.input_shape[0], width, 3, 1, 1, bias=False)
        net.bn1 = nn.BatchNorm2d(width)
        net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        self.net = net
        self.out_dim = 8 * width

    def forward(self, x):
        return self.net(x)
