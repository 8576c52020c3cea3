"""Datasets, splits, labels_per_class, streams and views."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sslkit.data import Examples, DataInfo, TensorData, prepare
from sslkit.data.digits import digits
from sslkit.data.stream import Stream
from sslkit.data.views import Strong, Weak, cutout
from sslkit.errors import ConfigError
from sslkit.runner import build_data
from sslkit import config

COMMON = {"labels_per_class": None, "test_size": 0.25}


def data_of(raw):
    return build_data(config.resolve({"data": raw}))


def test_digits_stratified_split():
    d = data_of({"name": "digits"})
    assert len(d.train) + len(d.test) == 1797 and len(d.test) == 450
    tr = np.bincount(d.train["y"].numpy()) / len(d.train)
    te = np.bincount(d.test["y"].numpy()) / len(d.test)
    assert np.abs(tr - te).max() < 0.01
    assert d.train["x"].shape[1:] == (1, 8, 8) and 0 <= d.train["x"].min() and d.train["x"].max() <= 1


def test_a_test_split_smaller_than_the_classes_is_a_config_error():
    """Found by the validation fuzz test: 1.6 % of 40 moons is one test row for two classes. scikit-learn's
    ValueError becomes one line at data.test_size."""
    with pytest.raises(ConfigError, match=r"data.test_size: 0.015625 of 40 rows cannot be split: .*number of classes"):
        data_of({"name": "moons", "n_samples": 40, "test_size": 0.015625})


def test_labels_per_class_hides_the_rest():
    d = data_of({"name": "digits", "labels_per_class": 5})
    y = d.train["y"]
    assert (y >= 0).sum() == 50 and np.bincount(y[y >= 0].numpy()).tolist() == [5] * 10
    assert (d.train["y_true"] >= 0).all()
    kept = y >= 0
    assert (y[kept] == d.train["y_true"][kept]).all()
    assert len(d.labeled) == 50


@pytest.mark.parametrize("lpc,msg", [(0, "must be >= 1, got 0"), (500, "has only")])
def test_labels_per_class_errors(lpc, msg):
    with pytest.raises(ConfigError, match=msg) as err:
        data_of({"name": "digits", "labels_per_class": lpc})
    assert err.value.path == "data.labels_per_class"


def test_class_without_labels_is_an_error():
    x = torch.randn(40, 2)
    y = torch.tensor([0] * 20 + [-1] * 20)  # class 1 never labeled
    info = DataInfo("tabular", (2,), 2, ["a", "b"])
    with pytest.raises(ConfigError, match="class.*b.*no labeled"):
        prepare(Examples({"x": x, "y": y}, info), COMMON, 0)


def test_moons_and_text_datasets():
    m = data_of({"name": "moons", "n_samples": 200})
    assert m.train["x"].shape[1] == 2 and m.info.num_classes == 2
    t = data_of({"name": "docstrings", "max_length": 64})
    assert t.info.modality == "text" and t.info.num_classes == 6 and t.train["x"].shape[1] == 64
    assert (t.train["x"][:, 0] == t.info.tokenizer.cls_id).all()
    c = data_of({"name": "pydoc_topics", "tokenizer": {"name": "char"}})
    assert c.info.num_classes == 0 and (c.train["y"] == -1).all()
    tok = c.info.tokenizer
    assert tok.decode(tok.encode("the for statement")) == "the for statement"


def test_csv_dataset_and_row_errors(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{'cat' if i % 2 else 'dog'}\n" for i in range(40)))
    d = data_of({"name": "csv", "path": str(good)})
    assert d.info.class_names == ["cat", "dog"] and d.train["x"].shape[1] == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n3,oops,y\n")
    with pytest.raises(ConfigError, match="line 3, column 'b'"):
        data_of({"name": "csv", "path": str(bad)})
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,label\n1,2,x\n3,y\n")
    with pytest.raises(ConfigError, match="line 3"):
        data_of({"name": "csv", "path": str(ragged)})
    with pytest.raises(ConfigError, match="not found"):
        data_of({"name": "csv", "path": str(tmp_path / "missing.csv")})


@pytest.mark.slow
def test_text_files_and_image_folder(tmp_path):
    for c in ("pos", "neg"):
        (tmp_path / "txt" / c).mkdir(parents=True)
        for i in range(6):
            (tmp_path / "txt" / c / f"{i}.txt").write_text(f"{c} document number {i}")
    d = data_of({"name": "text_files", "root": str(tmp_path / "txt")})
    assert d.info.class_names == ["neg", "pos"] and len(d.train) + len(d.test) == 12
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / "img" / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((10, 12, 3), 40 * i, dtype=np.uint8)).save(tmp_path / "img" / c / f"{i}.png")
    d = data_of({"name": "image_folder", "root": str(tmp_path / "img"), "image_size": 8})
    batch = d.train.fetch(torch.tensor([0, 1]))
    assert batch["x"].shape == (2, 3, 8, 8) and d.info.class_names == ["a", "b"]
    # images directly in the root are unlabeled rows (y -1), all kept for training
    for i in range(5):
        Image.fromarray(np.full((10, 12, 3), 7 * i, dtype=np.uint8)).save(tmp_path / "img" / f"u{i}.png")
    d = data_of({"name": "image_folder", "root": str(tmp_path / "img"), "image_size": 8})
    assert (d.train["y"] == -1).sum() == 5 and len(d.train) + len(d.test) == 13 and (d.test["y"] >= 0).all()
    # a folder of images without class folders: an unlabeled dataset
    (tmp_path / "loose").mkdir()
    for i in range(6):
        Image.fromarray(np.full((10, 12, 3), 9 * i, dtype=np.uint8)).save(tmp_path / "loose" / f"{i}.jpg")
    (tmp_path / "loose" / "notes.txt").write_text("not an image")
    d = data_of({"name": "image_folder", "root": str(tmp_path / "loose"), "image_size": 8, "grayscale": True})
    assert d.info.num_classes == 0 and len(d.train) + len(d.test) == 6
    assert d.train.fetch(torch.tensor([0]))["x"].shape == (1, 1, 8, 8)
    with pytest.raises(ConfigError, match="no images in"):
        data_of({"name": "image_folder", "root": str(tmp_path / "txt" / "pos")})


@pytest.mark.parametrize("name,max_length", [("docstrings", 2), ("pydoc_blocks", 1)])
def test_a_text_row_too_short_for_its_specials_names_max_length(name, max_length):
    with pytest.raises(ConfigError, match="must") as err:
        data_of({"name": name, "max_length": max_length})
    assert err.value.path == "data.max_length"


def test_a_fitted_vocabulary_learns_no_word_of_the_test_rows(tmp_path):
    # every document has a word of its own: those of the test documents must be <unk>, not vocabulary
    for c in ("neg", "pos"):
        (tmp_path / c).mkdir()
        for i in range(8):
            (tmp_path / c / f"{i}.txt").write_text(f"{c} shared words own{c}{i} own{c}{i}")
    for seed in (0, 1):
        d = build_data(config.resolve({"seed": seed, "data": {"name": "text_files", "root": str(tmp_path),
                                                              "tokenizer": {"name": "word", "min_freq": 1}}}))
        tok = d.info.tokenizer
        vocab = set(tok.vocab)
        train_words = {w for row in d.train["x"] for w in tok.decode(row).split()}
        test_words = {w for row in d.test["x"] for w in tok.decode(row).split()}
        assert {"shared", "words", "neg", "pos"} <= vocab
        owned = {w for w in vocab if w.startswith("own")}
        assert len(owned) == len(d.train) and owned <= train_words  # one own word per training document
        test_own = {f"own{c}{i}" for c in ("neg", "pos") for i in range(8)} - owned
        assert len(test_own) == len(d.test) and not test_own & (vocab | test_words)  # theirs are not learned
        assert all((row == tok.unk_id).sum() == 2 for row in d.test["x"])  # both copies of its own word


def test_stream_wraps_resumes_and_shards():
    data = TensorData({"x": torch.arange(10)})
    s = Stream(data, 4, seed=0, key="k")
    seen = [next(s)["x"] for _ in range(5)]
    assert all(len(b) == 4 for b in seen)
    first_pass = torch.cat(seen)[:10]
    assert sorted(first_pass.tolist()) == list(range(10))  # each pass is a permutation
    state = s.state_dict()
    after = [next(s)["x"] for _ in range(3)]
    s2 = Stream(data, 4, seed=0, key="k")
    s2.load_state_dict(state)
    assert all((a == b).all() for a, b in zip(after, [next(s2)["x"] for _ in range(3)]))
    r0, r1 = Stream(data, 4, 0, "k", rank=0, world=2), Stream(data, 4, 0, "k", rank=1, world=2)
    full = Stream(data, 4, 0, "k")
    for _ in range(4):
        b0, b1, b = next(r0)["x"], next(r1)["x"], next(full)["x"]
        assert sorted(torch.cat([b0, b1]).tolist()) == sorted(b.tolist())


def test_views_are_random_per_sample_and_keep_shape():
    ex = digits(0)
    x = ex.columns["x"][:256]
    torch.manual_seed(0)
    for view in (Weak(ex.info), Strong(ex.info)):
        v = view(x)
        assert v.shape == x.shape and torch.isfinite(v).all()
        diff = (v - x).flatten(1).abs().mean(1)
        assert diff.std() > 0, "samples must get different random transformations"
    same = x[:1].repeat(64, 1, 1, 1)
    out = Strong(ex.info)(same)
    assert len({tuple(o.flatten().tolist()) for o in out}) > 50
    holes = cutout(torch.ones(8, 1, 8, 8), 0.5)
    assert ((holes == 0).flatten(1).sum(1) == 16).all()


def test_text_views_never_mask_specials():
    d = data_of({"name": "docstrings", "max_length": 64})
    ids = d.train["x"][:64]
    masked = Strong(d.info)(ids)
    tok = d.info.tokenizer
    special = (ids == tok.pad_id) | (ids == tok.cls_id) | (ids == tok.sep_id)
    assert (masked[special] == ids[special]).all()
    rate = (masked != ids)[~special].float().mean().item()
    assert 0.25 < rate < 0.35  # strong text view masks 30 %


def test_unlabeled_rows_only_train():
    """Rows without a label (-1) cannot be scored: all of them go to the training split, and the labeled
    rows are split stratified exactly as they would be without the unlabeled ones."""
    from sslkit.data.base import stratified_split

    y = np.array([0] * 20 + [1] * 20)
    tr0, te0 = stratified_split(y, 0.25, seed=3)
    mixed = np.concatenate([y, -np.ones(15, dtype=int)])
    tr, te = stratified_split(mixed, 0.25, seed=3)
    assert sorted(te) == sorted(te0) and set(range(40, 55)) <= set(tr)
    assert len(set(tr) | set(te)) == 55 and not set(tr) & set(te)


@pytest.mark.slow
def test_docstrings_with_unlabeled_stdlib_text():
    cfg = config.resolve({"data": {"name": "docstrings", "unlabeled": "stdlib", "max_length": 16},
                          "encoder": {"name": "transformer", "dim": 16, "depth": 1, "heads": 2},
                          "objectives": [{"name": "supervised"}]})
    data = build_data(cfg)
    plain = build_data(config.resolve({**cfg, "data": {"name": "docstrings", "max_length": 16}}))
    y = data.train.columns["y"]
    assert (y == -1).sum() > 1000 and (data.test.columns["y"] >= 0).all()
    assert len(data.test) == len(plain.test) and int((y >= 0).sum()) == len(plain.train)
