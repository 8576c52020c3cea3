"""What the image backbones (``wrn``, ``timm``, ``torchvision``) share: refusing data they cannot
take with one line naming the key, the small-image stem, and writing an export folder."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..data import DataInfo
from ..errors import ConfigError


def require_images(info: DataInfo, name: str, channels: int | None = None) -> None:
    """Raise a ConfigError at ``encoder.name`` unless the data are images (with ``channels`` channels)."""
    if info.modality != "image" or len(info.input_shape) != 3:
        raise ConfigError("encoder.name", f"'{name}' takes images [C, H, W], not {info.modality} data")
    if channels is not None and info.input_shape[0] != channels:
        kind = "grayscale" if info.input_shape[0] == 1 else f"{info.input_shape[0]}-channel"
        raise ConfigError("data.name", f"dataset '{info.name}' has {kind} images but encoder '{name}' takes "
                                       f"{channels}-channel (RGB) images; load the dataset as RGB "
                                       f"(data.rgb: true) or pick an encoder built for its channels")


@torch.no_grad()
def probe_features(net: nn.Module, info: DataInfo, name: str) -> int:
    """Run two blank images of the data's shape through ``net`` (eval mode) and return the feature
    width; a backbone that cannot take that size (e.g. a ViT built for 224x224, or a map reduced
    below 1x1) is refused here, at build time, with one line instead of failing in the first step."""
    was_training = net.training
    net.eval()
    try:
        out = net(torch.zeros(2, *info.input_shape))
    except (RuntimeError, AssertionError, ValueError) as exc:
        shape = "x".join(map(str, info.input_shape))
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ConfigError("encoder.name", f"'{name}' cannot take the {shape} images of dataset "
                                          f"'{info.name}': {first}") from None
    finally:
        net.train(was_training)
    if out.dim() != 2:
        raise ConfigError("encoder.name", f"'{name}' returns features of shape {tuple(out.shape[1:])}, "
                                          f"expected a vector per image")
    return out.shape[1]


def small_image_stem(net: nn.Module, in_chans: int, key: str = "encoder.small_input") -> None:
    """Adapt a ResNet-style stem to 32x32-96x96 images (the CIFAR stem of FixMatch's and SimCLR's
    ResNets): the first convolution becomes 3x3 with stride 1 (re-initialised; pretrained stem
    weights do not fit it) and the max-pool goes, so the first stage sees the full resolution."""
    conv1, pool = getattr(net, "conv1", None), getattr(net, "maxpool", None)
    if pool is None or conv1 is None:
        raise ConfigError(key, f"the small-image stem is for ResNet-style models (conv1 + maxpool); "
                               f"{type(net).__name__} has no such stem")
    if isinstance(conv1, nn.Sequential):  # timm's deep stems ('resnet10t', 'resnet50d'): drop the first stride
        first = conv1[0]
        conv1[0] = nn.Conv2d(in_chans, first.out_channels, 3, 1, 1, bias=first.bias is not None)
    else:
        net.conv1 = nn.Conv2d(in_chans, conv1.out_channels, 3, 1, 1, bias=conv1.bias is not None)
    net.maxpool = nn.Identity()


def load_weights_file(path: str, key: str) -> dict:
    """A state dict from ``path`` (``.safetensors`` or a ``torch.save`` file, loaded with
    ``weights_only=True``); a missing or unreadable file is a ConfigError at ``key``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(key, f"weights file not found: {path} (give a local file; nothing is downloaded)")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(p))
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign files raise many types
        raise ConfigError(key, f"cannot read weights from {path}: {str(exc).splitlines()[0][:200]}") from None
    for wrapper in ("state_dict", "model"):  # training checkpoints nest the weights
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise ConfigError(key, f"{path} does not hold a state dict")
    return state


def write_export(directory, state: dict, config: dict) -> None:
    """``model.safetensors`` (contiguous CPU tensors) and ``config.json`` in ``directory``."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def load_export_into(module, directory, path: str = "encoder.init_from") -> None:
    """Load the ``model.safetensors`` that :func:`write_export` (or timm's ``save_for_hf``) wrote into
    ``module``: what ``encoder.init_from`` does with an exported folder of an image encoder."""
    from safetensors.torch import load_file

    weights = Path(directory) / "model.safetensors"
    if not weights.is_file():
        raise ConfigError(path, f"{directory} has no model.safetensors")
    try:
        module.load_state_dict(load_file(str(weights)))
    except RuntimeError as exc:
        raise ConfigError(path, f"{weights} does not hold weights for this encoder: "
                                f"{' '.join(str(exc).split())[:400]}") from None
