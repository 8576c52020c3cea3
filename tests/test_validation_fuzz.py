"""Property: whatever a recipe holds, validation ends in a resolved recipe or a ConfigError (exit 2,
one line), never another exception."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sslkit import config, runner
from sslkit.errors import ConfigError

# keys a recipe really has, so that random values reach deep into the schema and the parts
PATHS = ["seed", "data", "data.name", "data.labels_per_class", "data.test_size", "data.annotators",
         "data.annotator_accuracy", "encoder", "encoder.name", "encoder.hidden", "encoder.dropout",
         "objectives", "objectives[0]", "objectives[0].name", "objectives[0].weight", "objectives[0].relation",
         "objectives[0].relation.threshold", "objectives[0].label_smoothing", "regularizer", "trainer",
         "trainer.epochs", "trainer.max_steps", "trainer.batch_size", "trainer.optimizer", "trainer.optimizer.lr",
         "trainer.optimizer.name", "trainer.scheduler", "trainer.scheduler.warmup_steps", "trainer.threads",
         "trainer.precision", "imports", "stages"]
NAMES = ["digits", "moons", "mlp", "cnn", "supervised", "pseudo_label", "confidence", "adamw", "sgd", "cosine",
         "l2", "nonesuch", ""]

scalars = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from(NAMES) | st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(NAMES + ["name", "lr", "hidden", "threshold"]) | st.text(max_size=6),
                                        inner, max_size=3), max_leaves=8)
BASE = {"data": {"name": "moons", "n_samples": 40}, "encoder": {"name": "mlp", "hidden": [4]},
        "objectives": [{"name": "supervised"}], "trainer": {"max_steps": 1}}


def _outcome(fn, raw):
    try:
        return fn(raw)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc), "a config error is one line"
        return None


HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@settings(max_examples=25, deadline=None, suppress_health_check=HEALTH)
@given(st.dictionaries(st.sampled_from(PATHS), values, max_size=4))
def test_random_overrides_resolve_or_raise_config_error(overrides):
    try:
        raw = config.apply_overrides(BASE, overrides)
    except ConfigError:
        return
    resolved = _outcome(config.resolve, raw)
    if resolved is not None:
        assert resolved["trainer"]["batch_size"] >= 1 and resolved["trainer"]["epochs"] >= 1
    _outcome(runner.validate, raw)  # the CLI's validate path: builds the data and the parts too


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=HEALTH)
@given(st.dictionaries(st.text(max_size=10) | st.sampled_from([p.split(".")[0] for p in PATHS]), values, max_size=5))
def test_random_top_level_mappings(raw):
    _outcome(runner.validate, raw)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_numbers_are_refused(value):
    with pytest.raises(ConfigError, match="trainer.optimizer.lr: must be >= 0"):
        config.resolve(config.apply_overrides(BASE, {"trainer.optimizer.lr": value}))
