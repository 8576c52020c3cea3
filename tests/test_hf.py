"""Hugging Face models in sslkit: the ``hf`` encoder and tokenizer, every text objective family on tiny
BERT / GPT-2 / Llama models saved with ``save_pretrained`` (nothing downloads), cached generation, export."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

import sslkit
from sslkit import config
from sslkit.errors import ConfigError
from sslkit.runner import build_data, build_model

from conftest import sslkit_main

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

TRAIN = {"max_steps": 2, "batch_size": 8, "progress": False, "threads": 1, "eval_every": 2}


@pytest.fixture(scope="session")
def text_dir(tmp_path_factory):
    """Two classes of short texts (docstrings of string and math functions), a file each."""
    import math
    import string

    root = tmp_path_factory.mktemp("texts")
    for name, module in (("text", string), ("numbers", math)):
        (root / name).mkdir()
        docs = [getattr(module, n).__doc__ for n in dir(module) if getattr(getattr(module, n), "__doc__", None)]
        for i, doc in enumerate(d for d in docs if len(d) > 30):
            (root / name / f"{i}.txt").write_text(doc)
    return root


def recipe(model, objectives, data=None, **encoder):
    data = data or {}
    return {"data": data, "encoder": {"name": "hf", "model": str(model), **encoder}, "objectives": objectives,
            "trainer": dict(TRAIN)}


def built(r):
    cfg = config.resolve(r)
    data = build_data(cfg)
    return cfg, data, build_model(cfg, data)


# ---------------------------------------------------------------- tokenizer and encoder
def test_tokenizer_maps_special_ids_of_bert_and_gpt2_styles(hf_models):
    from sslkit.text.hf_tokenizer import HFTokenizer
    from sslkit.text.masking import BOUNDARY, CONTINUE, START

    bert = HFTokenizer(model=str(hf_models["bert"]))
    hf = bert.hf_tokenizer
    assert (bert.pad_id, bert.cls_id, bert.sep_id, bert.mask_id, bert.unk_id) == tuple(
        hf.convert_tokens_to_ids(["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"]))
    x = bert.encode_batch(["return the value", "a much longer text " * 20], 8)
    assert x.shape == (2, 8) and x[0, 0] == bert.cls_id and x[1, -1] == bert.sep_id  # truncated, specials kept
    assert (x[0] == bert.pad_id).sum() > 0 and x[0, -1] == bert.pad_id  # right-padded
    assert bert.decode(x[0].tolist()) == "return the value"
    kinds = bert.token_kinds()
    assert kinds[bert.cls_id] == BOUNDARY and kinds[hf.convert_tokens_to_ids("return")] == START
    assert (kinds[[i for i, t in enumerate(bert.vocab) if t.startswith("##")]] == CONTINUE).all()

    gpt = HFTokenizer(model=str(hf_models["gpt2"]))
    eos = gpt.hf_tokenizer.eos_token_id
    assert gpt.cls_id == gpt.sep_id == gpt.pad_id == gpt.unk_id == gpt.mask_id == eos  # GPT-2: one special
    llama = HFTokenizer(model=str(hf_models["llama"]))
    t = llama.hf_tokenizer
    assert (llama.cls_id, llama.sep_id, llama.pad_id) == (t.bos_token_id, t.eos_token_id, t.eos_token_id)
    assert llama.encode("x")[0] == t.bos_token_id  # the tokenizer's own template


def test_encoder_reads_the_model_and_its_tokenizer_tokenizes_the_data(hf_models, text_dir):
    cfg, data, model = built(recipe(hf_models["bert"], [{"name": "supervised"}],
                                    {"name": "text_files", "root": str(text_dir), "max_length": 24}))
    enc = model.encoder
    from transformers import AutoModel

    assert data.info.tokenizer.name == "hf" and data.info.tokenizer.vocab_size == len(enc.model.get_input_embeddings().weight)
    assert not enc.causal and enc.pooling == "cls" and enc.has_lm_head and enc.max_length == 128
    x = data.train["x"][:3]
    plain = AutoModel.from_pretrained(hf_models["bert"]).eval()
    enc.eval()
    want = plain(input_ids=x, attention_mask=(x != enc.pad_id).long()).last_hidden_state
    assert torch.allclose(enc.forward_tokens(x), want, atol=1e-5)
    assert torch.allclose(enc(x), want[:, 0], atol=1e-5)
    # the data tokenizer is the model's: a recipe that also names another one is refused
    r = recipe(hf_models["bert"], [{"name": "supervised"}], {"name": "text_files", "root": str(text_dir),
                                                             "tokenizer": "char"})
    with pytest.raises(ConfigError, match=r"^data.tokenizer: encoder 'hf' brings its own tokenizer"):
        built(r)


def test_layerwise_lr_decay_freeze_and_checkpointing(hf_models, text_dir):
    from sslkit.trainer import Trainer

    r = recipe(hf_models["bert"], [{"name": "supervised"}], {"name": "text_files", "root": str(text_dir),
                                                             "max_length": 16},
               lr_decay=0.5, gradient_checkpointing=True)
    r["trainer"]["optimizer"] = {"name": "adamw", "lr": 0.01}
    cfg, data, model = built(r)
    lrs = [g["lr"] for g in Trainer(cfg, data, model, torch.device("cpu"), None).optimizers["model"].param_groups]
    assert lrs == pytest.approx([0.01, 0.005, 0.0025, 0.00125])  # heads + top, block 2, block 1, embeddings
    assert getattr(model.encoder.model, "is_activation_checkpointing", None) or model.encoder.model.is_gradient_checkpointing
    emb = model.encoder.token_embedding().weight
    groups = dict((s, ps) for ps, s in model.encoder.parameter_groups())
    assert any(p is emb for p in groups[0.125])
    r["encoder"] = {"name": "hf", "model": str(hf_models["bert"]), "freeze": True}
    _, _, frozen = built(r)
    assert not any(p.requires_grad for p in frozen.encoder.parameters())
    assert all(p.requires_grad for p in frozen.objectives[0].parameters())


def test_config_model_with_the_datas_own_tokenizer():
    r = {"data": {"name": "pydoc_blocks", "max_length": 16, "max_documents": 6, "tokenizer": "byte"},
         "encoder": {"name": "hf", "config": {"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2,
                                              "n_positions": 16}},
         "objectives": [{"name": "clm", "sample_tokens": 0}], "trainer": dict(TRAIN)}
    _, data, model = built(r)
    assert model.encoder.causal and model.encoder.token_embedding().num_embeddings == data.info.tokenizer.vocab_size
    assert type(model.objectives[0].head).__name__ == "EncoderLMHead"


# ---------------------------------------------------------------- every objective family
CLASSIFY = [
    [{"name": "supervised"}],
    [{"name": "pseudo_label", "relation": {"name": "confidence", "threshold": 0.5}, "unlabeled_ratio": 1,
      "weak": {"name": "weak", "mask_prob": 0.1}, "strong": {"name": "token_dropout", "prob": 0.3}}],
    [{"name": "contrastive", "pairs": "views", "views": [{"name": "token_dropout"}, {"name": "token_mask"}]}],
    [{"name": "pml", "views": [{"name": "token_mask"}, {"name": "span_deletion"}]}],
]


@pytest.mark.parametrize("objectives", CLASSIFY, ids=lambda o: o[0]["name"])
def test_classification_objectives_on_bert(hf_models, text_dir, tmp_path, objectives):
    data = {"name": "text_files", "root": str(text_dir), "max_length": 24, "labels_per_class": 5}
    res = sslkit.run(recipe(hf_models["bert"], objectives, data), out=tmp_path / "run")
    assert res.metrics["step"] == 2 and all(v == v for v in res.metrics.values())  # finite, not NaN


def test_weak_ova_on_gpt2(hf_models, text_dir, tmp_path):
    data = {"name": "text_files", "root": str(text_dir), "max_length": 24, "annotators": 3}
    res = sslkit.run(recipe(hf_models["gpt2"], [{"name": "weak_ova"}], data), out=tmp_path / "run")
    assert "test_accuracy" in res.metrics


@pytest.mark.parametrize("name", ["mlm", "span", "rtd"])
def test_masked_lm_objectives_use_the_models_own_head(hf_models, tmp_path, name):
    data = {"name": "pydoc_blocks", "max_length": 32, "max_documents": 8}
    r = recipe(hf_models["bert"], [{"name": name}], data)
    _, _, model = built(r)
    if name != "rtd":
        obj, enc = model.objectives[0], model.encoder
        assert type(obj.head).__name__ == "EncoderLMHead" and not list(obj.head.parameters())
        h = torch.randn(3, enc.out_dim)
        assert torch.equal(obj.head(h, None), enc.model.cls(h))
    res = sslkit.run(r, out=tmp_path / "run")
    assert res.metrics["test_masked_accuracy"] >= 0


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_clm_on_causal_models_writes_cached_samples(hf_models, tmp_path, kind):
    r = recipe(hf_models[kind], [{"name": "clm", "sample_tokens": 6}],
               {"name": "pydoc_blocks", "max_length": 32, "max_documents": 8})
    res = sslkit.run(r, out=tmp_path / "run")
    assert res.metrics["test_perplexity"] > 1 and (tmp_path / "run" / "samples.txt").is_file()


def test_rlhf_stages_on_gpt2(hf_models, tmp_path):
    """sft -> reward -> ppo (learned reward) and dpo, GPT-2 style tokenizer (pad = eos)."""
    base = {"data": {"name": "rlhf_toy", "max_length": 24, "prompts": 60, "test_prompts": 10},
            "encoder": {"name": "hf", "model": str(hf_models["gpt2"])}, "trainer": dict(TRAIN)}
    stages = {
        "sft": {"data": {"layout": "sft"}, "objectives": [{"name": "sft"}]},
        "reward": {"from": "sft", "data": {"layout": "rankings"}, "objectives": [{"name": "reward"}]},
        "ppo": {"from": "sft", "data": {"layout": "prompts"},
                "objectives": [{"name": "ppo", "reference": "sft", "response_tokens": 6, "minibatch_size": 4,
                                "ppo_epochs": 1, "eval_prompts": 4}]},
        "dpo": {"from": "sft", "data": {"layout": "rankings"}, "objectives": [{"name": "dpo", "reference": "sft"}]},
    }
    res = sslkit.run({**base, "stages": stages}, out=tmp_path / "run")
    m = res.metrics
    assert {"sft/test_response_nll", "reward/test_pairwise_accuracy", "ppo/test_kl",
            "dpo/test_pairwise_accuracy"} <= set(m)
    assert abs(m["ppo/test_kl"]) < 1.0  # one small update away from the reference


# ---------------------------------------------------------------- errors
def test_clear_errors(hf_models, text_dir, tmp_path):
    data = {"name": "text_files", "root": str(text_dir), "max_length": 24}
    with pytest.raises(ConfigError, match=r"^objectives\[0\]: 'clm' needs a causal token encoder; this 'hf' encoder "
                                          r"is bidirectional: each token sees the whole row \(causal token encoders: "
                                          r"gpt, hf with another model, lstm\)"):
        built(recipe(hf_models["bert"], [{"name": "clm"}], data))
    with pytest.raises(ConfigError, match=r"^objectives\[0\]: 'mlm' needs a bidirectional token encoder; this 'hf' "
                                          r"encoder is causal: .*\(bidirectional token encoders: hf with another model"):
        built(recipe(hf_models["gpt2"], [{"name": "mlm"}], data))
    with pytest.raises(ConfigError, match=r"^data.max_length: rows of 200 ids exceed the model's 128 positions"):
        built(recipe(hf_models["bert"], [{"name": "supervised"}], {**data, "max_length": 200}))
    empty = tmp_path / "no_weights"
    empty.mkdir()
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(hf_models["bert"] / f, empty / f)
    with pytest.raises(ConfigError, match=r"^encoder.model: .*no_weights has a config.json but no weights"):
        built(recipe(empty, [{"name": "supervised"}], data))
    with pytest.raises(ConfigError, match=r"^encoder.tokenizer: the tokenizer has 1000 ids but the model's embedding has 50"):
        built({"data": data, "encoder": {"name": "hf", "tokenizer": str(hf_models["bert"]),
                                         "config": {"model_type": "bert", "vocab_size": 50, "hidden_size": 16,
                                                    "num_hidden_layers": 1, "num_attention_heads": 2}},
               "trainer": dict(TRAIN)})
    with pytest.raises(ConfigError, match=r"^encoder.model: folder not found: .*nowhere \(a Hugging Face Hub name"):
        built(recipe(tmp_path / "nowhere", [{"name": "supervised"}], data))


# ---------------------------------------------------------------- cached generation
def _causal_models(hf_models):
    from sslkit.data import DataInfo
    from sslkit.encoders.gpt import GPTEncoder
    from sslkit.encoders.hf import HFEncoder
    from sslkit.text.hf_tokenizer import HFTokenizer
    from sslkit.text.tokenizers import ByteTokenizer

    torch.manual_seed(0)
    info = DataInfo("text", (64,), tokenizer=ByteTokenizer())
    yield "gpt", GPTEncoder(info, dim=32, depth=2, heads=2).eval(), info.tokenizer
    for kind in ("gpt2", "llama"):
        tok = HFTokenizer(model=str(hf_models[kind]))
        yield kind, HFEncoder(DataInfo("text", (64,), tokenizer=tok), model=str(hf_models[kind])).eval(), tok


def test_cached_and_uncached_generation_give_the_same_tokens(hf_models):
    from sslkit.text.generate import generate, lm_stepper
    from sslkit.text.lm_head import embedding_of, lm_head
    from sslkit.text.policy import sample_responses

    for name, enc, tok in _causal_models(hf_models):
        head = lm_head(enc, transform=False)
        if list(head.parameters()):  # our gpt's tied head: a bias that is not zero
            torch.nn.init.normal_(head.bias, std=1.0)  # a head whose logits are not all tied
        fn = lambda ids: head(enc.forward_tokens(ids), embedding_of(enc))  # noqa: E731
        step = lm_stepper(enc, head)
        assert step is not None, name
        prompt = torch.randint(10, 200, (3, 5))
        for kwargs in ({"greedy": True}, {"temperature": 1.3, "top_k": 50}, {"top_p": 0.9}):
            a = generate(fn, prompt, 12, enc.max_length, generator=torch.Generator().manual_seed(1), **kwargs)
            b = generate(fn, prompt, 12, enc.max_length, generator=torch.Generator().manual_seed(1), step_fn=step,
                         **kwargs)
            assert torch.equal(a, b), (name, kwargs)
        plen = torch.tensor([2, 5, 3])
        rows = prompt.masked_fill(torch.arange(5)[None] >= plen[:, None], tok.pad_id)
        a = sample_responses(fn, rows, plen, 10, enc.max_length, tok.sep_id, tok.pad_id, 1.5,
                             generator=torch.Generator().manual_seed(2))
        b = sample_responses(fn, rows, plen, 10, enc.max_length, tok.sep_id, tok.pad_id, 1.5,
                             generator=torch.Generator().manual_seed(2), step_fn=step)
        assert torch.equal(a, b), name
        assert torch.equal(a[:, :2], rows[:, :2]) and a[1, 2:5].tolist() == rows[1, 2:5].tolist()


# ---------------------------------------------------------------- export
def test_export_stage_reloads_with_transformers_alone_and_starts_a_run(hf_models, tmp_path):
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    data = {"name": "pydoc_blocks", "max_length": 32, "max_documents": 8}
    r = {**recipe(hf_models["bert"], [{"name": "mlm"}], data),
         "stages": {"mlm": {}, "export": {"export": "mlm"}}}
    res = sslkit.run(r, out=tmp_path / "run")
    folder = res.run_dir / "export"
    assert {"config.json", "model.safetensors", "tokenizer.json", "sslkit_encoder.json"} <= {f.name for f in folder.iterdir()}
    cfg, data_, model = sslkit.runner.load_run(res.run_dir / "mlm")
    enc = model.encoder.eval()
    x = data_.test["x"][:4]
    plain = AutoModel.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    assert tok("def f") == enc._export_tokenizer("def f")
    with torch.no_grad():
        ours = enc.forward_tokens(x)
        theirs = plain(input_ids=x, attention_mask=(x != enc.pad_id).long()).last_hidden_state
        mlm = AutoModelForMaskedLM.from_pretrained(folder).eval()(input_ids=x, attention_mask=(x != enc.pad_id).long())
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert torch.allclose(enc.lm_logits(ours), mlm.logits, atol=1e-4)  # the trained MLM head went out too
    assert not torch.allclose(ours, AutoModel.from_pretrained(hf_models["bert"]).eval()(
        input_ids=x, attention_mask=(x != enc.pad_id).long()).last_hidden_state, atol=1e-5)  # trained weights
    # init_from an exported folder; exporting into an existing folder is refused
    r2 = recipe(hf_models["bert"], [{"name": "mlm"}], data, init_from=str(folder))
    _, _, again = built(r2)
    with torch.no_grad():
        assert torch.allclose(again.encoder.eval().forward_tokens(x), ours, atol=1e-5)
    from sslkit.export import export

    with pytest.raises(ConfigError, match=r"^--to: .*export already exists"):
        export(res.run_dir, folder)
    proc = sslkit_main("export", res.run_dir, "--to", folder)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "already exists" in proc.stderr


def test_export_of_our_own_encoder_is_safetensors_and_json(tmp_path):
    from sslkit.export import export

    r = {"data": {"name": "pydoc_blocks", "max_length": 16, "max_documents": 6},
         "encoder": {"name": "gpt", "dim": 16, "depth": 1, "heads": 2},
         "objectives": [{"name": "clm", "sample_tokens": 0}], "trainer": dict(TRAIN)}
    res = sslkit.run(r, out=tmp_path / "run")
    folder = export(res.run_dir, tmp_path / "out")
    meta = json.loads((folder / "sslkit_encoder.json").read_text())
    assert meta["format"] == "safetensors" and meta["encoder"]["name"] == "gpt" and meta["encoder"]["dim"] == 16
    assert meta["tokenizer"]["name"] == "byte" and len(meta["tokenizer"]["vocab"]) == 261
    from safetensors.torch import load_file

    weights = load_file(str(folder / "encoder.safetensors"))
    _, _, model = sslkit.runner.load_run(res.run_dir)
    assert all(torch.equal(weights[k], v) for k, v in model.encoder.state_dict().items())
    _, _, again = built({**r, "encoder": {**r["encoder"], "init_from": str(folder)}})
    assert all(torch.equal(again.encoder.state_dict()[k], v) for k, v in weights.items())
