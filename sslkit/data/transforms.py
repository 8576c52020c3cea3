"""Per-sample image augmentation with ``torchvision.transforms.v2``, run in DataLoader workers on
``uint8`` images (see :mod:`sslkit.data.loader`): the per-sample forms of the registered ``weak``,
``strong`` and ``crop`` views, with FixMatch's settings.

``weak`` (FixMatch / USB): a random crop after reflection padding of ``shift`` of the side (4 pixels
at 32x32) and, with ``flip``, a horizontal flip. ``strong``: the weak crop and flip, then FixMatch's
RandAugment (``num_ops = 2`` operations drawn from 14 with a magnitude drawn uniformly from each
operation's range times ``magnitude``, Sohn et al. 2020, Table 12) and Cutout of a square up to
``cutout`` of the side (FixMatch: 0.5) filled with grey. ``crop``: SimCLR's random resized crop,
flip, colour jitter (p = 0.8) and grayscale (p = 0.2).

Every random draw uses torch's default generator, which :mod:`sslkit.data.loader` seeds per sample.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Optional

import torch

from .views import Identity, Strong, Weak
from .views_contrastive import Crop

NUM_OPS = 2  # FixMatch's RandAugment: two operations per image
FILL = (125, 123, 114)  # Cutout's grey (USB's colour, the CIFAR mean)


def _u(lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(()))


def _shear(img, v, axis):
    from torchvision.transforms.v2 import functional as F

    angle = math.degrees(math.atan(v))
    return F.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=[angle, 0.0] if axis == 0 else [0.0, angle])


def _translate(img, v, axis):
    from torchvision.transforms.v2 import functional as F

    side = img.shape[-1] if axis == 0 else img.shape[-2]
    shift = [v * side, 0.0] if axis == 0 else [0.0, v * side]
    return F.affine(img, angle=0.0, translate=shift, scale=1.0, shear=[0.0, 0.0])


@lru_cache(maxsize=None)
def fixmatch_ops() -> tuple:
    """(operation, low, high) of FixMatch's RandAugment pool; the magnitude is drawn in [low, high].
    (Built on first use: torchvision is imported only by runs that augment per sample.)"""
    from torchvision.transforms.v2 import functional as F

    return (
        (lambda img, v: F.autocontrast(img), 0, 1),
        (F.adjust_brightness, 0.05, 0.95),
        (F.adjust_saturation, 0.05, 0.95),
        (F.adjust_contrast, 0.05, 0.95),
        (lambda img, v: F.equalize(img), 0, 1),
        (lambda img, v: img, 0, 1),
        (lambda img, v: F.posterize(img, int(v)), 4, 8),
        (lambda img, v: F.rotate(img, v), -30, 30),
        (F.adjust_sharpness, 0.05, 0.95),
        (lambda img, v: _shear(img, v, 0), -0.3, 0.3),
        (lambda img, v: _shear(img, v, 1), -0.3, 0.3),
        (lambda img, v: F.solarize(img, min(v, 255.0)), 0, 256),
        (lambda img, v: _translate(img, v, 0), -0.3, 0.3),
        (lambda img, v: _translate(img, v, 1), -0.3, 0.3),
    )


class FixMatchRandAugment(torch.nn.Module):
    """RandAugment as FixMatch uses it: ``num_ops`` operations drawn with replacement from :func:`fixmatch_ops`,
    each with a magnitude drawn uniformly from its range (shrunk towards the identity by
    ``magnitude`` in [0, 1]), on a ``uint8`` ``[C, H, W]`` image.

    num_ops: operations per image. magnitude: fraction of each operation's range used.
    """

    def __init__(self, num_ops: int = NUM_OPS, magnitude: float = 1.0):
        super().__init__()
        self.num_ops, self.magnitude = num_ops, magnitude

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        ops = fixmatch_ops()
        for k in torch.randint(len(ops), (self.num_ops,)).tolist():
            op, lo, hi = ops[k]
            mid = (lo + hi) / 2 if lo < 0 else lo  # signed ranges shrink towards 0, others towards low
            m = self.magnitude
            img = op(img, _u(mid + (lo - mid) * m, mid + (hi - mid) * m))
        return img


class Cutout(torch.nn.Module):
    """Fill one square of side ``v * W`` with ``v ~ U(0, size)``, centred uniformly (clipped at the
    border), with grey (FixMatch's Cutout; ``size`` = 0.5 there)."""

    def __init__(self, size: float = 0.5):
        super().__init__()
        self.size = size

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        c, h, w = img.shape
        v = _u(0.0, self.size) * w
        if v <= 0:
            return img
        x0, y0 = _u(0, w), _u(0, h)
        x0, y0 = int(max(0, x0 - v / 2)), int(max(0, y0 - v / 2))
        x1, y1 = int(min(w, x0 + v)), int(min(h, y0 + v))
        img = img.clone()
        fill = torch.tensor(FILL[:c] if c == 3 else (sum(FILL) // 3,) * c, dtype=img.dtype)
        img[:, y0:y1, x0:x1] = fill.view(c, 1, 1)
        return img


def _unchanged(img):  # a module-level function: picklable for spawned workers
    return img


def weak_transform(side: int, shift: float, flip: bool):
    """Random crop of the ``side`` x ``side`` image after reflection padding of ``shift * side``, and a flip."""
    from torchvision.transforms import v2

    ops = [v2.RandomCrop(side, padding=round(shift * side), padding_mode="reflect")]
    if flip:
        ops.append(v2.RandomHorizontalFlip())
    return v2.Compose(ops)


def per_sample(view, shape: tuple) -> Optional[Callable]:
    """The per-sample ``uint8`` form of a built view, or None when it has none (such views are applied
    to the batch after it reaches the device, as for in-memory data). ``shape``: ``(C, H, W)``."""
    from torchvision.transforms import v2

    c, h, w = shape
    side = min(h, w)
    if type(view) is Identity:
        return _unchanged
    if type(view) is Weak:
        return weak_transform(side, view.shift, view.flip)
    if type(view) is Strong:
        ops = [weak_transform(side, view.shift, view.flip), FixMatchRandAugment(NUM_OPS, view.magnitude)]
        return v2.Compose(ops + ([Cutout(view.cut)] if view.cut else []))
    if type(view) is Crop:
        ops = [v2.RandomResizedCrop((h, w), scale=tuple(view.scale), ratio=tuple(view.ratio), antialias=True),
               v2.RandomHorizontalFlip()]
        if view.rotate:
            ops.append(v2.RandomRotation(view.rotate))
        if view.color:
            s = view.color
            ops.append(v2.RandomApply([v2.ColorJitter(s, s, s if c == 3 else 0, 0.1 if c == 3 else 0)], p=0.8))
        if c == 3:
            ops.append(v2.RandomGrayscale(0.2))
        return v2.Compose(ops)
    return None
