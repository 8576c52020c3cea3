"""The weak_ova objective: the seed's formula by hand, its label models, errors, and recipes."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import sslkit
from sslkit import config
from sslkit.data import DataBundle, DataInfo, TensorData
from sslkit.errors import ConfigError
from sslkit.objectives.base import ObjectiveContext
from sslkit.runner import build_data, build_model
from sslkit.schema import build

from conftest import RECIPES, SMOKE, recomputed_accuracy

INFO = DataInfo("tabular", (3,), 3, ["a", "b", "c"], name="toy")
ANN = torch.tensor([[0, 2, 0], [1, -1, 1], [2, 0, -1], [1, 1, 1]])


class Features(nn.Module):
    """A fixed encoder so the logits are the head applied to ``x``."""

    out_dim = 3

    def forward(self, x):
        return x


def objective(annotations=ANN, **params):
    n = len(annotations)
    train = TensorData({"x": torch.randn(n, 3), "y": torch.zeros(n, dtype=torch.long), "annotations": annotations})
    ctx = ObjectiveContext(INFO, Features(), DataBundle(INFO, train, train), "objectives[0]", 0)
    obj = build("objectives", {"name": "weak_ova", **params}, ctx, path="objectives[0]")
    return obj, train


def test_default_is_the_seed_formula_by_hand():
    torch.manual_seed(0)
    obj, train = objective()
    batch = {"labeled": train.fetch(torch.arange(4))}
    loss = obj(batch, Features()).loss
    f = obj.head(train["x"]).detach()
    total, count = 0.0, 0
    for i in range(4):  # 1/(nK) sum_i sum_k L(f(x_i), y_i^k), missing labels not counted
        for k in range(3):
            y = int(ANN[i, k])
            if y < 0:
                continue
            count += 1
            for c in range(3):  # one-vs-all binomial loss, summed over classes
                s = 1 / (1 + math.exp(-float(f[i, c])))
                total -= math.log(s) if y == c else math.log(1 - s)
    assert count == 10
    assert loss.item() == pytest.approx(total / count, rel=1e-5)


def test_soft_vote_counts_every_row_once():
    torch.manual_seed(0)
    obj, train = objective(labels="soft_vote")
    loss = obj({"labeled": train.fetch(torch.arange(4))}, Features()).loss
    f = obj.head(train["x"]).detach()
    rows = []
    for i in range(4):
        labels = [int(v) for v in ANN[i] if v >= 0]
        t = [labels.count(c) / len(labels) for c in range(3)]
        rows.append(sum(-(t[c] * math.log(torch.sigmoid(f[i, c])) + (1 - t[c]) * math.log(1 - torch.sigmoid(f[i, c])))
                        for c in range(3)))
    assert loss.item() == pytest.approx(sum(rows) / 4, rel=1e-5)


def test_crowd_layer_loss_by_hand_and_confusion_update():
    torch.manual_seed(0)
    obj, train = objective(labels="crowd_layer", init_accuracy=0.6, warmup_steps=1, momentum=0.5)
    T = obj.label_model.confusion.clone()
    assert torch.allclose(T[1], torch.tensor([[0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [0.2, 0.2, 0.6]]))
    batch = {"labeled": train.fetch(torch.arange(4))}
    out = obj(batch, Features())
    p = torch.softmax(obj.head(train["x"]).detach(), 1)
    total, count = 0.0, 0
    for i in range(4):
        for k in range(3):
            y = int(ANN[i, k])
            if y < 0:
                continue
            count += 1
            for j in range(3):  # annotator k's predicted label distribution p T_k, one-vs-all
                pij = float(sum(p[i, c] * T[k, c, j] for c in range(3)))
                total -= math.log(pij) if y == j else math.log(1 - pij)
    assert out.loss.item() == pytest.approx(total / count, rel=1e-5)
    assert torch.equal(obj.label_model.confusion, T), "no update before warmup_steps"
    obj.after_step(0, Features())
    obj(batch, Features())
    moved = obj.label_model.confusion
    assert not torch.allclose(moved, T) and torch.allclose(moved.sum(-1), torch.ones(3, 3))


def test_dawid_skene_targets_follow_the_fitted_posterior():
    ann = torch.tensor([[0, 0, 1], [1, 1, 1], [2, 2, 0], [0, 0, 0]] * 10)
    obj, train = objective(ann, labels="dawid_skene")
    loss, targets = obj.label_model(torch.zeros(3, 3), ann[:3], 0)
    assert targets.argmax(1).tolist() == [0, 1, 2] and torch.allclose(targets.sum(1), torch.ones(3))
    assert set(obj.final_metrics()) == {f"annotator_{k}_accuracy" for k in range(3)}


def test_bad_annotations_and_settings_are_config_errors():
    with pytest.raises(ConfigError, match=r"training row 1, annotation 2: label 5 is outside \[0, 3\)"):
        objective(torch.tensor([[0, 1, 2], [0, 1, 5]]))
    with pytest.raises(ConfigError) as err:
        objective(view="weakk")
    assert err.value.path == "objectives[0].view" and "did you mean 'weak'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        objective(labels="crowd_layer", init_accuracy=1.0)
    assert err.value.path == "objectives[0].init_accuracy"
    cfg = config.resolve({"data": {"name": "digits"}, "objectives": [{"name": "weak_ova"}]})
    with pytest.raises(ConfigError, match="set data.annotators"):
        build_model(cfg, build_data(cfg))


@pytest.mark.slow
@pytest.mark.parametrize("recipe,steps,floor", [("weak_digits.yaml", 30, 0.6), ("weak_docstrings.yaml", 3, 0.0)])
def test_recipes_run_at_smoke_size(recipe, steps, floor, tmp_path):
    """The reported accuracy is the saved model's; 30 steps of the digits recipe at seed 0 learn from the
    noisy annotators well above chance (0.1; 0.76 when written)."""
    result = sslkit.run(RECIPES / recipe, overrides={**SMOKE, "trainer.max_steps": steps}, out=tmp_path / "r")
    assert result.metrics["test_accuracy"] == pytest.approx(recomputed_accuracy(tmp_path / "r"), abs=1e-9)
    assert result.metrics["test_accuracy"] >= floor
    assert "annotator_0_accuracy" in result.metrics
    assert (tmp_path / "r" / "metrics.json").is_file()


@pytest.mark.slow
def test_crowd_layer_learns_classes_and_annotator_reliability(tmp_path):
    recipe = {"seed": 0, "encoder": {"name": "mlp", "hidden": [64]},
              "data": {"name": "digits", "annotators": 3, "annotator_accuracy": 0.6},
              "objectives": [{"name": "weak_ova", "labels": "crowd_layer", "warmup_steps": 40, "momentum": 0.1}],
              "trainer": {"max_steps": 150, "batch_size": 128, "progress": False, "checkpoint_every": 1000}}
    m = sslkit.run(recipe, out=tmp_path / "r").metrics
    assert m["test_accuracy"] > 0.85
    for k in range(3):
        assert abs(m[f"annotator_{k}_accuracy"] - 0.6) < 0.1
