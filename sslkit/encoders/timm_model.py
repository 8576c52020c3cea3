"""Any timm model as an image encoder (``pip install sslkit[timm]``); nothing is downloaded."""
from __future__ import annotations

from typing import Optional

from ..data import DataInfo
from ..errors import ConfigError, did_you_mean
from ..registry import register
from .base import Encoder
from .images import load_export_into, probe_features, require_images, small_image_stem


@register("encoders", "timm")
class TimmEncoder(Encoder):
    """``timm.create_model(model, num_classes=0, in_chans=C, **model_args)``: the model's pooled
    pre-logit features (``num_features``-d). With ``pretrained_file`` the weights come from that local
    file through timm's own loader (``pretrained_cfg_overlay={'file': ...}``), which also adapts the
    first convolution to the data's channel count and drops the classifier; timm never downloads.

    model: a ``timm.list_models()`` name (e.g. ``resnet50``, ``vit_small_patch16_224``).
    pretrained_file: a local ``.safetensors``/``.pth`` of that model's weights (null: random init).
    small_input: replace a ResNet-style stem by a 3x3 stride-1 convolution without max-pool (for
    32x32-96x96 images). model_args: more keyword arguments of ``timm.create_model`` (e.g.
    ``{img_size: 96}`` for a ViT, ``{drop_path_rate: 0.1}``).
    """

    input_shape: tuple  # (C, H, W) of the data it was built for

    def __init__(self, info: DataInfo, *, model: str = "resnet18", pretrained_file: Optional[str] = None,
                 small_input: bool = False, model_args: Optional[dict] = None):
        super().__init__()
        try:
            import timm
        except ImportError:
            raise ConfigError("encoder.name", "'timm' needs the timm package: pip install 'sslkit[timm]'") from None
        require_images(info, "timm")
        if not timm.is_model(model):
            raise ConfigError("encoder.model", f"unknown timm model '{model}'"
                                               f"{did_you_mean(model, timm.list_models())}")
        self.input_shape = tuple(info.input_shape)
        self.model_name, self.small_input = model, small_input
        self.model_args = {"in_chans": info.input_shape[0], **(model_args or {})}
        kwargs = dict(num_classes=0, **self.model_args)
        if pretrained_file is not None:
            from .images import load_weights_file

            load_weights_file(pretrained_file, "encoder.pretrained_file")  # one clear line if unreadable
            kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(pretrained_file)})
        try:
            self.net = timm.create_model(model, **kwargs)
        except (TypeError, RuntimeError, ValueError) as exc:
            key = "encoder.pretrained_file" if pretrained_file else "encoder.model_args"
            raise ConfigError(key, f"timm could not build '{model}': {str(exc).splitlines()[0][:300]}") from None
        if small_input:
            small_image_stem(self.net, info.input_shape[0])
        self.out_dim = probe_features(self.net, info, f"timm {model}")

    def forward(self, x):
        return self.net(x)

    def load_export(self, directory) -> None:
        """Start from an exported folder (``encoder.init_from``)."""
        load_export_into(self.net, directory)

    def export(self, directory) -> None:
        """timm's own format (``config.json`` + ``model.safetensors``, written by
        ``timm.models.save_for_hf``): ``timm.create_model('local-dir:DIR', pretrained=True)`` loads it."""
        from timm.models import save_for_hf

        if self.small_input:
            raise ConfigError("encoder.small_input", "a model with sslkit's small-image stem is not a timm "
                                                     "architecture, so timm could not load the export")
        save_for_hf(self.net, str(directory), model_args=self.model_args, safe_serialization=True)
