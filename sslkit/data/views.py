"""Views: random transformations of a batch ``x`` made on the fly for an objective's stream
(registered under ``views``; built with the data's :class:`DataInfo`, so one view name such as
``weak`` or ``strong`` does the right thing for images, tabular rows and token ids).

Every view draws independent randomness per sample but works on the whole batch at once (no
Python loop over samples), so it runs on the GPU next to the model. Randomness comes from
torch's global generator, which the trainer seeds and checkpoints.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..registry import register
from ..schema import NonNegative, Probability
from .base import DataInfo


@register("views", "identity")
class Identity:
    """The input unchanged."""

    def __init__(self, info: DataInfo):
        pass

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x


# ---------------------------------------------------------------- images
def random_affine(x: torch.Tensor, max_shift: float, max_rotate: float = 0.0, max_shear: float = 0.0,
                  max_scale: float = 0.0, flip: bool = False) -> torch.Tensor:
    """Per-sample random translation (fraction of the side), rotation and shear (degrees), scaling
    and horizontal flip, as one batched ``affine_grid``/``grid_sample`` (reflection padding)."""
    B = x.shape[0]
    dev, dt = x.device, torch.float32

    def u(a):  # uniform in [-a, a]
        return (torch.rand(B, device=dev, dtype=dt) * 2 - 1) * a

    angle, shear = u(max_rotate) * math.pi / 180, u(max_shear) * math.pi / 180
    scale = 1 + u(max_scale)
    sx = scale * (torch.where(torch.rand(B, device=dev) < 0.5, -1.0, 1.0) if flip else 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(B, 2, 3, device=dev, dtype=dt)
    theta[:, 0, 0] = cos / sx
    theta[:, 0, 1] = -sin / scale + torch.tan(shear)
    theta[:, 1, 0] = sin / sx
    theta[:, 1, 1] = cos / scale
    theta[:, :, 2] = torch.stack([u(2 * max_shift), u(2 * max_shift)], 1)  # grid spans [-1, 1]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x.float(), grid, padding_mode="reflection", align_corners=False).to(x.dtype)


def random_color(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-sample brightness and contrast jitter of ``±strength``, clamped to [0, 1]."""
    B = x.shape[0]
    shape = (B,) + (1,) * (x.dim() - 1)
    bright = 1 + (torch.rand(shape, device=x.device) * 2 - 1) * strength
    contrast = 1 + (torch.rand(shape, device=x.device) * 2 - 1) * strength
    mean = x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
    return ((x - mean) * contrast + mean * bright).clamp(0, 1)


def cutout(x: torch.Tensor, size: float) -> torch.Tensor:
    """Zero one random square of side ``size`` (fraction of the image side) per sample."""
    B, _, H, W = x.shape
    h, w = max(1, round(H * size)), max(1, round(W * size))
    top = torch.randint(0, H - h + 1, (B, 1, 1), device=x.device)
    left = torch.randint(0, W - w + 1, (B, 1, 1), device=x.device)
    rows = torch.arange(H, device=x.device).view(1, H, 1)
    cols = torch.arange(W, device=x.device).view(1, 1, W)
    hole = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
    return x.masked_fill(hole.unsqueeze(1), 0.0)


# ---------------------------------------------------------------- tokens
def mask_tokens(ids: torch.Tensor, prob: float, tokenizer) -> torch.Tensor:
    """Replace each non-special token with ``<mask>`` with probability ``prob``."""
    special = torch.zeros_like(ids, dtype=torch.bool)
    for s in tokenizer.special_ids:
        special |= ids == s
    hit = (torch.rand(ids.shape, device=ids.device) < prob) & ~special
    return ids.masked_fill(hit, tokenizer.mask_id)


class _ModalityView:
    """Dispatches to ``image``, ``tabular`` or ``text`` by the data's modality."""

    def __init__(self, info: DataInfo):
        self.info = info

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.info.modality)(x)


@register("views", "weak")
class Weak(_ModalityView):
    """FixMatch's weak augmentation. Images: random shift of up to ``shift`` of the side (and a
    horizontal flip if ``flip``). Tabular: Gaussian jitter with std ``noise``. Text: ``<mask>`` on a
    ``mask_prob`` fraction of tokens.

    shift: max translation as a fraction of the image side. flip: random horizontal flips (off for
    digits and text-like images). noise: tabular jitter std. mask_prob: text masking rate.
    """

    def __init__(self, info: DataInfo, *, shift: NonNegative = 0.125, flip: bool = False, noise: NonNegative = 0.05,
                 mask_prob: Probability = 0.1):
        super().__init__(info)
        self.shift, self.flip, self.noise, self.mask_prob = shift, flip, noise, mask_prob

    def image(self, x):
        return random_affine(x, self.shift, flip=self.flip)

    def tabular(self, x):
        return x + self.noise * torch.randn_like(x)

    def text(self, x):
        return mask_tokens(x, self.mask_prob, self.info.tokenizer)


@register("views", "strong")
class Strong(_ModalityView):
    """RandAugment-style strong augmentation, batched. Images: random affine (shift, rotation,
    shear, scale), brightness/contrast jitter and cutout, each magnitude drawn per sample up to
    ``magnitude`` times its maximum. Tabular: Gaussian jitter with std ``noise``. Text: ``<mask>``
    on a ``mask_prob`` fraction of tokens.

    magnitude: overall strength in [0, 1]. shift: max translation (fraction of the side).
    flip: random horizontal flips. cutout: side of the erased square (fraction of the side, 0 to
    disable). noise: tabular jitter std. mask_prob: text masking rate.
    """

    def __init__(self, info: DataInfo, *, magnitude: Probability = 1.0, shift: NonNegative = 0.125, flip: bool = False,
                 cutout: Probability = 0.375, noise: NonNegative = 0.2, mask_prob: Probability = 0.3):
        super().__init__(info)
        self.magnitude, self.shift, self.flip, self.cut = magnitude, shift, flip, cutout
        self.noise, self.mask_prob = noise, mask_prob

    def image(self, x):
        m = self.magnitude
        x = random_affine(x, self.shift, max_rotate=30 * m, max_shear=20 * m, max_scale=0.2 * m, flip=self.flip)
        x = random_color(x, 0.5 * m)
        return cutout(x, self.cut) if self.cut else x

    def tabular(self, x):
        return x + self.noise * torch.randn_like(x)

    def text(self, x):
        return mask_tokens(x, self.mask_prob, self.info.tokenizer)
