"""ELMo's biLM: the bidirectional lstm encoder keeps its two directions apart (no leak of the future
into the forward states, nor of the past into the backward ones), the ``bilm`` loss matches a hand
computation, the objective refuses encoders without separate directions, and the recipe runs."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import sslkit
from sslkit.data import DataBundle, DataInfo, TensorData
from sslkit.encoders.lstm import LSTMEncoder
from sslkit.errors import ConfigError
from sslkit.objectives.base import ObjectiveContext
from sslkit.objectives.bilm import BidirectionalLM
from sslkit.text.tokenizers import ByteTokenizer

from conftest import RECIPES, smoke_args, sslkit_main

TOK = ByteTokenizer()
T = 12


def encoder(**kw):
    torch.manual_seed(0)
    return LSTMEncoder(DataInfo("text", (T,), 0, tokenizer=TOK), dim=16, depth=2, dropout=0.0, **kw).eval()


@pytest.mark.slow
def test_directions_do_not_leak():
    enc = encoder()
    x = torch.randint(5, 261, (4, T), generator=torch.Generator().manual_seed(1))
    f, b = enc.forward_directions(x)
    assert f.shape == b.shape == (4, T, 8)
    for j in (0, 5, T - 1):
        y = x.clone()
        y[:, j] = torch.where(x[:, j] == 7, 8, 7)
        f2, b2 = enc.forward_directions(y)
        torch.testing.assert_close(f2[:, :j], f[:, :j], rtol=0, atol=0)  # forward: only the past
        torch.testing.assert_close(b2[:, j + 1:], b[:, j + 1:], rtol=0, atol=0)  # backward: only the future
        assert (f2[:, j] - f[:, j]).abs().amax(-1).gt(1e-6).all()  # ... and the token itself
        assert (b2[:, j] - b[:, j]).abs().amax(-1).gt(1e-6).all()
    torch.testing.assert_close(enc.forward_tokens(x), torch.cat([f, b], -1))


def test_right_padding_leaves_real_states_unchanged():
    enc = encoder()
    x = torch.randint(5, 261, (3, T), generator=torch.Generator().manual_seed(2))
    padded = x.clone()
    padded[0, 7:] = TOK.pad_id
    padded[1, 3:] = TOK.pad_id
    f, b = enc.forward_directions(padded)
    for row, n in ((0, 7), (1, 3), (2, T)):
        f_alone, b_alone = enc.forward_directions(x[row:row + 1, :n])
        torch.testing.assert_close(f[row:row + 1, :n], f_alone, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(b[row:row + 1, :n], b_alone, atol=1e-6, rtol=1e-5)


def test_unidirectional_lstm_has_no_backward_directions():
    uni = encoder(bidirectional=False)
    assert uni.causal and uni.bwd is None and uni.forward_tokens(torch.full((1, T), 9)).shape == (1, T, 16)


def objective(enc):
    return BidirectionalLM(ObjectiveContext(DataInfo("text", (T,), 0, tokenizer=TOK), enc))


def test_bilm_loss_matches_a_hand_computation():
    enc = encoder()
    obj = objective(enc)
    torch.nn.init.normal_(obj.head.bias)  # a non-zero bias, so the test sees if it is used
    x = torch.randint(5, 261, (3, T), generator=torch.Generator().manual_seed(3))
    x[0, 9:] = TOK.pad_id
    x[1, 1:] = TOK.pad_id  # one real token: no pair, nothing to predict
    out = obj({"all": {"x": x}}, enc)
    h_fwd, h_bwd = enc.forward_directions(x)
    W, E, bias = obj.proj.weight, enc.tok.weight, obj.head.bias

    def nll(h, target):
        return -F.log_softmax(E @ (W @ h) + bias, -1)[target]

    fwd, bwd = [], []
    for r in range(len(x)):
        n = int((x[r] != TOK.pad_id).sum())
        for t in range(n - 1):
            fwd.append(nll(h_fwd[r, t], x[r, t + 1]))  # next token from the left context
            bwd.append(nll(h_bwd[r, t + 1], x[r, t]))  # previous token from the right context
    assert len(fwd) == 8 + 0 + (T - 1)
    fwd, bwd = torch.stack(fwd).mean(), torch.stack(bwd).mean()
    torch.testing.assert_close(out.loss, fwd + bwd)
    torch.testing.assert_close(out.metrics["fwd_perplexity"], fwd.exp())
    torch.testing.assert_close(out.metrics["bwd_perplexity"], bwd.exp())
    ev = obj.evaluate(DataBundle(DataInfo("text", (T,), 0, tokenizer=TOK), TensorData({}), TensorData({"x": x})), enc, batch_size=2, device="cpu")
    assert ev["test_fwd_perplexity"] == pytest.approx(fwd.exp().item(), rel=1e-5)
    assert ev["test_perplexity"] == pytest.approx(((fwd + bwd) / 2).exp().item(), rel=1e-5)
    out.loss.backward()  # gradients reach both stacks and the shared embedding
    assert all(p.grad is not None for p in (enc.fwd.weight_ih_l0, enc.bwd.weight_ih_l0, enc.tok.weight))


@pytest.mark.parametrize("over", [["encoder={name: transformer}"], ["encoder={name: gpt}"],
                                  ["encoder.bidirectional=false"]], ids=["transformer", "gpt", "lstm_uni"])
def test_bilm_rejects_encoders_without_separate_directions(over):
    with pytest.raises(ConfigError, match=r"objectives\[0\]: 'bilm' needs a bidirectional encoder with separate directions; "
                                          r"(encoder '\w+' is not one|this '\w+' encoder is causal)"):
        sslkit.validate(RECIPES / "lm_bilm.yaml", over)


@pytest.mark.slow
def test_bilm_recipe_reports_test_perplexity_from_the_cli(tmp_path):
    proc = sslkit_main("run", RECIPES / "lm_bilm.yaml", "--out", tmp_path / "bilm",
                      *smoke_args(**{"trainer.batch_size": 16, "data.max_length": 32, "data.max_documents": 16}))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "bilm" / "metrics.json").read_text())
    for key in ("test_perplexity", "test_fwd_perplexity", "test_bwd_perplexity"):
        assert math.isfinite(metrics[key]) and 1 < metrics[key] < 400
