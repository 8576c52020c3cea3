"""MPNet's masked and permuted LM (``plm`` with ``style: mpnet``): the two-stream masks against
microsoft/MPNet's ``make_query_and_content_mask`` and by hand, no leak of a predicted token into its
own query stream, the share of predicted tokens, and the recipe from the CLI."""
from __future__ import annotations

import json
import math

import pytest
import torch

from sslkit.data import DataInfo
from sslkit.encoders.transformer import TransformerEncoder
from sslkit.errors import ConfigError
from sslkit.objectives.base import ObjectiveContext
from sslkit.objectives.plm import PermutedLM, mpnet_masks, mpnet_permutation
from sslkit.text.tokenizers import ByteTokenizer

from conftest import RECIPES, smoke_args, sslkit_main

TOK = ByteTokenizer()
SPECIALS = torch.tensor(TOK.special_ids)
TEXT = "The quick brown fox jumps over the lazy dog; Python lets you work quickly and integrate systems."


def objective(T=64, style="mpnet", **kw):
    info = DataInfo("text", (T,), 0, tokenizer=TOK)
    torch.manual_seed(0)
    enc = TransformerEncoder(info, dim=32, depth=2, heads=2, dropout=0.0).eval()
    return PermutedLM(ObjectiveContext(info, enc), style=style, **kw).eval(), enc


def text_row(T=64):
    return torch.tensor([TOK.encode(TEXT)[:T]])


def masks_of(x, p, seed=0):
    order, cols, valid = mpnet_permutation(x, TOK, p, torch.Generator().manual_seed(seed))
    content, query = mpnet_masks(order, valid, x == TOK.pad_id)
    return order, cols, valid, content[:, 0], query[:, 0]


# ----------------------------------------------------------------------------- masks
def test_masks_match_the_reference_layout():
    """Reorder our keys [tokens in place | slots] into MPNet's [non-predicted | predicted | slots] and
    compare with the masks of masked_permutation_net.make_query_and_content_mask (there True = blocked)."""
    x = torch.randint(5, 261, (1, 12), generator=torch.Generator().manual_seed(1))  # no special, no pad
    order, cols, valid, content, query = masks_of(x, 0.34)
    T, P = 12, cols.shape[1]
    assert P == 4 and valid.all()
    non_pred = torch.nonzero(order[0] < 0).flatten()
    layout = torch.cat([non_pred, cols[0], T + torch.arange(P)])  # MPNet's column c is our column layout[c]
    ones, up = torch.ones(P, T - P, dtype=torch.bool), torch.ones(P, P).triu().bool()  # up[i, j]: j >= i
    ref_query = torch.cat([ones, ~up, up], 1)  # non-predicted, predicted content < k, slots >= k
    pred_rows = torch.cat([ones, up.T, ~up.T], 1)  # content of k: predicted content <= k, slots > k
    context_rows = torch.cat([torch.ones(T - P, T - P, dtype=torch.bool), torch.zeros(T - P, P, dtype=torch.bool),
                              torch.ones(T - P, P, dtype=torch.bool)], 1)  # non-predicted: no predicted content
    slot_rows = torch.cat([ones, torch.zeros(P, P, dtype=torch.bool), torch.ones(P, P, dtype=torch.bool)], 1)
    ref_content = torch.cat([context_rows, pred_rows, slot_rows])
    assert torch.equal(query[0][:, layout], ref_query)
    assert torch.equal(content[0][layout][:, layout], ref_content)


def test_masks_by_hand_with_specials_and_pads():
    x = torch.tensor([[TOK.cls_id, *range(70, 80), TOK.sep_id, TOK.pad_id, TOK.pad_id]])  # 10 real tokens
    order, cols, valid, content, query = masks_of(x, 0.4, seed=3)
    T, P = x.shape[1], cols.shape[1]
    assert P == 4 and valid.all()
    predicted = cols[0].tolist()
    assert sorted(predicted) == sorted(torch.nonzero(order[0] >= 0).flatten().tolist())
    context = {j for j in range(T) if j not in predicted and x[0, j] != TOK.pad_id}  # non-predicted, specials too
    slots = {T + m for m in range(P)}
    positions = torch.cat([torch.arange(T), cols[0]])
    for k, col in enumerate(predicted):
        sees = set(torch.nonzero(query[0, k]).flatten().tolist())
        assert sees == context | {T + m for m in range(k, P)} | set(predicted[:k])
        sees = set(torch.nonzero(content[0, col]).flatten().tolist())
        assert sees == context | {T + m for m in range(k + 1, P)} | set(predicted[:k + 1])
    for j in context:
        assert set(torch.nonzero(content[0, j]).flatten().tolist()) == context | slots
    for m in range(P):
        assert set(torch.nonzero(content[0, T + m]).flatten().tolist()) == context | slots
    # position compensation: every real row sees each of the 12 non-pad positions exactly once
    rows = torch.cat([content[0, list(context) + predicted], content[0, T:], query[0]])
    seen = torch.stack([torch.bincount(positions[r], minlength=T) for r in rows])
    assert (seen[:, :12] == 1).all() and (seen[:, 12:] == 0).all()


def test_share_of_predicted_tokens_and_specials_never_predicted():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(5, 261, (400, 64), generator=g)
    x[:, 0], x[:, -1] = TOK.cls_id, TOK.sep_id
    x[:200, -9:] = TOK.pad_id
    order, cols, valid = mpnet_permutation(x, TOK, 0.15, g)
    real = ~torch.isin(x, SPECIALS)
    assert torch.equal(valid.sum(1), (0.15 * real.sum(1)).round().long())  # MPNet: round(pred_rate * length)
    assert 0.13 < valid.sum().item() / real.sum().item() < 0.17
    predicted = x.gather(1, cols)[valid]
    assert not torch.isin(predicted, SPECIALS).any()
    assert torch.equal((order >= 0).sum(1), valid.sum(1)) and not (order >= 0)[~real].any()
    freq = (order >= 0).float().mean(0)[1:54]  # every real column is about equally likely to be predicted
    assert 0.07 < freq.min() and freq.max() < 0.25


# ----------------------------------------------------------------------------- model
def test_query_of_a_predicted_token_never_sees_its_own_or_later_content():
    obj, enc = objective()
    x = text_row()
    _, cols, _ = mpnet_permutation(x, TOK, 0.15, torch.Generator().manual_seed(5))
    assert cols.shape[1] == 9

    def logits(ids):
        with torch.no_grad():
            return obj.predictions(ids, enc, torch.Generator().manual_seed(5))[0]

    base = logits(x)
    k = 4
    later = x.clone()
    later[0, cols[0, k:]] = 200  # the content of the k-th predicted token and of every later one
    out = logits(later)
    assert torch.allclose(base[:k + 1], out[:k + 1], atol=1e-5)  # queries 0..k read only content before k
    assert not torch.allclose(base[k + 1:], out[k + 1:], atol=1e-5)  # query k+1 reads token k
    context = x.clone()
    j = next(j for j in range(1, 63) if j not in cols[0].tolist())
    context[0, j] = 201 if x[0, j] != 201 else 202
    changed = ~torch.isclose(base, logits(context), atol=1e-5).all(1)
    assert changed.all()  # every query reads every non-predicted token


def test_training_step_with_padding_is_finite_and_uses_masked_slots():
    obj, enc = objective(T=32)
    obj.train(), enc.train()
    x = torch.randint(5, 261, (8, 32), generator=torch.Generator().manual_seed(2))
    x[:4, 20:] = TOK.pad_id
    x[7] = TOK.pad_id  # an all-pad row: nothing predicted, no NaN
    out = obj({"all": {"x": x}}, enc)
    out.loss.backward()
    assert math.isfinite(out.loss.item())
    assert all(torch.isfinite(p.grad).all() for p in [*enc.parameters(), *obj.parameters()] if p.grad is not None)
    assert not hasattr(obj, "query")  # MPNet's query stream starts from the [MASK] slots, not XLNet's vector


def test_style_is_validated():
    import sslkit

    with pytest.raises(ConfigError, match=r"objectives\[0\]\.mpnet_pred_probability: must be in \(0, 1\), got 1.5"):
        sslkit.validate(RECIPES / "lm_plm.yaml", ["objectives[0].mpnet_pred_probability=1.5"])

    with pytest.raises(ConfigError, match="style"):
        sslkit.validate(RECIPES / "lm_plm.yaml", ["objectives[0].style=bert"])


@pytest.mark.slow
def test_mpnet_recipe_reports_test_perplexity_from_the_cli(tmp_path):
    proc = sslkit_main("run", RECIPES / "lm_plm.yaml", "--out", tmp_path / "mpnet",
                      *smoke_args(**{"objectives[0].style": "mpnet", "trainer.batch_size": 16,
                                     "data.max_length": 32, "data.max_documents": 16}))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "mpnet" / "metrics.json").read_text())
    assert math.isfinite(metrics["test_plm_perplexity"]) and 1 < metrics["test_plm_perplexity"] < 400
    # the reported scores are the saved model's, on the same (seeded) permutations at every evaluation
    from sslkit.runner import load_run

    _, data, model = load_run(tmp_path / "mpnet")
    with torch.no_grad():
        again = model.objectives[0].evaluate(data, model.encoder, 16, "cpu")
    assert again["test_plm_accuracy"] == pytest.approx(metrics["test_plm_accuracy"], abs=1e-9)
    assert again["test_plm_perplexity"] == pytest.approx(metrics["test_plm_perplexity"], rel=1e-6)


def test_two_stream_attention_is_a_capability_of_the_transformer_block():
    """With the query stream equal to the content stream and both masks the padding mask, every block's
    two-stream step is ordinary self-attention: forward_two_stream reproduces forward_tokens."""
    from sslkit.encoders.capabilities import TWO_STREAM
    from sslkit.encoders.transformer import padding_mask

    _, enc = objective(T=16)
    x = text_row(12)
    x = torch.cat([x, torch.full((1, 4), TOK.pad_id)], 1)
    h = enc.embed(x, torch.arange(16))
    mask = padding_mask(x, TOK.pad_id)
    with torch.no_grad():
        assert torch.allclose(enc.forward_two_stream(h, h, mask, mask), enc.forward_tokens(x), atol=1e-5)
    assert TWO_STREAM.met_by(enc)


def test_plm_on_an_encoder_without_two_streams_stops_at_build():
    from sslkit.runner import validate

    recipe = {"data": {"name": "docstrings", "max_length": 32}, "encoder": {"name": "lstm"},
              "objectives": [{"name": "plm"}]}
    with pytest.raises(ConfigError, match=r"objectives\[0\]: 'plm' needs a bidirectional two-stream encoder; "
                                          r"encoder 'lstm' is not one \(.*transformer"):
        validate(recipe)


@pytest.mark.parametrize("style", ["xlnet", "mpnet"])
def test_plm_accuracy_counts_the_predicted_tokens_that_are_right(style):
    """Rows of one repeated byte: every predicted token is that byte, so a head biased towards it is right
    on all of them (accuracy 1, loss ~0) and one biased towards another byte on none (accuracy 0)."""
    obj, enc = objective(T=32, style=style)
    x = torch.full((4, 32), ord("a") + 3)  # byte ids are shifted past the specials
    x[:, 0], x[:2, 20:] = TOK.cls_id, TOK.pad_id
    for favoured, accuracy in ((int(x[0, 1]), 1.0), (int(x[0, 1]) + 1, 0.0)):
        with torch.no_grad():
            obj.head.bias.zero_()
            obj.head.bias[favoured] = 1e4
        out = obj({"all": {"x": x}}, enc)
        assert float(out.metrics["plm_accuracy"]) == accuracy
    assert float(out.loss) > 1e3  # the wrong byte's logit is 1e4 above the right one's
