"""torchvision's classification models by name as image encoders, weights from a local file."""
from __future__ import annotations

from typing import Optional

from torch import nn

from ..data import DataInfo
from ..errors import ConfigError, did_you_mean
from ..registry import register
from .base import Encoder
from .images import load_export_into, load_weights_file, probe_features, require_images, small_image_stem, write_export

HEADS = ("fc", "classifier", "heads", "head")  # where torchvision's models keep their classifier


def drop_classifier(net: nn.Module) -> str:
    """Replace the model's last classification ``Linear`` by an identity and return its dotted name
    (``fc`` for ResNets, ``classifier.3`` for MobileNetV3, ``heads.head`` for ViT), so the encoder returns
    the pre-logit features and layers before the last one (e.g. VGG's 4096-d MLP) are kept."""
    for attr in HEADS:
        head = getattr(net, attr, None)
        if isinstance(head, nn.Linear):
            setattr(net, attr, nn.Identity())
            return attr
        if isinstance(head, nn.Module):
            linears = [n for n, m in head.named_modules() if isinstance(m, nn.Linear)]
            if linears:
                parent_name, _, leaf = linears[-1].rpartition(".")
                parent = head.get_submodule(parent_name) if parent_name else head
                setattr(parent, leaf, nn.Identity())
                return f"{attr}.{linears[-1]}"
    raise ConfigError("encoder.model", f"cannot find the classifier of torchvision's {type(net).__name__}")


@register("encoders", "torchvision")
class TorchvisionEncoder(Encoder):
    """``torchvision.models.get_model(model)`` without its last classification layer: the pooled
    pre-logit features. Weights come from ``weights_file`` (a local state dict of the full model as
    torchvision saves it, e.g. a downloaded ``resnet50-11ad3fa6.pth``); nothing is downloaded.

    model: a ``torchvision.models.list_models()`` classification name. weights_file: a local
    ``.pth``/``.safetensors`` (null: random init). small_input: the 3x3 stride-1 stem without max-pool
    for 32x32-96x96 images (ResNets; the stem is re-initialised). model_args: more keyword arguments of
    ``get_model`` (e.g. ``{image_size: 32}`` for a ViT).
    """

    input_shape: tuple  # (C, H, W) of the data it was built for

    def __init__(self, info: DataInfo, *, model: str = "resnet18", weights_file: Optional[str] = None,
                 small_input: bool = False, model_args: Optional[dict] = None):
        super().__init__()
        import torchvision

        names = torchvision.models.list_models(module=torchvision.models)
        if model not in names:
            raise ConfigError("encoder.model", f"unknown torchvision model '{model}'{did_you_mean(model, names)}")
        # ImageNet backbones take RGB; only the rebuilt small-image stem takes other channel counts
        require_images(info, "torchvision", None if small_input else 3)
        self.input_shape = tuple(info.input_shape)
        self.model_name, self.small_input, self.model_args = model, small_input, dict(model_args or {})
        try:
            self.net = torchvision.models.get_model(model, weights=None, **self.model_args)
        except (TypeError, ValueError) as exc:
            raise ConfigError("encoder.model_args", f"torchvision could not build '{model}': {exc}") from None
        if weights_file is not None:
            state = load_weights_file(weights_file, "encoder.weights_file")
            try:
                self.net.load_state_dict(state)
            except RuntimeError as exc:
                raise ConfigError("encoder.weights_file", f"{weights_file} does not hold weights for "
                                                          f"{model}: {' '.join(str(exc).split())[:300]}") from None
        self.head = drop_classifier(self.net)
        if small_input:
            small_image_stem(self.net, info.input_shape[0])
        self.out_dim = probe_features(self.net, info, f"torchvision {model}")

    def forward(self, x):
        return self.net(x)

    def load_export(self, directory) -> None:
        """Start from an exported folder (``encoder.init_from``)."""
        load_export_into(self.net, directory)

    def export(self, directory) -> None:
        """``model.safetensors`` (the model's state dict without the removed classifier) and
        ``config.json``; torchvision alone reloads it: ``m = get_model(name, weights=None, **model_args)``,
        set the module named by ``removed_classifier`` to ``nn.Identity()``, ``m.load_state_dict(...)``."""
        if self.small_input:
            raise ConfigError("encoder.small_input", "a model with sslkit's small-image stem is not a "
                                                     "torchvision architecture, so torchvision could not load it")
        write_export(directory, self.net.state_dict(), {
            "library": "torchvision", "architecture": self.model_name, "model_args": self.model_args,
            "removed_classifier": self.head, "num_features": self.out_dim, "input_shape": list(self.input_shape)})
