"""Simulated annotators, majority vote, Dawid–Skene, and K label columns in the csv dataset."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sslkit import config
from sslkit.data.annotators import confusion_partners, majority_vote, simulate_annotations
from sslkit.data.dawid_skene import dawid_skene, posterior
from sslkit.errors import ConfigError
from sslkit.runner import build_data


def data_of(raw):
    return build_data(config.resolve({"data": raw}))


Y = torch.arange(20000) % 10


def test_uniform_annotators_accuracy_noise_and_missing_rate():
    ann = simulate_annotations(Y, 10, 4, accuracy=0.4, noise="uniform", missing_rate=0.25, seed=3)
    assert ann.shape == (20000, 4) and ann.dtype == torch.long
    present = ann >= 0
    assert abs(present.float().mean().item() - 0.75) < 0.01
    right = (ann == Y[:, None]) & present
    assert abs(right.sum().item() / present.sum().item() - 0.4) < 0.01
    wrong = ann[present & ~right]
    wrong_offset = (wrong - Y[:, None].expand_as(ann)[present & ~right]) % 10
    # every wrong class equally likely: offsets 1..9 each about 1/9 of the errors, never 0
    freq = torch.bincount(wrong_offset, minlength=10).float() / len(wrong)
    assert freq[0] == 0 and (freq[1:] - 1 / 9).abs().max() < 0.01
    assert torch.equal(ann, simulate_annotations(Y, 10, 4, 0.4, "uniform", 0.25, seed=3))
    assert not torch.equal(ann, simulate_annotations(Y, 10, 4, 0.4, "uniform", 0.25, seed=4))


def test_class_confusing_annotators_err_towards_their_own_partner():
    ann = simulate_annotations(Y, 10, 3, accuracy=0.6, noise="class_confusing", seed=0)
    partners = confusion_partners(10, 3, np.random.RandomState(0))
    assert (partners != np.arange(10)).all(), "a class is never its own confusion partner"
    for k in range(3):
        wrong = ann[:, k] != Y
        assert torch.equal(ann[wrong, k], torch.as_tensor(partners[k])[Y[wrong]])
        assert abs(wrong.float().mean().item() - 0.4) < 0.015
    assert len({tuple(p) for p in partners}) == 3


def test_unlabeled_rows_get_no_annotations_and_bad_settings_fail():
    ann = simulate_annotations(torch.tensor([0, -1, 2]), 3, 2, 1.0)
    assert ann.tolist() == [[0, 0], [-1, -1], [2, 2]]
    for kwargs, key in [({"annotators": 0}, "annotators"), ({"accuracy": 1.5}, "annotator_accuracy"),
                        ({"missing_rate": 1.0}, "annotator_missing_rate"), ({"noise": "bursty"}, "annotator_noise")]:
        args = {"annotators": 2, **kwargs}
        with pytest.raises(ConfigError) as err:
            simulate_annotations(Y[:10], 10, **args)
        assert err.value.path == f"data.{key}"


def test_majority_vote_breaks_ties_among_the_tied_classes_only():
    ann = torch.tensor([[1, 1, 2], [-1, -1, -1], [0, 2, -1], [3, -1, -1]])
    votes = torch.stack([majority_vote(ann, 4, seed=s) for s in range(40)])
    assert (votes[:, 0] == 1).all() and (votes[:, 1] == -1).all() and (votes[:, 3] == 3).all()
    assert set(votes[:, 2].tolist()) == {0, 2}, "a tie goes to either tied class, depending on the seed"


def test_dawid_skene_recovers_systematic_annotators():
    y = torch.arange(3000) % 5
    ann = simulate_annotations(y, 5, 3, accuracy=0.6, noise="class_confusing", seed=1)
    fit = dawid_skene(ann, 5, iterations=50)
    mv = majority_vote(ann, 5, seed=0)
    ds_acc = (fit.posterior.argmax(1) == y).float().mean().item()
    assert ds_acc > 0.95 and ds_acc > (mv == y).float().mean().item() + 0.2
    assert (fit.confusion.diagonal(dim1=1, dim2=2) - 0.6).abs().max() < 0.06
    assert torch.allclose(fit.posterior.sum(1), torch.ones(3000))


def test_dawid_skene_posterior_by_hand():
    confusion = torch.tensor([[[0.9, 0.1], [0.2, 0.8]], [[0.6, 0.4], [0.3, 0.7]]])
    prior = torch.tensor([0.3, 0.7])
    q = posterior(torch.tensor([[0, 1], [1, -1]]), confusion, prior)
    a, b = 0.3 * 0.9 * 0.4, 0.7 * 0.2 * 0.7  # row 0: annotator 0 says 0, annotator 1 says 1
    c, d = 0.3 * 0.1, 0.7 * 0.8  # row 1: only annotator 0, says 1
    assert torch.allclose(q, torch.tensor([[a / (a + b), b / (a + b)], [c / (c + d), d / (c + d)]]))


@pytest.mark.slow
def test_recipe_annotators_noise_the_training_split_only():
    clean = data_of({"name": "digits"})
    d = data_of({"name": "digits", "annotators": 3, "annotator_accuracy": 0.4, "annotator_missing_rate": 0.1})
    ann = d.train["annotations"]
    assert ann.shape == (len(d.train), 3) and "annotations" not in d.test
    assert torch.equal(d.train["y_true"], clean.train["y"]) and torch.equal(d.test["y"], clean.test["y"])
    acc = ((ann == d.train["y_true"][:, None]) & (ann >= 0)).sum() / (ann >= 0).sum()
    assert 0.36 < acc < 0.44
    assert torch.equal(d.train["y"], majority_vote(ann, 10, 0)), "train y is the annotators' majority vote"
    again = data_of({"name": "digits", "annotators": 3, "annotator_accuracy": 0.4, "annotator_missing_rate": 0.1})
    assert torch.equal(again.train["annotations"], ann)
    with pytest.raises(ConfigError) as err:
        data_of({"name": "digits", "annotators": 0})
    assert err.value.path == "data.annotators"
    with pytest.raises(ConfigError, match="one of"):
        config.resolve({"data": {"name": "digits", "annotators": 2, "annotator_noise": "bursty"}})


def _csv(tmp_path, rows, header="f1,f2,a,b,c"):
    path = tmp_path / "crowd.csv"
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return str(path)


def test_csv_reads_k_label_columns(tmp_path):
    rows = [f"{i},{i % 3},{i % 2},{i % 2},{(i + 1) % 2}" for i in range(12)] + ["5,5,1,,0"]
    d = build_data(config.resolve({"data": {"name": "csv", "path": _csv(tmp_path, rows),
                                            "label_columns": ["a", "b", "c"], "test_size": 0.25}}))
    ann = torch.cat([d.train["annotations"], d.test["annotations"]])
    assert ann.shape == (13, 3) and (ann == -1).sum() == 1
    assert d.info.class_names == ["0", "1"]


@pytest.mark.parametrize("rows,raw,fragment", [
    (["1,2,0,1,7"], {"classes": ["0", "1"]}, "line 2, column 'c': label '7' is not one of"),
    (["1,2,0,1,1", "1,2,0,-2,1"], {}, "line 3, column 'b': label '-2' is negative"),
    (["1,2,0,1,1", "3,4,,,"], {}, "line 3: all 3 label columns are missing"),
    (["1,2,0,1,1", "3,4,0,1"], {}, "line 3: 4 fields, header has 5"),
    (["1,2,0,1,1"], {"label_columns": []}, "at least one label column"),
])
def test_csv_label_errors_name_the_row(tmp_path, rows, raw, fragment):
    cfg = {"name": "csv", "path": _csv(tmp_path, rows), "label_columns": ["a", "b", "c"], **raw}
    with pytest.raises(ConfigError, match=fragment):
        build_data(config.resolve({"data": cfg}))
