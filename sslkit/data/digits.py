"""scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), shipped with scikit-learn."""
from __future__ import annotations

import torch

from ..registry import register
from .base import DataInfo, Examples


@register("datasets", "digits")
def digits(seed: int) -> Examples:
    """scikit-learn's 8x8 digits as 1x8x8 images scaled to [0, 1]; stratified test split (``test_size``)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    info = DataInfo("image", (1, 8, 8), 10, [str(c) for c in range(10)], name="digits")
    return Examples({"x": x, "y": y}, info)
