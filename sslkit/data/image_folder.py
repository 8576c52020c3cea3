"""Users' own images in torchvision's ImageFolder layout (``root/class_name/image.png``)."""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConfigError
from ..registry import register
from ..schema import Count
from .base import DataInfo, Examples, LazyColumn


@register("datasets", "image_folder")
def image_folder(seed: int, *, root: str, image_size: Count = 32, grayscale: bool = False) -> Examples:
    """Images under ``root/<class>/``, read lazily with torchvision's ``ImageFolder``, resized to
    ``image_size`` x ``image_size`` and scaled to [0, 1].

    root: the folder. image_size: side length after resizing. grayscale: load as one channel.
    """
    from torchvision import datasets, transforms

    if not Path(root).is_dir():
        raise ConfigError("data.root", f"folder not found: {root}")
    tfs = [transforms.Resize((image_size, image_size))]
    if grayscale:
        tfs.append(transforms.Grayscale(1))
    tfs.append(transforms.ToTensor())
    try:
        folder = datasets.ImageFolder(root, transform=transforms.Compose(tfs))
    except (FileNotFoundError, RuntimeError) as exc:
        raise ConfigError("data.root", str(exc)) from None

    def load(i: int) -> torch.Tensor:
        path = folder.samples[i][0]
        try:
            return folder[i][0]
        except Exception as exc:
            raise ConfigError("data.root", f"cannot read image {path}: {exc}") from None

    channels = 1 if grayscale else 3
    y = torch.tensor(folder.targets, dtype=torch.long)
    info = DataInfo("image", (channels, image_size, image_size), len(folder.classes), list(folder.classes),
                    name="image_folder")
    return Examples({"x": LazyColumn(load, len(folder)), "y": y}, info)
