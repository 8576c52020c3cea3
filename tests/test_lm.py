"""Language-model pretraining: corpus layouts, the gpt encoder, masking statistics, target
construction of every objective, generation, and tiny end-to-end runs."""
from __future__ import annotations

import math

import pytest
import torch

import sslkit
from sslkit.data import DataInfo
from sslkit.data.corpus import corpus_examples, join_pair, segment_ids, split_documents
from sslkit.errors import ConfigError
from sslkit.text.lm_head import IGNORE, token_loss
from sslkit.text.masking import mlm_mask, span_mask, token_kinds, word_start_index, word_starts
from sslkit.text.tokenizers import ByteTokenizer

from conftest import RECIPES, SMOKE

TOK = ByteTokenizer()
TEXT = ("The quick brown fox jumps over the lazy dog. Python is a programming language that lets you "
        "work quickly and integrate systems more effectively. ") * 4


def byte_rows(n=64, T=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(5, 261, (n, T), generator=g)
    x[:, 0] = TOK.cls_id
    x[:, -1] = TOK.sep_id
    x[: n // 2, -8:] = TOK.pad_id
    return x


# ----------------------------------------------------------------------------- corpus
def test_corpus_holds_out_whole_documents():
    docs = [f"document {i} " + "word " * (20 + i) for i in range(10)]
    train, test = split_documents(docs + ["", "   "], 0.2, seed=0)
    assert set(train).isdisjoint(test) and len(train) + len(test) == 10  # empty documents skipped
    ex = corpus_examples(docs, 0, {"name": "byte"}, 16, 0.2, "lm", "t")
    x = ex.columns["x"]
    assert x.shape[1] == 16 and ex.test_columns["x"].shape[1] == 16
    # contiguous packing: the blocks read back as the training documents joined by <sep>
    stream = x.flatten().tolist()
    first = TOK.encode(train[0], add_special=False)
    assert stream[: len(first)] == first and stream[len(first)] == TOK.sep_id


def test_corpus_too_small_or_too_short_raises_clearly():
    with pytest.raises(ValueError, match="fewer than one block"):
        corpus_examples(["tiny", "text"], 0, {"name": "byte"}, 64, 0.5, "lm", "t")
    with pytest.raises(ValueError, match="at least 2 non-empty"):
        split_documents(["only one", ""], 0.2, 0)
    with pytest.raises(ConfigError, match=r"^data\.max_length: must be >= 2, got 1$"):
        sslkit.validate(RECIPES / "lm_clm.yaml", ["data.max_length=1"])


def test_segment_pairs_and_short_document_fallback():
    docs = ["abcdefghijklmnopqrstuvwxyz" * 2, "xyz", "q"]
    ex = corpus_examples(docs + ["0123456789" * 3], 0, {"name": "byte"}, 13, 0.3, "pairs", "t")
    cols = {**ex.columns}
    S = (13 - 3) // 2
    assert cols["a"].shape[1] == S == cols["b"].shape[1]
    a, b, x = cols["a"], cols["b"], cols["x"]
    # every pair has tokens on both sides, and x = <cls> A <sep> B <sep>
    assert ((a != 0).sum(1) >= 1).all() and ((b != 0).sum(1) >= 1).all()
    for i in range(len(a)):
        ra, rb = a[i][a[i] != 0].tolist(), b[i][b[i] != 0].tolist()
        row = x[i][x[i] != 0].tolist()
        assert row == [TOK.cls_id, *ra, TOK.sep_id, *rb, TOK.sep_id]
    seg = segment_ids(x[:1], TOK.sep_id, TOK.pad_id)[0]
    n_a = int((a[0] != 0).sum())
    assert seg[: n_a + 2].eq(0).all() and seg[n_a + 2:].eq(1).all()


# ----------------------------------------------------------------------------- gpt encoder
def test_gpt_is_causal_and_pools_last_real_token():
    from sslkit.encoders.gpt import GPTEncoder

    torch.manual_seed(0)
    enc = GPTEncoder(DataInfo("text", (12,), 0, tokenizer=TOK), dim=32, depth=2, heads=4).eval()
    x = torch.randint(5, 261, (2, 12))
    y = x.clone()
    y[:, 7:] = torch.randint(5, 261, (2, 5))
    h1, h2 = enc.forward_tokens(x), enc.forward_tokens(y)
    assert torch.allclose(h1[:, :7], h2[:, :7], atol=1e-5)  # changing the future leaves the past
    assert not torch.allclose(h1[:, 7:], h2[:, 7:])
    x[1, 9:] = TOK.pad_id
    assert torch.allclose(enc(x)[1], enc.forward_tokens(x)[1, 8], atol=1e-6)


# ----------------------------------------------------------------------------- masking statistics
def test_mlm_mask_statistics_and_specials():
    x = byte_rows(256, 128)
    g = torch.Generator().manual_seed(0)
    inputs, labels, sel = mlm_mask(x, TOK, generator=g)
    special = torch.isin(x, torch.tensor(TOK.special_ids))
    assert not sel[special].any() and (inputs[special] == x[special]).all()
    frac = sel.sum().item() / (~special).sum().item()
    assert abs(frac - 0.15) < 0.01
    n = sel.sum().item()
    masked = (inputs[sel] == TOK.mask_id).sum().item() / n
    kept = (inputs[sel] == x[sel]).sum().item() / n
    assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1) < 0.02  # random ones may hit the same id (1/256)
    assert (labels[sel] == x[sel]).all() and (labels[~sel] == IGNORE).all()
    assert (inputs[~sel] == x[~sel]).all()
    assert (inputs[sel & (inputs != TOK.mask_id)] >= 5).all()  # random replacements are never specials


def test_whole_word_masking_selects_entire_words():
    x = torch.tensor([TOK.encode(TEXT)[:200]] * 64)
    kinds = token_kinds(TOK)
    _, _, sel = mlm_mask(x, TOK, prob=0.15, whole_word=True, kinds=kinds, generator=torch.Generator().manual_seed(1))
    start = word_start_index(word_starts(x, kinds))
    # all tokens of a word share the decision of the word's first token
    assert (sel == sel.gather(1, start)).all()
    assert 0.10 < sel.float().mean().item() < 0.20


def test_masked_loss_is_finite_without_targets():
    logits = torch.randn(2, 5, 7, requires_grad=True)
    loss, n = token_loss(logits, torch.full((2, 5), IGNORE))
    assert n == 0 and loss.item() == 0.0
    loss.backward()  # still differentiable
    ref = -torch.log_softmax(logits[0, 1], -1)[3]
    labels = torch.full((2, 5), IGNORE)
    labels[0, 1] = 3
    assert torch.allclose(token_loss(logits, labels)[0], ref)


def test_span_mask_statistics():
    x = torch.tensor([TOK.encode(TEXT)[:250]] * 128)
    kinds = token_kinds(TOK)
    m = span_mask(x, TOK, prob=0.15, generator=torch.Generator().manual_seed(0), kinds=kinds)
    frac = m.float().mean().item()
    assert 0.10 < frac < 0.20
    special = torch.isin(x, torch.tensor(TOK.special_ids))
    assert not m[special].any()
    # spans cover whole words: a masked word-start's word is masked up to the next word start
    ws = word_starts(x, kinds) & (kinds[x] != 2)
    inner = ~ws & (kinds[x] == 0)  # letters inside a word
    prev_masked = torch.nn.functional.pad(m[:, :-1], (1, 0))
    assert (m[inner] == prev_masked[inner]).all()
    # a sequence shorter than a span is masked but never entirely
    short = torch.tensor([TOK.encode("ab")] * 50)
    ms = span_mask(short, TOK, prob=0.9, kinds=kinds)
    assert ms.any() and (ms.sum(1) < 2).all()


# ----------------------------------------------------------------------------- generation
def test_top_k_top_p_filtering_and_greedy():
    from sslkit.text.generate import filter_logits, generate

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.1, 0.06, 0.04]]))
    assert torch.isfinite(filter_logits(logits, top_k=2)).sum() == 2
    assert torch.isfinite(filter_logits(logits, top_p=0.75)).tolist() == [[True, True, False, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.01)).sum() == 1
    table = torch.randn(10, 10)
    fn = lambda ids: table[ids]  # noqa: E731  a bigram "model"
    out = generate(fn, torch.tensor([[3]]), 4, max_length=8, greedy=True)
    for t in range(4):
        assert out[0, t + 1] == table[out[0, t]].argmax()
    s = generate(fn, torch.tensor([[3], [4]]), 5, 8, top_k=1, generator=torch.Generator().manual_seed(0))
    assert (s[:, 1] == table[torch.tensor([3, 4])].argmax(1)).all()


# ----------------------------------------------------------------------------- pair tasks
def test_nsp_and_sop_pair_construction():
    from sslkit.objectives.pairs import make_pairs

    a = torch.arange(5, 5 + 200 * 3).view(200, 3)
    b = a + 1000 % 250
    doc = torch.arange(200) // 2
    g = torch.Generator().manual_seed(0)
    x, lab = make_pairs(a, b, doc, "sop", TOK, 9, generator=g)
    assert 0.4 < lab.float().mean() < 0.6
    pos, neg = lab == 1, lab == 0
    assert (x[pos, 1:4] == a[pos]).all() and (x[pos, 5:8] == b[pos]).all()
    assert (x[neg, 1:4] == b[neg]).all() and (x[neg, 5:8] == a[neg]).all()
    x, lab = make_pairs(a, b, doc, "nsp", TOK, 9, generator=g)
    assert (x[:, 1:4] == a).all()
    assert (x[lab == 1, 5:8] == b[lab == 1]).all()
    neg = lab == 0
    assert neg.float().mean() > 0.4 and not (x[neg, 5:8] == b[neg]).all(1).any()


# ----------------------------------------------------------------------------- end to end
TINY = {**SMOKE, "trainer.batch_size": 32, "data.max_length": 32, "data.max_documents": 16}


@pytest.mark.parametrize("name,over,key", [
    ("clm", {"objectives[0].sample_tokens": 8}, "test_perplexity"),
    ("sop", {}, "test_pair_accuracy"),
    ("rtd", {}, "test_rtd_accuracy"),
    ("dae", {"objectives[0].mask_prob": 0.1, "objectives[0].delete_prob": 0.1, "objectives[0].rotate_prob": 0.5},
     "test_reconstruction_perplexity"),
    ("plm", {}, "test_plm_perplexity"),
    ("mlm", {"encoder": {"name": "lstm", "dim": 32, "depth": 1}, "data.tokenizer": {"name": "word"}},
     "test_masked_accuracy"),
], ids=["clm", "sop", "rtd", "dae_all_noise", "plm", "mlm_lstm_word"])
@pytest.mark.slow
def test_lm_recipe_reports_its_metric(name, over, key, tmp_path):
    res = sslkit.run(RECIPES / f"lm_{name}.yaml", overrides={**TINY, **over}, out=tmp_path / name)
    assert key in res.metrics and math.isfinite(res.metrics[key])
    if name == "clm":
        assert res.metrics["test_perplexity"] < 400 and (res.run_dir / "samples.txt").is_file()


def test_objectives_reject_the_wrong_encoder():
    with pytest.raises(ConfigError, match="causal"):
        sslkit.validate(RECIPES / "lm_clm.yaml", ["encoder.name=transformer", "encoder.dropout=0.0"])
    with pytest.raises(ConfigError, match="layout: pairs"):
        sslkit.validate(RECIPES / "lm_sop.yaml", ["data.layout=lm"])


# ----------------------------------------------------------------------------- rtd / span / dae / plm
def _ctx(T=32, encoder="transformer", **enc_kw):
    from sslkit.objectives.base import ObjectiveContext
    from sslkit.schema import build

    info = DataInfo("text", (T,), 0, tokenizer=TOK)
    torch.manual_seed(0)
    enc = build("encoders", {"name": encoder, "dim": 32, "depth": 1, "heads": 2, "dropout": 0.0, **enc_kw}, info)
    return ObjectiveContext(info, enc), enc


@pytest.mark.slow
def test_rtd_labels_and_loss_weight():
    from sslkit.objectives.rtd import ReplacedTokenDetection

    ctx, enc = _ctx()
    obj = ReplacedTokenDetection(ctx, gen_width=16)
    x = byte_rows(16, 32)
    g = torch.Generator().manual_seed(0)
    gen_logits, target, d, r = obj._run(x, enc, g)
    assert len(r) == (x != TOK.pad_id).sum()  # every real token is classified
    assert 0 < r.mean() <= 0.15 + 0.05  # only masked positions can be replaced
    # the loss by hand from the raw logits of the same draw: generator CE + 50 x discriminator BCE
    obj.eval()
    torch.manual_seed(7)
    out = obj({"all": {"x": x}}, enc)
    torch.manual_seed(7)
    gen_logits, target, d, r = (t.detach().double() if t.is_floating_point() else t for t in obj._run(x, enc))
    ce = sum(-torch.log_softmax(gen_logits[i], 0)[target[i]] for i in range(len(target))) / len(target)
    p = torch.sigmoid(d)
    bce = sum(-(r[i] * torch.log(p[i]) + (1 - r[i]) * torch.log(1 - p[i])) for i in range(len(r))) / len(r)
    assert out.loss.item() == pytest.approx(float(ce + 50.0 * bce), rel=1e-5)


def test_span_bounds_and_span_level_replacement():
    from sslkit.objectives.span import span_bounds, span_replacement

    m = torch.tensor([[0, 1, 1, 0, 1, 0, 1, 1, 1, 0]], dtype=torch.bool)
    s, e = span_bounds(m)
    assert s[0, [1, 2, 4, 6, 7, 8]].tolist() == [1, 1, 4, 6, 6, 6]
    assert e[0, [1, 2, 4, 6, 7, 8]].tolist() == [2, 2, 4, 8, 8, 8]
    x = torch.tensor([TOK.encode(TEXT)[:120]] * 200)
    masked = span_mask(x, TOK, generator=torch.Generator().manual_seed(2))
    inputs, labels, _ = span_replacement(x, masked, TOK, generator=torch.Generator().manual_seed(3))
    is_mask = inputs == TOK.mask_id
    s, _ = span_bounds(masked)
    # every token of a span shares its span's treatment: <mask> for all or for none
    assert (is_mask[masked] == is_mask.gather(1, s)[masked]).all()
    assert abs(is_mask[masked].float().mean().item() - 0.8) < 0.08
    assert (labels[masked] == x[masked]).all() and (labels[~masked] == IGNORE).all()


def test_span_objective_sums_mlm_and_sbo():
    from sslkit.objectives.span import SpanBERT

    ctx, enc = _ctx(64)
    obj = SpanBERT(ctx, sbo_weight=2.0).eval()
    x = torch.tensor([TOK.encode(TEXT)[:64]] * 4)
    torch.manual_seed(3)
    out = obj({"all": {"x": x}}, enc)
    # by hand, from the same draw: CE of the head at every masked token, and CE of the boundary head fed
    # the states just outside the token's span (found by walking along the row) and its offset in the span
    torch.manual_seed(3)
    inputs, labels, masked = obj.corrupt(x)
    with torch.no_grad():
        h, E = enc.forward_tokens(inputs), enc.token_embedding().weight
        mlm, sbo = [], []
        for b, t in masked.nonzero().tolist():
            s, e = t, t
            while s > 0 and masked[b, s - 1]:
                s -= 1
            while e < 63 and masked[b, e + 1]:
                e += 1
            target = int(x[b, t])
            mlm.append(-torch.log_softmax(obj.head(h[b, t], E), 0)[target])
            boundary = obj.sbo(h[b, max(s - 1, 0)], h[b, min(e + 1, 63)], torch.tensor(t - s))
            sbo.append(-torch.log_softmax(obj.head(boundary, E), 0)[target])
    mlm, sbo = float(sum(mlm) / len(mlm)), float(sum(sbo) / len(sbo))
    assert float(out.metrics["mlm_loss"]) == pytest.approx(mlm, rel=1e-5)
    assert float(out.metrics["sbo_loss"]) == pytest.approx(sbo, rel=1e-5)
    assert out.loss.item() == pytest.approx(mlm + 2.0 * sbo, rel=1e-5)


def test_bart_noising_functions():
    from sslkit.text.noising import delete_tokens, infill, mask_tokens, permute_sentences, rotate, sentence_end_ids

    text = "Alpha beta. Gamma delta epsilon. Zeta eta theta iota. Kappa."
    base = TOK.encode(text, add_special=False)
    x = torch.tensor([base + [0] * 6] * 300)
    real = x != 0
    g = torch.Generator().manual_seed(0)
    p = permute_sentences(x, TOK, 1.0, sentence_end_ids(TOK), g)
    assert (torch.sort(p, 1).values == torch.sort(x, 1).values).all()  # a permutation of the same tokens
    assert (p[:, -6:] == 0).all() and (p != x).any(1).float().mean() > 0.8
    sentences = sorted(s.strip() for s in TOK.decode(p[0].tolist()).replace(".", ".|").split("|") if s.strip())
    assert sentences == sorted(s.strip() + "." for s in text.split(".") if s.strip())
    m = mask_tokens(x, TOK, 0.3, g)
    assert abs((m[real] == TOK.mask_id).float().mean().item() - 0.3) < 0.03
    d = delete_tokens(x, TOK, 0.3, g)
    assert abs(1 - (d != 0).sum().item() / real.sum().item() - 0.3) < 0.03
    r = rotate(x, TOK, 1.0, g)
    assert (r[:, -6:] == 0).all()
    n = len(base)
    shift = (r[:, :1] == x[0, :n]).float().argmax(1)  # rotated rows are cyclic shifts of the original
    for i in range(5):
        assert r[i, :n].tolist() == base[int(shift[i]):] + base[:int(shift[i])] or base.count(int(r[i, 0])) > 1
    f = infill(x, TOK, 0.3, 3.0, g)
    n_mask = (f == TOK.mask_id).sum(1).float()
    removed = real.sum(1) - (f != 0).sum(1)  # tokens lost: span lengths minus one <mask> per span
    assert (n_mask > 0).all() and removed.float().mean() > 0
    # roughly 30 % of the tokens end up inside spans: removed + one per non-empty span
    covered = (removed + n_mask).float().mean() / n
    assert 0.15 < covered < 0.45
    # shorter than a span, or everything deleted: never an empty row
    tiny = torch.tensor([[TOK.encode("a", add_special=False)[0], 0, 0]])
    assert (infill(tiny, TOK, 0.9, 3.0) != 0).any() and (delete_tokens(tiny, TOK, 1.0) != 0).any()


def test_dae_reconstructs_the_original_with_shifted_decoder_inputs():
    from sslkit.objectives.dae import DenoisingAutoencoder

    ctx, enc = _ctx(32, "seq2seq")
    obj = DenoisingAutoencoder(ctx)
    x = byte_rows(4, 32)
    logits, target = obj.predictions(x, enc)
    assert logits.shape == (4, 32, TOK.vocab_size)
    assert (target[x != 0] == x[x != 0]).all() and (target[x == 0] == IGNORE).all()
    # the decoder is causal: its state at t does not depend on targets after t
    memory = enc.forward_tokens(x)
    y = x.clone()
    y[:, 20:] = 7
    a, b = enc.decode(x, memory, x), enc.decode(y, memory, x)
    assert torch.allclose(a[:, :20], b[:, :20], atol=1e-5)


def test_plm_targets_and_no_leak_through_two_streams():
    from sslkit.objectives.plm import PermutedLM, plm_targets, two_stream_masks

    x = byte_rows(400, 64)
    t = plm_targets(x, TOK, 1 / 6, 5, torch.Generator().manual_seed(0))
    special = torch.isin(x, torch.tensor(TOK.special_ids))
    assert not t[special].any()
    assert 0.12 < t.float().sum().item() / (~special).sum().item() < 0.21
    c, q = two_stream_masks(t[:1], x[:1] == 0, torch.Generator().manual_seed(0))
    targets = t[0]
    ti = torch.nonzero(targets).flatten()
    assert not q[0, 0, ti, ti].any() and c[0, 0, ti, ti].all()  # a query never sees its own token
    nt = torch.nonzero(~targets & (x[0] != 0)).flatten()
    assert not c[0, 0][nt][:, ti].any()  # context tokens never see targets
    ctx, enc = _ctx(64)
    enc.eval()
    obj = PermutedLM(ctx).eval()
    xx = torch.tensor([TOK.encode(TEXT)[:64]])
    with torch.no_grad():
        l1, tg = obj.predictions(xx, enc, torch.Generator().manual_seed(5))
        targets = plm_targets(xx, TOK, 1 / 6, 5, torch.Generator().manual_seed(5))
        pos = torch.nonzero(targets[0]).flatten()
        changed = xx.clone()
        changed[0, pos[0]] = 200 if xx[0, pos[0]] != 200 else 201
        l2, _ = obj.predictions(changed, enc, torch.Generator().manual_seed(5))
    assert torch.allclose(l1[0], l2[0], atol=1e-5)  # the prediction of a target ignores the target itself


# ----------------------------------------------------------------------------- lstm and tokenizers
def test_lstm_encoder_directions_and_padding():
    from sslkit.encoders.lstm import LSTMEncoder

    info = DataInfo("text", (12,), 0, tokenizer=TOK)
    torch.manual_seed(0)
    bi = LSTMEncoder(info, dim=16, depth=2, dropout=0.0).eval()
    uni = LSTMEncoder(info, dim=16, depth=1, dropout=0.0, bidirectional=False).eval()
    x = torch.randint(5, 261, (2, 12))
    y = x.clone()
    y[:, 8:] = 9
    assert torch.allclose(uni.forward_tokens(x)[:, :8], uni.forward_tokens(y)[:, :8], atol=1e-6)  # causal
    assert not torch.allclose(bi.forward_tokens(x)[:, :8], bi.forward_tokens(y)[:, :8])  # sees the future
    padded = x.clone()
    padded[:, 8:] = TOK.pad_id
    # padding is skipped: real tokens' states equal those of the unpadded prefix
    assert torch.allclose(bi.forward_tokens(padded)[:, :8], bi.forward_tokens(x[:, :8]), atol=1e-5)
    assert bi(x).shape == (2, 16) and uni.causal and not bi.causal


def test_word_and_bpe_tokenizers_keep_specials_and_words():
    from sslkit.text.word_tokenizers import WordTokenizer

    texts = ["the cat sat on the mat.", "the dog sat, the cat ran."]
    w = WordTokenizer(texts, min_freq=1)
    assert w.vocab[:5] == ["<pad>", "<cls>", "<sep>", "<mask>", "<unk>"]
    ids = w.encode("the cat flew.")
    assert ids[0] == w.cls_id and ids[-1] == w.sep_id and w.unk_id in ids
    assert w.decode(w.encode("the cat sat.")) == "the cat sat ."
    x = torch.tensor([w.encode("the cat sat on the mat .", add_special=False)])
    assert word_starts(x, token_kinds(w)).all()  # every word token starts a word
    pytest.importorskip("tokenizers")
    from sslkit.text.word_tokenizers import BPETokenizer

    b = BPETokenizer(texts * 20, vocab_size=300)
    assert b.vocab[:5] == ["<pad>", "<cls>", "<sep>", "<mask>", "<unk>"] and b.vocab_size <= 300
    assert b.decode(b.encode("the cat sat, zebra!")) == "the cat sat, zebra!"  # byte-level: no <unk>
    starts = word_starts(torch.tensor([b.encode("the cat sat on the mat", add_special=False)]), token_kinds(b))
    assert int(starts.sum()) == 6


@pytest.mark.slow
def test_finetune_loads_a_pretrained_encoder(tmp_path):
    """A classification recipe loads another run's encoder (encoder.init_from); a mismatch is a clear error."""
    pre = sslkit.run(RECIPES / "lm_mlm.yaml", overrides=TINY, out=tmp_path / "pre")
    ft = {**SMOKE, "data.max_length": 32, "encoder.dim": 128, "encoder.init_from": str(pre.run_dir)}
    sets = [f"{k}={v}" for k, v in ft.items()]
    sslkit.validate(RECIPES / "supervised_docstrings.yaml", sets)
    from sslkit.runner import build_data, build_model
    from sslkit import config

    cfg = config.load_recipe(RECIPES / "supervised_docstrings.yaml", sets)
    model = build_model(cfg, build_data(cfg))
    saved = torch.load(pre.run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert torch.equal(model.encoder.tok.weight, saved["encoder.tok.weight"])
    with pytest.raises(ConfigError, match="init_from"):
        sslkit.validate(RECIPES / "supervised_docstrings.yaml", [*sets, "encoder.dim=64"])


@pytest.mark.slow
def test_init_from_refuses_an_encoder_trained_on_another_vocabulary(tmp_path):
    """A word vocabulary is fitted on the dataset's text: an encoder pretrained on other text has embeddings for
    other words at the same ids, so encoder.init_from (a run folder or its export) names the mismatch."""
    from sslkit.export import export

    word = {"name": "word", "vocab_size": 300}
    pre = sslkit.run(RECIPES / "lm_mlm.yaml", overrides={**TINY, "data.tokenizer": word}, out=tmp_path / "pre")
    exported = export(pre.run_dir, tmp_path / "exported")
    ft = {**SMOKE, "data.max_length": 32, "data.tokenizer": word, "encoder.dim": 128}
    for source in (pre.run_dir, exported):
        sets = [f"{k}={v}" for k, v in {**ft, "encoder.init_from": str(source)}.items()]
        with pytest.raises(ConfigError, match="another tokenizer.*word, 300 ids there, word, 300 ids here, the same "
                                              "size but other tokens") as err:
            sslkit.validate(RECIPES / "supervised_docstrings.yaml", sets)
        assert err.value.path == "encoder.init_from"
    # the same text and tokenizer: accepted
    sets = [f"{k}={v}" for k, v in {**TINY, "data.tokenizer": word, "encoder.init_from": str(pre.run_dir)}.items()]
    sslkit.validate(RECIPES / "lm_mlm.yaml", sets)


def test_weights_trained_on_another_split_s_vocabulary_are_refused(tmp_path):
    """A word vocabulary is fitted on the training rows of the split: a run with another seed has another one,
    so encoder.init_from, --resume and load_run refuse weights whose recorded vocabulary differs."""
    import yaml

    from sslkit.runner import load_run

    for c in ("neg", "pos"):
        (tmp_path / "txt" / c).mkdir(parents=True)
        for i in range(8):
            (tmp_path / "txt" / c / f"{i}.txt").write_text(f"{c} shared words own{c}{i}")
    recipe = {"data": {"name": "text_files", "root": str(tmp_path / "txt"), "max_length": 8,
                       "tokenizer": {"name": "word", "min_freq": 1}},
              "encoder": {"name": "transformer", "dim": 16, "depth": 1, "heads": 2},
              "objectives": [{"name": "supervised"}], "trainer": {"batch_size": 4}}
    pre = sslkit.run(recipe, overrides={**SMOKE, "trainer.checkpoint_every": 1}, out=tmp_path / "pre")
    sslkit.validate(recipe, {"encoder.init_from": str(pre.run_dir)})  # the same split: accepted
    with pytest.raises(ConfigError, match="another tokenizer.*the same size but other tokens") as err:
        sslkit.validate(recipe, {"encoder.init_from": str(pre.run_dir), "seed": 1})
    assert err.value.path == "encoder.init_from"
    # the run folder rebuilt with another split (as one from before the vocabulary was fitted on the training
    # rows would be): --resume and load_run name the mismatch instead of loading the embeddings
    cfg_file = pre.run_dir / "config.yaml"
    cfg_file.write_text(yaml.safe_dump({**yaml.safe_load(cfg_file.read_text()), "seed": 1}))
    with pytest.raises(ConfigError, match="another tokenizer") as err:
        sslkit.run(resume=pre.run_dir, overrides={"trainer.max_steps": 6})
    assert err.value.path == "--resume"
    with pytest.raises(ConfigError, match="another tokenizer"):
        load_run(pre.run_dir)


@pytest.mark.slow
def test_finetune_recipe_starts_from_its_pretrain_stage(tmp_path):
    """recipes/finetune_docstrings.yaml: the finetune stage's encoder starts from the pretrain stage's."""
    res = sslkit.run(RECIPES / "finetune_docstrings.yaml", overrides={**SMOKE, "data.max_length": 32},
                     out=tmp_path / "ft", stage="pretrain")
    pre = torch.load(res.run_dir / "pretrain" / "checkpoints" / "last.pt", weights_only=True)["model"]
    from sslkit.runner import load_run

    ft = sslkit.run(RECIPES / "finetune_docstrings.yaml", overrides={**SMOKE, "data.max_length": 32,
                                                                     "trainer.optimizer.lr": 0.0},
                    out=tmp_path / "ft", stage="finetune")
    _, _, model = load_run(ft.run_dir / "finetune")
    assert torch.equal(model.encoder.tok.weight, pre["encoder.tok.weight"])  # lr 0: still the pretrained weights
    assert "finetune/test_accuracy" in ft.metrics


def test_composed_text_recipe_pretrains_like_the_finetune_recipe():
    """recipes/semi_docstrings.yaml's pretrain stage is finetune_docstrings.yaml's, and its finetune stage is
    pseudo_label with the label_spreading relation, on the same data and encoder, started from the pretrain stage."""
    from sslkit import config
    from sslkit.stages import resolve_stages

    semi = resolve_stages(config.load_yaml(RECIPES / "semi_docstrings.yaml"))
    ft = resolve_stages(config.load_yaml(RECIPES / "finetune_docstrings.yaml"))
    assert semi["pretrain"] == ft["pretrain"]
    (semi_ft, source), (sup_ft, _) = semi["finetune"], ft["finetune"]
    assert source == "pretrain"
    assert [o["name"] for o in semi_ft["objectives"]] == ["pseudo_label"]
    assert semi_ft["objectives"][0]["relation"]["name"] == "label_spreading"
    assert sup_ft["objectives"][0]["name"] == "supervised"
    assert semi_ft["data"] == sup_ft["data"] and semi_ft["encoder"] == sup_ft["encoder"]


def test_gpt_key_value_cache_matches_a_full_pass():
    """States from the cache, fed in chunks of 3, 1 and 4 ids, equal one pass over all 8 ids."""
    from sslkit.data import DataInfo
    from sslkit.encoders.gpt import GPTEncoder
    from sslkit.text.tokenizers import ByteTokenizer

    torch.manual_seed(0)
    enc = GPTEncoder(DataInfo("text", (16,), tokenizer=ByteTokenizer()), dim=16, depth=2, heads=2).eval()
    ids = torch.randint(5, 200, (2, 8))
    parts, cache = [], None
    for lo, hi in ((0, 3), (3, 4), (4, 8)):
        h, cache = enc.forward_tokens_cached(ids[:, lo:hi], cache)
        parts.append(h)
    assert torch.allclose(torch.cat(parts, 1), enc.forward_tokens(ids), atol=1e-5)
    with pytest.raises(ValueError, match="exceeds the encoder's 16 positions"):
        enc.forward_tokens_cached(torch.cat([ids, ids[:, :1]], 1), cache)  # 8 + 9 > 16
