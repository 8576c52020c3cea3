"""Encoders map a batch to [B, out_dim] on every data they accept."""
from __future__ import annotations

import pytest
import torch

from sslkit.data import DataInfo
from sslkit.errors import ConfigError
from sslkit.schema import build
from sslkit.text.tokenizers import ByteTokenizer


@pytest.mark.parametrize("name,shape", [("mlp", (1, 8, 8)), ("cnn", (1, 8, 8)), ("cnn", (3, 32, 32)),
                                        ("resnet18", (1, 8, 8)), ("resnet18", (3, 32, 32))])
def test_vision_encoders(name, shape):
    info = DataInfo("image", shape, 10)
    enc = build("encoders", {"name": name, **({"width": 16} if name == "resnet18" else {})}, info)
    out = enc(torch.rand(4, *shape))
    assert out.shape == (4, enc.out_dim)


def test_transformer_ignores_padding():
    tok = ByteTokenizer()
    info = DataInfo("text", (16,), 2, tokenizer=tok)
    enc = build("encoders", {"name": "transformer", "dim": 32, "depth": 2, "heads": 4, "dropout": 0.0}, info).eval()
    short = tok.encode_batch(["hello"], 8)
    padded = tok.encode_batch(["hello"], 16)
    a, b = enc(short), enc(padded)
    assert a.shape == (1, 32)
    assert torch.allclose(a, b, atol=1e-5), "mean pooling over real tokens must not see padding"
    assert enc.forward_tokens(padded).shape == (1, 16, 32)


def test_encoder_rejects_wrong_modality():
    with pytest.raises(ConfigError, match="takes text"):
        build("encoders", "transformer", DataInfo("image", (1, 8, 8), 10))
    with pytest.raises(ConfigError, match="divisible"):
        build("encoders", {"name": "transformer", "dim": 30, "heads": 4}, DataInfo("text", (8,), 2,
                                                                                  tokenizer=ByteTokenizer()))
