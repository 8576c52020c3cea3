"""Decoder heads of the generative objectives: from a latent vector ``z`` to one input (a VAE's decoder,
a GAN's generator), sized from the data."""
from __future__ import annotations

import math

from torch import nn

from ..errors import ConfigError


class MLPDecoder(nn.Module):
    """``z -> [Linear -> (BatchNorm) -> ReLU] per hidden width -> Linear -> reshape to out_shape``.

    latent_dim: size of ``z``. out_shape: shape of one output. hidden: widths of the hidden layers.
    batch_norm: BatchNorm1d before each ReLU (helps GAN generators).
    """

    def __init__(self, latent_dim: int, out_shape: tuple, hidden=(256, 256), batch_norm: bool = False):
        super().__init__()
        layers, width = [], latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h)] + ([nn.BatchNorm1d(h)] if batch_norm else []) + [nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, math.prod(out_shape)))
        self.net = nn.Sequential(*layers)
        self.out_shape = tuple(out_shape)

    def forward(self, z):
        return self.net(z).reshape(len(z), *self.out_shape)


class DeconvDecoder(nn.Module):
    """A small transposed-convolution decoder for ``C x H x W`` images (H, W divisible by ``2^len(channels)``):
    ``Linear(z) -> channels[0] x H/2^n x W/2^n``, then per stage ``ConvTranspose(4, stride 2) -> (BatchNorm) ->
    ReLU`` through ``channels[1:]``, and a last ``ConvTranspose(4, stride 2)`` to ``C`` channels.

    latent_dim: size of ``z``. out_shape: ``(C, H, W)``. channels: widths, one per 2x upsampling.
    batch_norm: BatchNorm2d before each ReLU.
    """

    def __init__(self, latent_dim: int, out_shape: tuple, channels=(64, 32), batch_norm: bool = False):
        super().__init__()
        c, h, w = out_shape
        n = len(channels)
        self.start = (channels[0], h // 2 ** n, w // 2 ** n)
        self.fc = nn.Sequential(nn.Linear(latent_dim, math.prod(self.start)), nn.ReLU())
        layers = []
        for a, b in zip(channels, channels[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1)] + ([nn.BatchNorm2d(b)] if batch_norm else []) + [nn.ReLU()]
        layers.append(nn.ConvTranspose2d(channels[-1], c, 4, 2, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(self.fc(z).reshape(len(z), *self.start))


def make_decoder(kind: str, latent_dim: int, info, hidden, batch_norm: bool, path: str,
                 key: str = "decoder_hidden") -> nn.Module:
    """The decoder/generator head ``kind`` (``mlp`` or ``deconv``) from ``latent_dim`` to one input of
    ``info.input_shape``; ``path`` is the objective's recipe path and ``key`` the name of its widths key."""
    if info.modality not in ("image", "tabular"):
        raise ConfigError(f"{path}.name", f"generative objectives decode image or tabular data, not {info.modality}")
    if not hidden or any(h < 1 for h in hidden):
        raise ConfigError(f"{path}.{key}", f"needs at least one positive width, got {list(hidden)}")
    if kind == "deconv":
        shape = tuple(info.input_shape)
        step = 2 ** len(hidden)
        if len(shape) != 3 or shape[1] % step or shape[2] % step:
            raise ConfigError(f"{path}.{key}", f"a deconv decoder with {len(hidden)} stages needs C x H x W images "
                                               f"with H and W divisible by {step}, got input shape {shape}")
        return DeconvDecoder(latent_dim, shape, tuple(hidden), batch_norm)
    return MLPDecoder(latent_dim, tuple(info.input_shape), tuple(hidden), batch_norm)


def data_range(data) -> tuple:
    """(min, max) of the training inputs ``x`` (floats), or ``None`` when there is no data."""
    if data is None or len(data.train) == 0:
        return None
    x = data.train.columns["x"]
    return float(x.min()), float(x.max())


def check_temperature(path: str, sample_temperature: float) -> None:
    """The sampling temperature of a generative objective must be positive."""
    if sample_temperature <= 0:
        raise ConfigError(f"{path}.sample_temperature", f"must be > 0, got {sample_temperature}")
