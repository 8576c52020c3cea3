"""Users' own images in torchvision's ImageFolder layout (``root/class_name/image.png``); images
directly in ``root`` are unlabeled rows."""
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
    ``image_size`` x ``image_size`` and scaled to [0, 1]. Images directly in ``root`` (no class
    folder) are unlabeled rows, for the semi- and self-supervised objectives; a folder of images
    without class folders is an unlabeled dataset.

    root: the folder. image_size: side length after resizing. grayscale: load as one channel.
    """
    from torchvision import datasets, transforms

    if not Path(root).is_dir():
        raise ConfigError("data.root", f"folder not found: {root}")
    tfs = [transforms.Resize((image_size, image_size))]
    if grayscale:
        tfs.append(transforms.Grayscale(1))
    tfs.append(transforms.ToTensor())
    transform = transforms.Compose(tfs)
    samples, classes = [], []
    if any(p.is_dir() for p in Path(root).iterdir()):
        try:
            folder = datasets.ImageFolder(root)
        except (FileNotFoundError, RuntimeError) as exc:
            raise ConfigError("data.root", str(exc)) from None
        samples, classes = list(folder.samples), list(folder.classes)
    samples += [(str(p), -1) for p in sorted(Path(root).iterdir())  # -1: unlabeled
                if p.is_file() and datasets.folder.is_image_file(str(p))]
    if not samples:
        raise ConfigError("data.root", f"no images in {root} or its class folders")

    def load(i: int) -> torch.Tensor:
        path = samples[i][0]
        try:
            return transform(datasets.folder.default_loader(path))
        except Exception as exc:
            raise ConfigError("data.root", f"cannot read image {path}: {exc}") from None

    channels = 1 if grayscale else 3
    y = torch.tensor([target for _, target in samples], dtype=torch.long)
    info = DataInfo("image", (channels, image_size, image_size), len(classes), classes, name="image_folder")
    return Examples({"x": LazyColumn(load, len(samples)), "y": y}, info)
