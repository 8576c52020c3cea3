"""Users' own images in torchvision's ImageFolder layout (``root/class_name/image.png``), or a flat
folder of unlabeled images (``root/image.png``)."""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConfigError
from ..registry import register
from .base import DataInfo, Examples, LazyColumn


def _flat_folder():
    from torchvision import datasets

    class FlatFolder(datasets.ImageFolder):
        """Every image under ``root`` as one pseudo-class (made unlabeled by the caller)."""

        def find_classes(self, directory):
            return [""], {"": 0}

    return FlatFolder


@register("datasets", "image_folder")
def image_folder(seed: int, *, root: str, image_size: int = 32, grayscale: bool = False) -> Examples:
    """Images under ``root/<class>/``, read lazily with torchvision's ``ImageFolder``, resized to
    ``image_size`` x ``image_size`` and scaled to [0, 1]. A folder with images and no class
    sub-folders gives unlabeled rows (label -1), e.g. for contrastive pretraining.

    root: the folder. image_size: side length after resizing. grayscale: load as one channel.
    """
    from torchvision import datasets, transforms

    if not Path(root).is_dir():
        raise ConfigError("data.root", f"folder not found: {root}")
    tfs = [transforms.Resize((image_size, image_size))]
    if grayscale:
        tfs.append(transforms.Grayscale(1))
    tfs.append(transforms.ToTensor())
    flat = not any(p.is_dir() for p in Path(root).iterdir())  # no class folders: unlabeled images
    try:
        folder = (_flat_folder() if flat else datasets.ImageFolder)(root, transform=transforms.Compose(tfs))
    except (FileNotFoundError, RuntimeError) as exc:
        raise ConfigError("data.root", str(exc)) from None

    def load(i: int) -> torch.Tensor:
        path = folder.samples[i][0]
        try:
            return folder[i][0]
        except Exception as exc:
            raise ConfigError("data.root", f"cannot read image {path}: {exc}") from None

    channels = 1 if grayscale else 3
    y = torch.tensor(folder.targets, dtype=torch.long) - (1 if flat else 0)  # flat: every label -1
    classes = [] if flat else list(folder.classes)
    info = DataInfo("image", (channels, image_size, image_size), len(classes), classes, name="image_folder")
    return Examples({"x": LazyColumn(load, len(folder)), "y": y}, info)
