"""Registries and the list/describe commands."""
from __future__ import annotations

import pytest

from sslkit.errors import ConfigError
from sslkit.registry import KINDS, find, register, registry

from conftest import RECIPES, sslkit_cli


def test_core_parts_are_registered():
    expected = {
        "objectives": {"supervised"}, "encoders": {"mlp", "cnn", "resnet18", "transformer"},
        "datasets": {"digits", "moons", "docstrings", "pydoc_topics", "csv", "image_folder", "text_files"},
        "regularizers": {"l1", "l2"}, "optimizers": {"sgd", "adam", "adamw"},
        "schedulers": {"constant", "cosine", "linear"}, "views": {"identity", "weak", "strong"},
        "tokenizers": {"byte", "char"},
    }
    for kind, names in expected.items():
        assert names <= set(registry(kind).names()), kind


def test_params_come_from_keyword_only_signature():
    entry = registry("encoders").get("mlp")
    assert "info" not in entry.params and entry.params["hidden"].default == (256, 256)
    opt = registry("optimizers").get("adamw")
    assert "params" not in opt.params and "lr" in opt.params


def test_unknown_name_suggests():
    with pytest.raises(ConfigError, match="did you mean 'transformer'"):
        registry("encoders").get("transfomer", "encoder.name")


def test_user_parts_register_with_a_decorator():
    @register("regularizers", "test_zero_norm")
    class Zero:
        """Test part."""

        def __init__(self, *, scale: float = 2.0):
            self.scale = scale

    assert find("test_zero_norm")[0].params["scale"].default == 2.0
    with pytest.raises(ValueError):
        register("regularizers", "l2")(Zero)  # a name cannot be taken twice


def test_cli_list_and_describe():
    out = sslkit_cli("list").stdout
    for kind in KINDS:
        assert f"{kind}:" in out
    out = sslkit_cli("list", "encoders").stdout
    assert "mlp" in out and "objectives:" not in out
    proc = sslkit_cli("describe", "mlp")
    assert proc.returncode == 0
    assert "hidden: list = [256, 256]" in proc.stdout and "activation" in proc.stdout and "Flatten" in proc.stdout
    proc = sslkit_cli("describe", "optimizers/adamw")
    assert "lr:" in proc.stdout and "weight_decay" in proc.stdout
    proc = sslkit_cli("validate", str(RECIPES / "supervised_digits.yaml"))
    assert proc.returncode == 0 and "ok" in proc.stdout
