"""``trainer.ema_decay``: an exponential moving average of the whole model's weights, updated after each
step with timm's warm-up, that evaluation, metrics.json, ``load_run`` and ``encoder.init_from`` use, and
that checkpoints keep (resume equality is in test_resume.py)."""
from __future__ import annotations

import pytest
import torch

import sslkit
from sslkit import checkpoint, config
from sslkit.ema import warmup_decay
from sslkit.errors import ConfigError
from sslkit.runner import build_data, build_model, load_encoder_weights, load_run

TINY = {
    "seed": 0,
    "data": {"name": "digits", "labels_per_class": 5},
    "encoder": {"name": "mlp", "hidden": [16], "batch_norm": True},  # buffers: the model's own
    "objectives": [{"name": "supervised"}],
    "reporters": [],
    "trainer": {"batch_size": 16, "optimizer": {"name": "adamw", "lr": 0.05}, "scheduler": {"name": "constant"},
                "progress": False, "threads": 1, "eval_every": 100000},
}


def run(tmp_path, name, **overrides):
    res = sslkit.run(TINY, overrides=overrides, out=tmp_path / name)
    return res.metrics, checkpoint.load(tmp_path / name / "checkpoints" / "last.pt")


def test_warmup_decay_is_timms():
    assert warmup_decay(0.999, 0) == pytest.approx(0.1)
    assert warmup_decay(0.999, 2) == pytest.approx(3 / 12)
    assert warmup_decay(0.5, 100) == 0.5


def test_the_average_follows_the_formula_step_by_step(tmp_path):
    """Runs of 1, 2 and 3 steps give the raw weights w1..w3 (a constant schedule: a shorter run is the
    start of a longer one); the average after 3 steps is computed by hand from them and the initial w0,
    with decays 0.1, min(0.15, 2/11) = 0.15 and 0.15."""
    d = 0.15
    cfg = config.resolve(TINY)
    w0 = build_model(cfg, build_data(cfg)).state_dict()
    states = [run(tmp_path, f"s{k}", **{"trainer.max_steps": k, "trainer.ema_decay": d})[1] for k in (1, 2, 3)]
    raw = [w0] + [state["model"] for state in states]
    average = states[-1]["ema_model"]
    assert set(average) == {n for n, _ in build_model(cfg, build_data(cfg)).named_parameters()}
    for name, got in average.items():
        expect = raw[0][name].clone()
        for step, decay in enumerate((0.1, 0.15, 0.15)):
            expect = decay * expect + (1 - decay) * raw[step + 1][name]
        torch.testing.assert_close(got, expect, rtol=1e-5, atol=1e-6, msg=name)
        assert not got.equal(raw[3][name])  # it is an average, not the last weights


def test_evaluation_and_the_saved_model_use_the_average(tmp_path):
    """The average changes nothing in training (the raw weights equal a run without it), but the test
    accuracy is the average's: it equals an evaluation of the weights load_run returns (the average),
    and differs from the raw weights' accuracy (the run without the average)."""
    steps = {"trainer.max_steps": 8}
    plain, plain_state = run(tmp_path, "plain", **steps)
    ema, ema_state = run(tmp_path, "ema", **steps, **{"trainer.ema_decay": 0.9})
    for name, w in plain_state["model"].items():
        assert ema_state["model"][name].equal(w), name
    assert ema["ema_decay"] == 0.9 and "ema_decay" not in plain
    assert ema["test_accuracy"] != plain["test_accuracy"]

    cfg, data, model = load_run(tmp_path / "ema")
    for name, w in ema_state["ema_model"].items():
        assert dict(model.named_parameters())[name].equal(w), name
    with torch.no_grad():
        again = model.objectives[0].evaluate(data, model.encoder, 16, torch.device("cpu"))
    assert again["test_accuracy"] == ema["test_accuracy"]

    # a later stage's encoder.init_from starts from the average too
    encoder = build_model(cfg, data).encoder
    load_encoder_weights(encoder, str(tmp_path / "ema"))
    for name, w in encoder.named_parameters():
        assert w.equal(ema_state["ema_model"][f"encoder.{name}"]), name


def test_off_by_default_leaves_the_checkpoint_as_it_was(tmp_path):
    _, state = run(tmp_path, "plain", **{"trainer.max_steps": 2})
    assert set(state) == {"model", "optimizers", "schedulers", "streams", "step", "total_steps",
                          "train_time_s", "rng", "history"}


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1])
def test_a_decay_outside_0_1_is_a_config_error(bad):
    with pytest.raises(ConfigError) as err:
        sslkit.validate(TINY, {"trainer.ema_decay": bad})
    assert err.value.path == "trainer.ema_decay"


def test_the_plan_says_evaluation_uses_the_average():
    from sslkit.runner import validate_report

    _, lines = validate_report(TINY, {"trainer.ema_decay": 0.999})
    assert any("moving average" in line and "0.999" in line for line in lines)
    _, lines = validate_report(TINY)
    assert not any("moving average" in line for line in lines)
