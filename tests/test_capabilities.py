"""Encoder capabilities: declared protocols, checked once when a recipe is built."""
from __future__ import annotations

import pytest
import torch

import sslkit
from sslkit.encoders.capabilities import (BIDIRECTIONAL, CAUSAL, ENCODER_DECODER, IMAGE, KV_CACHE, LM_HEAD, TOKEN,
                                          TokenEncoder,
                                          capabilities_of, encoders_with)
from sslkit.errors import ConfigError
from sslkit.registry import registry

from conftest import RECIPES, sslkit_main


def test_registered_encoders_declare_what_they_can_do():
    assert encoders_with(TOKEN) == ["gpt", "hf", "lstm", "seq2seq", "transformer"]
    assert encoders_with(CAUSAL) == ["gpt", "hf", "lstm"]  # lstm: when bidirectional is false; hf: causal models
    assert encoders_with(KV_CACHE) == ["gpt", "hf"] and encoders_with(LM_HEAD) == ["hf"]
    assert "transformer" in encoders_with(BIDIRECTIONAL) and "gpt" not in encoders_with(BIDIRECTIONAL)
    assert encoders_with(ENCODER_DECODER) == ["seq2seq"]
    assert set(encoders_with(IMAGE)) >= {"cnn", "resnet18"} and "mlp" not in encoders_with(IMAGE)
    assert capabilities_of(registry("encoders").get("mlp").target) == []


def test_built_encoders_meet_the_protocol_they_declare():
    cfg = sslkit.validate(RECIPES / "lm_mlm.yaml")
    from sslkit.runner import build_data, build_model

    model = build_model(cfg, build_data(cfg))
    enc = model.encoder
    assert isinstance(enc, TokenEncoder) and TOKEN.met_by(enc) and BIDIRECTIONAL.met_by(enc)
    assert not CAUSAL.met_by(enc)
    ids = torch.full((2, 5), enc.pad_id + 7)
    assert enc.forward_tokens(ids).shape == (2, 5, enc.out_dim)
    assert enc.token_embedding().weight.shape[1] == enc.out_dim


def test_an_objective_on_an_encoder_without_its_capability_is_one_line():
    with pytest.raises(ConfigError) as err:
        sslkit.validate(RECIPES / "lm_mlm.yaml", ["encoder={name: gpt}"])
    assert str(err.value) == ("objectives[0]: 'mlm' needs a bidirectional token encoder; this 'gpt' encoder is causal: "
                              "each token sees only the tokens before it (bidirectional token encoders: hf, lstm, "
                              "seq2seq, transformer)")
    with pytest.raises(ConfigError, match=r"objectives\[0\]: 'clm' needs a causal token encoder; this 'transformer' "
                                          r"encoder is bidirectional: each token sees the whole row \(causal token "
                                          r"encoders: gpt, hf, lstm\)"):
        sslkit.validate(RECIPES / "lm_clm.yaml", ["encoder={name: transformer}"])
    with pytest.raises(ConfigError, match=r"'dae' needs an encoder-decoder; encoder 'transformer'"):
        sslkit.validate(RECIPES / "lm_dae.yaml", ["encoder={name: transformer}"])


def test_describe_shows_capabilities_and_needs():
    enc = sslkit_main("describe", "encoders/gpt")
    assert enc.returncode == 0 and "capabilities: token encoder, causal token encoder" in enc.stdout
    obj = sslkit_main("describe", "objectives/mlm")
    assert obj.returncode == 0 and "needs: bidirectional token encoder" in obj.stdout
    assert "needs: any encoder" in sslkit_main("describe", "objectives/supervised").stdout
