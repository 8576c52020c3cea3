"""The pseudo-label objective: its loss against a hand computation, its metrics, every relation
end to end at smoke size, the recipes, and the label-budget edge cases."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import sslkit
from sslkit.config import ObjectiveCommon
from sslkit.data import DataInfo
from sslkit.data.base import Examples, prepare
from sslkit.errors import ConfigError
from sslkit.objectives.base import ObjectiveContext
from sslkit.relations.base import Relation, Targets
from sslkit.schema import build

from conftest import RECIPES, SMOKE, sslkit_main, recomputed_accuracy


class Linear2(nn.Linear):
    out_dim = 2


def toy_objective(**params):
    torch.manual_seed(0)
    info = DataInfo("tabular", (2,), 2, ["a", "b"], name="toy")
    encoder = Linear2(2, 2)
    with torch.no_grad():
        encoder.weight.copy_(torch.eye(2))
        encoder.bias.zero_()
    ctx = ObjectiveContext(info, encoder, None, "objectives[0]", 0)
    obj = build("objectives", {"name": "pseudo_label", **params}, ctx, path="objectives[0]", common=ObjectiveCommon)
    with torch.no_grad():  # head: logits = [x0 - x1, x1 - x0]
        obj.head.weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
        obj.head.bias.zero_()
    return obj, encoder


def toy_batch():
    xl = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    weak = torch.tensor([[2.0, 0.0], [0.0, 0.1], [0.0, 3.0]])
    strong = torch.tensor([[0.5, 0.0], [1.0, 0.0], [0.0, 0.5]])
    return {"labeled": {"x": xl + 9, "y": torch.tensor([0, 1]), "views": [xl]},
            "unlabeled": {"x": weak, "y": torch.full((3,), -1), "y_true": torch.tensor([0, 0, 0]),
                          "views": [weak, strong]}}


def nll(logits, c):
    """-log softmax(logits)[c], written out."""
    return math.log(sum(math.exp(v) for v in logits)) - logits[c]


def logits_of(x):
    return [x[0] - x[1], x[1] - x[0]]


@pytest.mark.parametrize("kind", ["hard", "soft"])
def test_loss_matches_hand_computation(kind):
    obj, enc = toy_objective(relation={"name": "confidence", "threshold": 0.9}, loss=kind, unlabeled_weight=0.5)
    out = obj(toy_batch(), enc)
    sup = (nll(logits_of([1, 0]), 0) + nll(logits_of([0, 2]), 1)) / 2
    # weak logits [2,-2], [-0.1,0.1], [-3,3] -> max prob 0.982, 0.55, 0.9975: keep samples 0 and 2
    weak = [[2, 0], [0, 0.1], [0, 3]]
    strong = [[0.5, 0], [1, 0], [0, 0.5]]
    probs = [[math.exp(v) / sum(math.exp(u) for u in logits_of(w)) for v in logits_of(w)] for w in weak]
    mask = [1.0 if max(p) >= 0.9 else 0.0 for p in probs]
    assert mask == [1.0, 0.0, 1.0]
    if kind == "hard":
        per = [nll(logits_of(s), int(np.argmax(p))) for s, p in zip(strong, probs)]
    else:
        per = [sum(pc * nll(logits_of(s), c) for c, pc in enumerate(p)) for s, p in zip(strong, probs)]
    unsup = sum(m * v for m, v in zip(mask, per)) / 3
    assert math.isclose(float(out.loss.detach()), sup + 0.5 * unsup, rel_tol=1e-5)
    assert math.isclose(float(out.metrics["mask_rate"]), 2 / 3, rel_tol=1e-6)
    # kept pseudo-labels: class 0 (right, y_true 0) and class 1 (wrong)
    assert math.isclose(float(out.metrics["pseudo_accuracy"]), 0.5, rel_tol=1e-6)
    out.loss.backward()
    assert enc.weight.grad is not None and obj.head.weight.grad is not None


class RowTargets(Relation):
    """Targets fixed per training row (as label_spreading's): reads no weak view."""

    reads_weak_view = False

    def __init__(self, probs, weight):
        super().__init__()
        self.probs, self.weight = torch.tensor(probs), torch.tensor(weight)

    def forward(self, inp):
        assert inp.x is None and inp.logits is None and inp.features is None
        return Targets(self.probs[inp.rows], self.weight[inp.rows])


def test_a_relation_that_reads_no_weak_view_gets_none():
    """A relation whose targets are looked up by row: the unlabeled stream draws only the strong view, the
    encoder sees the labeled and strong rows only, and the loss is the hand computation on the strong view."""
    obj, enc = toy_objective(relation={"name": "confidence"}, unlabeled_weight=0.5)
    obj.relation = RowTargets([[0.2, 0.8], [0.9, 0.1], [0.6, 0.4], [0.5, 0.5]], [1.0, 1.0, 0.0, 1.0])
    assert obj.streams()["unlabeled"].views == (obj.views[1],)
    batch = toy_batch()
    strong = batch["unlabeled"]["views"][1]
    batch["unlabeled"]["views"] = [strong]
    batch["unlabeled"]["row"] = torch.tensor([3, 0, 2])
    seen = []
    enc.register_forward_hook(lambda module, args, out: seen.append(len(args[0])))
    out = obj(batch, enc)
    assert seen == [2 + 3]
    sup = (nll(logits_of([1, 0]), 0) + nll(logits_of([0, 2]), 1)) / 2
    # rows 3, 0, 2: targets argmax 0 (tie -> first), 1, 0 (weight 0)
    unsup = (nll(logits_of([0.5, 0]), 0) + nll(logits_of([1, 0]), 1)) / 3
    assert math.isclose(float(out.loss.detach()), sup + 0.5 * unsup, rel_tol=1e-5)
    assert math.isclose(float(out.metrics["mask_rate"]), 2 / 3, rel_tol=1e-6)


def test_rampup_and_running_totals():
    obj, enc = toy_objective(relation={"name": "confidence", "threshold": 0.9}, rampup_steps=2)
    out = obj(toy_batch(), enc)
    sup = float(out.metrics["supervised_loss"])
    assert math.isclose(float(out.loss.detach()), sup, rel_tol=1e-6)  # ramp 0 at the first step
    obj.after_step(0, enc)
    out = obj(toy_batch(), enc)
    assert math.isclose(float(out.loss.detach()), sup + 0.5 * float(out.metrics["unlabeled_loss"]), rel_tol=1e-6)
    assert obj.totals.tolist() == pytest.approx([4 / 3, 2.0, 2.0, 4.0])


def test_hidden_labels_never_reach_the_loss():
    obj, enc = toy_objective(relation={"name": "confidence", "threshold": 0.9})
    b1, b2 = toy_batch(), toy_batch()
    b2["unlabeled"]["y_true"] = torch.tensor([1, 1, 1])
    assert float(obj(b1, enc).loss.detach()) == float(obj(b2, enc).loss.detach())


def smoke_run(tmp_path, recipe="semi_moons.yaml", **overrides):
    return sslkit.run(RECIPES / recipe, overrides={**SMOKE, **overrides}, out=tmp_path / "r")


@pytest.mark.slow
def test_moons_recipe_writes_metrics_and_decision_boundary(tmp_path):
    """Three steps at seed 0 already separate the moons well above chance (0.5; 0.83 when written); the
    reported accuracy is the saved model's, and the run's mean mask rate the mean of the logged ones."""
    res = smoke_run(tmp_path, **{"trainer.log_every": 1})
    assert res.metrics["test_accuracy"] == pytest.approx(recomputed_accuracy(res.run_dir), abs=1e-9)
    assert res.metrics["test_accuracy"] >= 0.75
    assert (res.run_dir / "decision_boundary.png").stat().st_size > 1000
    rows = [json.loads(line) for line in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [r["pseudo_label/mask_rate"] for r in rows if "pseudo_label/mask_rate" in r]
    assert len(rates) == 3 and res.metrics["mean_mask_rate"] == pytest.approx(sum(rates) / 3, rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("relation", [
    {"name": "soft", "align": True},
    {"name": "adaptive"},
    {"name": "adaptive", "mode": "flexmatch"},
    {"name": "teacher"},
    {"name": "propagation"},
    {"name": "prototype"},
    {"name": "agreement", "relations": [{"name": "propagation"}, {"name": "label_spreading"}]},
    # every relation looked up by row: the weak view of the unlabeled rows is neither drawn nor encoded
    {"name": "agreement", "relations": [{"name": "label_spreading"}, {"name": "label_spreading", "k": 3}]},
])
def test_every_relation_trains(tmp_path, relation):
    res = smoke_run(tmp_path, **{"objectives[0].relation": relation, "objectives[0].loss": "soft",
                                 "trainer.max_steps": 2})
    assert "test_accuracy" in res.metrics and "mean_mask_rate" in res.metrics


def test_label_spreading_targets_follow_the_streamed_rows(tmp_path):
    """label_spreading looks its targets up by the `row` column the trainer adds to every batch: on moons
    its graph labels nearly every hidden row right, so pseudo-labels judged against the batches' own
    hidden truth are right only if each batch brought the right row indices (a shuffled lookup would be
    right about half the time)."""
    res = smoke_run(tmp_path, **{"objectives[0].relation": {"name": "label_spreading", "k": 10, "alpha": 0.99},
                                 "trainer.max_steps": 5})
    assert res.metrics["mean_mask_rate"] == 1.0
    assert res.metrics["pseudo_label_accuracy"] >= 0.95


@pytest.mark.slow
def test_teacher_state_is_checkpointed(tmp_path):
    res = smoke_run(tmp_path, **{"objectives[0].relation": {"name": "teacher", "decay": 0.5}})
    state = torch.load(res.run_dir / "checkpoints" / "last.pt", weights_only=False)["model"]
    teacher = [k for k in state if ".relation.teacher." in k]
    assert teacher and "objectives.0.totals" in state
    student = state["encoder.net.1.weight"]
    assert not torch.equal(state["objectives.0.relation.teacher.0.net.1.weight"], student)


@pytest.mark.slow
def test_threshold_that_masks_everything_is_reported(tmp_path):
    with pytest.warns(UserWarning, match="masked out"):
        res = smoke_run(tmp_path, **{"objectives[0].relation": {"name": "confidence", "threshold": 1.0}})
    assert res.metrics["mean_mask_rate"] == 0.0
    assert "pseudo_label_accuracy" not in res.metrics


@pytest.mark.slow
def test_digits_and_text_recipes_run(tmp_path):
    res = smoke_run(tmp_path, "semi_digits_fixmatch.yaml", **{"trainer.max_steps": 2})
    assert "test_accuracy" in res.metrics and "mean_mask_rate" in res.metrics
    # the composed recipe: contrastive pretraining, then pseudo_label from its encoder
    res = sslkit.run(RECIPES / "semi_digits.yaml", overrides={**SMOKE, "trainer.max_steps": 2}, out=tmp_path / "staged")
    assert "finetune/test_accuracy" in res.metrics and "finetune/mean_mask_rate" in res.metrics
    assert "pretrain/linear_probe_accuracy" in res.metrics
    # text, composed the same way: mlm pretraining, then pseudo_label from its encoder
    res = sslkit.run(RECIPES / "semi_docstrings.yaml", overrides={**SMOKE, "trainer.max_steps": 2,
                                                                   "data.max_length": 32}, out=tmp_path / "text")
    assert "finetune/test_accuracy" in res.metrics and "finetune/mean_mask_rate" in res.metrics
    assert "pretrain/test_masked_accuracy" in res.metrics


def test_composed_digits_recipe_pretrains_like_the_contrastive_recipe():
    """recipes/semi_digits.yaml's pretrain stage trains contrastive_digits.yaml's objective, encoder and schedule
    (its 400 epochs included), and its finetune stage starts from it."""
    from sslkit import config
    from sslkit.stages import resolve_stages

    (pre, _), (_, source) = resolve_stages(config.load_yaml(RECIPES / "semi_digits.yaml")).values()
    contrastive = config.resolve(config.load_yaml(RECIPES / "contrastive_digits.yaml"))
    assert source == "pretrain"
    assert pre["objectives"] == contrastive["objectives"] and pre["encoder"] == contrastive["encoder"]
    assert pre["data"]["name"] == contrastive["data"]["name"]
    for key in ("epochs", "batch_size", "optimizer", "scheduler"):
        assert pre["trainer"][key] == contrastive["trainer"][key], key


# ------------------------------------------------------------------ label-budget edge cases
def test_more_labels_per_class_than_a_class_has(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.labels_per_class: 400 labels per class requested but class \d "
                                          r"has only \d+ training examples"):
        smoke_run(tmp_path, **{"data.labels_per_class": 400})


@pytest.mark.slow
def test_zero_labels_per_class_is_rejected_by_the_cli():
    proc = sslkit_main("run", RECIPES / "semi_moons.yaml", "--set", "data.labels_per_class=0",
                      "--set", "trainer.max_steps=1")
    assert proc.returncode == 2
    assert "data.labels_per_class: must be >= 1, got 0" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def _examples(y):
    info = DataInfo("tabular", (2,), 3, ["a", "b", "c"], name="toy")
    return Examples({"x": torch.zeros(len(y), 2), "y": torch.tensor(y)}, info)


def test_a_class_without_any_label_is_rejected():
    y = [0] * 10 + [1] * 10 + [-1] * 10  # class "c" has no labeled row
    with pytest.raises(ConfigError, match="class\\(es\\) c have no labeled training example"):
        prepare(_examples(y), {"test_size": 0.25}, 0)


def test_no_labels_at_all_is_rejected():
    with pytest.raises(ConfigError, match="class\\(es\\) a, b, c have no labeled"):
        prepare(_examples([-1] * 30), {"test_size": 0.25}, 0)


def test_unknown_relation_and_key_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"objectives\[0\]\.relation\.name: unknown relation 'confidance'; "
                                          r"did you mean 'confidence'"):
        smoke_run(tmp_path, **{"objectives[0].relation": {"name": "confidance"}})
    with pytest.raises(ConfigError, match=r"objectives\[0\]\.relation\.treshold"):
        smoke_run(tmp_path, **{"objectives[0].relation": {"name": "confidence", "treshold": 0.9}})
