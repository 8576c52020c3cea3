"""Value ranges declared once (``schema.Range``) and checked by recipe validation, with the YAML path,
from ``sslkit run`` and ``sslkit validate`` alike."""
from __future__ import annotations

from typing import Annotated, Optional

import pytest

from sslkit import config
from sslkit.errors import ConfigError
from sslkit.schema import Count, Range, check_value

from conftest import RECIPES, sslkit_main

RECIPE = RECIPES / "supervised_digits.yaml"


@pytest.mark.parametrize("rng,inside,outside,text", [
    (Range(1), [1, 5], [0, -5], ">= 1"),
    (Range(0, None, min_open=True), [1e-9, 3.0], [0, -1.0], "> 0"),
    (Range(0, 1), [0, 1, 0.5], [-0.01, 1.01], "in [0, 1]"),
    (Range(0, 1, max_open=True), [0, 0.99], [1, 2], "in [0, 1)"),
    (Range(0, 1, min_open=True, max_open=True), [0.5], [0, 1], "in (0, 1)"),
    (Range(None, 10, max_open=True), [-100, 9.9], [10, 11], "< 10"),
])
def test_range_bounds_and_message(rng, inside, outside, text):
    assert str(rng) == text
    for v in inside:
        assert check_value(v, Annotated[float, rng], "a.b") == v
    for v in outside:
        with pytest.raises(ConfigError) as err:
            check_value(v, Annotated[float, rng], "a.b")
        assert str(err.value) == f"a.b: must be {text}, got {v}"


def test_range_in_lists_and_optionals_names_the_item():
    with pytest.raises(ConfigError, match=r"^encoder\.hidden\[1\]: must be >= 1, got -4$"):
        check_value([8, -4], list[Count], "encoder.hidden")
    assert check_value(None, Optional[Count], "x") is None
    with pytest.raises(ConfigError, match=r"^x: must be >= 1, got 0$"):
        check_value(0, Optional[Count], "x")


@pytest.mark.parametrize("key,value,message", [
    ("trainer.batch_size", -5, "trainer.batch_size: must be >= 1, got -5"),
    ("trainer.batch_size", 0, "trainer.batch_size: must be >= 1, got 0"),
    ("trainer.epochs", 0, "trainer.epochs: must be >= 1, got 0"),
    ("trainer.epochs", -1, "trainer.epochs: must be >= 1, got -1"),
    ("trainer.max_steps", 0, "trainer.max_steps: must be >= 1, got 0"),
    ("trainer.optimizer.lr", -1, "trainer.optimizer.lr: must be >= 0, got -1"),
    ("encoder.dropout", 2, "encoder.dropout: must be in [0, 1), got 2"),
    ("encoder.hidden", [-4], "encoder.hidden[0]: must be >= 1, got -4"),
    ("data.test_size", 1.0, "data.test_size: must be in (0, 1), got 1.0"),
    ("data.annotator_accuracy", 1.5, "data.annotator_accuracy: must be in [0, 1], got 1.5"),
    ("objectives[0].weight", -1, "objectives[0].weight: must be >= 0, got -1"),
    ("objectives[0].label_smoothing", 1, "objectives[0].label_smoothing: must be in [0, 1), got 1"),
    ("trainer.scheduler", {"name": "cosine", "warmup_steps": -3},
     "trainer.scheduler.warmup_steps: must be >= 0, got -3"),
])
def test_recipe_values_are_checked_with_their_path(key, value, message):
    raw = config.apply_overrides(config.load_yaml(RECIPE), {key: value})
    with pytest.raises(ConfigError) as err:
        config.resolve(raw)
    assert str(err.value) == message


def test_relation_and_encoder_ranges_from_their_signatures():
    raw = {"data": {"name": "moons"}, "objectives": [{"name": "pseudo_label",
                                                      "relation": {"name": "confidence", "threshold": 1.5}}]}
    with pytest.raises(ConfigError, match=r"^objectives\[0\]\.relation\.threshold: must be in \[0, 1\], got 1.5$"):
        config.resolve(raw)
    with pytest.raises(ConfigError, match=r"^encoder\.heads: must be >= 1, got 0$"):
        config.resolve({"data": {"name": "moons"}, "encoder": {"name": "transformer", "heads": 0}})


@pytest.mark.parametrize("cmd,setting,message", [
    ("run", "trainer.batch_size=-5", "trainer.batch_size: must be >= 1, got -5"),
    ("validate", "trainer.optimizer.lr=-1", "trainer.optimizer.lr: must be >= 0, got -1"),
    ("validate", "encoder.hidden=[-4]", "encoder.hidden[0]: must be >= 1, got -4"),
    ("validate", "encoder.dropout=2", "encoder.dropout: must be in [0, 1), got 2"),
    ("validate", "trainer.epochs=0", "trainer.epochs: must be >= 1, got 0"),
])
def test_cli_stops_with_one_line(cmd, setting, message, tmp_path):
    proc = sslkit_main(cmd, RECIPE, "--set", setting, "--out" if cmd == "run" else "--set",
                      tmp_path / "r" if cmd == "run" else "trainer.progress=false")
    assert proc.returncode == 2 and proc.stderr == f"error: {message}\n"
    assert not (tmp_path / "r").exists(), "nothing is written for a recipe that does not validate"


def test_empty_recipe_is_refused(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    for cmd in ("run", "validate"):
        proc = sslkit_main(cmd, empty)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr == f"error: {empty}: the recipe names no data and no objective (the file is empty)\n"
    seed_only = tmp_path / "seed.yaml"
    seed_only.write_text("seed: 3\n")
    with pytest.raises(ConfigError, match="names no data and no objective"):
        config.load_yaml(seed_only)
    with pytest.raises(ConfigError, match="names no data and no objective"):
        config.resolve({})


def test_describe_shows_the_range():
    proc = sslkit_main("describe", "confidence")
    assert "threshold: number in [0, 1] = 0.95" in proc.stdout
    assert "temperature: number > 0 = 1.0" in proc.stdout


def test_every_default_and_shipped_recipe_is_inside_its_ranges():
    from sslkit.registry import KINDS, registry
    from sslkit.stages import resolve_stages

    for kind in KINDS:
        for name in registry(kind).names():
            for p in registry(kind).get(name).params.values():
                if not p.required:
                    check_value(p.default, p.annotation, f"{kind}/{name}.{p.name}")
    for path in sorted(RECIPES.glob("*.yaml")):
        raw = config.load_yaml(path)
        resolve_stages(raw) if raw.get("stages") else config.resolve(raw)
