"""Views for contrastive learning: stronger geometric augmentation than FixMatch's weak view,
sized for small images (8x8 digits up to 32x32), batched with per-sample randomness.

``crop`` is SimCLR's recipe adapted to tiny images: a random resized crop (zoom into a random
part of the image and resize it back), a small rotation, brightness/contrast jitter and additive
Gaussian noise, all as one ``affine_grid``/``grid_sample`` plus elementwise ops on the batch.
Text batches get token dropout and span deletion (see :mod:`sslkit.data.views_text`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..registry import register
from ..schema import NonNegative, Probability, Rate
from .base import DataInfo
from .views import _ModalityView, random_color


def random_resized_crop(x: torch.Tensor, scale: tuple = (0.5, 1.0), ratio: tuple = (3 / 4, 4 / 3),
                        max_rotate: float = 0.0) -> torch.Tensor:
    """Per sample: keep a random window covering a ``scale`` fraction of the area with aspect ratio
    in ``ratio`` (log-uniform), rotated by up to ``max_rotate`` degrees, resized back to the input
    size (bilinear, border padding where a rotated window leaves the image)."""
    B = x.shape[0]
    dev = x.device

    def uniform(lo, hi):
        return lo + (hi - lo) * torch.rand(B, device=dev)

    area = uniform(*scale)
    log_r = uniform(math.log(ratio[0]), math.log(ratio[1]))
    aspect = torch.exp(log_r)
    w = torch.sqrt(area * aspect).clamp(max=1.0)  # window side as a fraction of the image side
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = uniform(-1.0, 1.0) * (1 - w)  # window centre in the grid's [-1, 1] coordinates, kept inside
    cy = uniform(-1.0, 1.0) * (1 - h)
    angle = uniform(-max_rotate, max_rotate) * math.pi / 180
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([w * cos, -h * sin, cx], 1), torch.stack([w * sin, h * cos, cy], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x.float(), grid, padding_mode="border", align_corners=False).to(x.dtype)


@register("views", "crop")
class Crop(_ModalityView):
    """Contrastive view. Images: random resized crop of ``scale`` of the area (aspect ``ratio``),
    rotation up to ``rotate`` degrees, brightness/contrast jitter ``color`` and Gaussian noise of std
    ``noise``, clamped to [0, 1]. Tabular: Gaussian jitter of std ``noise`` and each feature zeroed
    with probability ``feature_drop``. Text: token dropout (``token_drop``) then one deleted span of up
    to ``span`` of the tokens (see ``sslkit.data.views_text``).

    scale: [min, max] area fraction kept. ratio: [min, max] aspect ratio. rotate: degrees.
    color: brightness/contrast jitter strength. noise: Gaussian noise std. feature_drop: tabular
    masking rate. token_drop: text dropout rate. span: text span-deletion fraction.
    """

    def __init__(self, info: DataInfo, *, scale: tuple[float, float] = (0.5, 1.0),
                 ratio: tuple[float, float] = (0.75, 1.3333), rotate: NonNegative = 15.0, color: NonNegative = 0.3,
                 noise: NonNegative = 0.05, feature_drop: Rate = 0.1, token_drop: Rate = 0.1, span: Probability = 0.2):
        super().__init__(info)
        self.scale, self.ratio, self.rotate, self.color, self.noise = scale, ratio, rotate, color, noise
        self.feature_drop, self.token_drop, self.span = feature_drop, token_drop, span

    def image(self, x):
        x = random_resized_crop(x, self.scale, self.ratio, self.rotate)
        if self.color:
            x = random_color(x, self.color)
        if self.noise:
            x = (x + self.noise * torch.randn_like(x)).clamp(0, 1)
        return x

    def tabular(self, x):
        keep = torch.rand_like(x) >= self.feature_drop
        return (x + self.noise * torch.randn_like(x)) * keep

    def text(self, x):
        from .views_text import delete_span, drop_tokens

        return delete_span(drop_tokens(x, self.token_drop, self.info.tokenizer), self.span, self.info.tokenizer)
