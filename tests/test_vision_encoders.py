"""The image backbones: WideResNet as in FixMatch/USB, timm and torchvision models from local weights
files, their exports re-loaded by timm / torchvision alone, and clear errors for data they cannot take."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from sslkit.data import DataInfo
from sslkit.encoders.capabilities import Exportable, ImageEncoder
from sslkit.errors import ConfigError
from sslkit.schema import build

CIFAR = DataInfo("image", (3, 32, 32), 10, name="cifar10")
GRAY = DataInfo("image", (1, 28, 28), 10, name="mnist")


def test_wrn_28_2_matches_fixmatch():
    enc = build("encoders", "wrn", CIFAR)
    assert isinstance(enc, ImageEncoder) and isinstance(enc, Exportable) and enc.input_shape == (3, 32, 32)
    assert enc.out_dim == 128
    # WRN-28-2 has 1.47M parameters with its 10-way classifier (FixMatch's table: 1.5M)
    n = sum(p.numel() for p in enc.parameters()) + 128 * 10 + 10
    assert 1_460_000 < n < 1_480_000, n
    bns = [m for m in enc.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.momentum == 0.001 and m.eps == 0.001 for m in bns)
    acts = [m for m in enc.modules() if isinstance(m, nn.LeakyReLU)]
    assert acts and all(m.negative_slope == 0.1 for m in acts)
    assert len([m for m in enc.modules() if type(m).__name__ == "BasicBlock"]) == 12  # (28 - 4) / 6 per stage
    assert enc(torch.rand(2, 3, 32, 32)).shape == (2, 128)


def test_wrn_28_8_width_and_bad_depth():
    enc = build("encoders", {"name": "wrn", "depth": 10, "widen_factor": 8}, CIFAR)
    assert enc.out_dim == 512
    with pytest.raises(ConfigError, match="encoder.depth"):
        build("encoders", {"name": "wrn", "depth": 27}, CIFAR)


def test_wrn_export_reloads(tmp_path):
    from safetensors.torch import load_file

    from sslkit.encoders.wrn import WideResNet

    enc = build("encoders", {"name": "wrn", "depth": 10}, CIFAR).eval()
    enc.export(tmp_path / "wrn")
    cfg = json.loads((tmp_path / "wrn" / "config.json").read_text())
    assert cfg["architecture"] == "wrn_10_2" and "block1.layer.0.convShortcut.weight" in load_file(
        str(tmp_path / "wrn" / "model.safetensors"))
    again = WideResNet(DataInfo("image", tuple(cfg["input_shape"])), depth=cfg["depth"],
                       widen_factor=cfg["widen_factor"]).eval()
    again.load_state_dict(load_file(str(tmp_path / "wrn" / "model.safetensors")))
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(enc(x), again(x))


def test_timm_from_local_file_and_export(tmp_path):
    import timm

    ref = timm.create_model("test_resnet", num_classes=7).eval()
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    enc = build("encoders", {"name": "timm", "model": "test_resnet", "pretrained_file": str(tmp_path / "w.pth")},
                CIFAR).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = ref.forward_head(ref.forward_features(x), pre_logits=True)
        assert torch.allclose(enc(x), expected, atol=1e-6)
    assert isinstance(enc, Exportable) and enc.out_dim == expected.shape[1]
    enc.export(tmp_path / "export")
    loaded = timm.create_model(f"local-dir:{tmp_path / 'export'}", pretrained=True).eval()  # timm alone
    with torch.no_grad():
        assert torch.allclose(loaded(x), enc(x), atol=1e-6)


def test_timm_small_stem_and_wrong_size():
    enc = build("encoders", {"name": "timm", "model": "test_resnet", "small_input": True}, GRAY)
    assert enc(torch.rand(2, 1, 28, 28)).shape == (2, enc.out_dim)
    with pytest.raises(ConfigError, match="encoder.name: 'timm test_vit' cannot take the 3x32x32 images .* "
                                          "Input height \\(32\\) doesn't match model \\(160\\)"):
        build("encoders", {"name": "timm", "model": "test_vit", "model_args": {"dynamic_img_size": False}}, CIFAR)
    with pytest.raises(ConfigError, match="encoder.model: unknown timm model 'resnet_18'"):
        build("encoders", {"name": "timm", "model": "resnet_18"}, CIFAR)
    with pytest.raises(ConfigError, match="encoder.pretrained_file: weights file not found"):
        build("encoders", {"name": "timm", "model": "test_resnet", "pretrained_file": "/nonexistent.pth"}, CIFAR)


def test_torchvision_from_local_file_and_export(tmp_path):
    from safetensors.torch import load_file
    from torchvision.models import get_model

    ref = get_model("resnet18", weights=None).eval()
    torch.save(ref.state_dict(), tmp_path / "resnet18.pth")
    enc = build("encoders", {"name": "torchvision", "model": "resnet18",
                             "weights_file": str(tmp_path / "resnet18.pth")}, CIFAR).eval()
    x = torch.rand(2, 3, 32, 32)
    ref.fc = nn.Identity()
    with torch.no_grad():
        assert torch.allclose(enc(x), ref(x), atol=1e-6)
    enc.export(tmp_path / "export")
    cfg = json.loads((tmp_path / "export" / "config.json").read_text())
    loaded = get_model(cfg["architecture"], weights=None, **cfg["model_args"]).eval()  # torchvision alone
    parent, _, leaf = cfg["removed_classifier"].rpartition(".")
    setattr(loaded.get_submodule(parent) if parent else loaded, leaf, nn.Identity())
    loaded.load_state_dict(load_file(str(tmp_path / "export" / "model.safetensors")))
    with torch.no_grad():
        assert torch.allclose(loaded(x), enc(x), atol=1e-6)


def test_torchvision_classifier_inside_sequential():
    enc = build("encoders", {"name": "torchvision", "model": "mobilenet_v3_small"}, CIFAR)
    assert enc.head == "classifier.3" and enc.out_dim == 1024  # the pre-logit layer is kept


def test_torchvision_refuses_grayscale_and_bad_weights(tmp_path):
    with pytest.raises(ConfigError, match="data.name: dataset 'mnist' has grayscale images but encoder "
                                          "'torchvision' takes 3-channel"):
        build("encoders", {"name": "torchvision", "model": "resnet18"}, GRAY)
    enc = build("encoders", {"name": "torchvision", "model": "resnet18", "small_input": True}, GRAY)
    assert enc(torch.rand(2, 1, 28, 28)).shape == (2, 512)
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="encoder.weights_file: cannot read weights from .*bad.pth"):
        build("encoders", {"name": "torchvision", "model": "resnet18", "weights_file": str(tmp_path / "bad.pth")},
              CIFAR)
    torch.save(get_small_state(), tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="does not hold weights for resnet18"):
        build("encoders", {"name": "torchvision", "model": "resnet18", "weights_file": str(tmp_path / "other.pth")},
              CIFAR)


def get_small_state():
    return nn.Linear(3, 2).state_dict()


def test_image_backbones_refuse_other_modalities():
    for name in ("wrn", "timm", "torchvision"):
        with pytest.raises(ConfigError, match="takes images"):
            build("encoders", name, DataInfo("tabular", (4,), 2))


@pytest.mark.parametrize("spec", [{"name": "wrn", "depth": 10}, {"name": "timm", "model": "test_resnet"},
                                  {"name": "torchvision", "model": "resnet18"}], ids=["wrn", "timm", "torchvision"])
def test_an_exported_image_encoder_starts_a_new_one(spec, tmp_path):
    """``encoder.init_from`` on an export folder: a freshly initialised encoder reads the weights back."""
    from sslkit.export import load_export

    torch.manual_seed(0)
    trained = build("encoders", spec, CIFAR).eval()
    trained.export(tmp_path / "e")
    (tmp_path / "e" / "sslkit_encoder.json").write_text(json.dumps({"format": "own"}))  # as sslkit export adds
    torch.manual_seed(1)
    fresh = build("encoders", spec, CIFAR).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(fresh(x), trained(x))
        load_export(fresh, tmp_path / "e")
        assert torch.allclose(fresh(x), trained(x), atol=1e-6)
    other = build("encoders", {"name": "wrn", "depth": 16}, CIFAR) if spec["name"] == "wrn" else None
    if other is not None:
        with pytest.raises(ConfigError, match="encoder.init_from: .*model.safetensors does not hold weights"):
            load_export(other, tmp_path / "e")
