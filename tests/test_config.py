"""Recipe validation: every user mistake is one message naming its place, exit status 2, no traceback."""
from __future__ import annotations

import pytest

from sslkit import config
from sslkit.errors import ConfigError

from conftest import RECIPES, sslkit_cli, sslkit_main


def resolve(raw):
    return config.resolve(raw)


def test_defaults_are_filled():
    cfg = resolve({"objectives": [{"name": "supervised"}]})
    assert cfg["trainer"]["batch_size"] == 64
    assert cfg["objectives"][0]["weight"] == 1.0
    assert cfg["objectives"][0]["label_smoothing"] == 0.0
    assert cfg["trainer"]["optimizer"]["name"] == "adamw"
    assert cfg["encoder"]["hidden"] == (256, 256)


@pytest.mark.parametrize("raw,path,fragment", [
    ({"objectives": [{"name": "supervised", "label_smothing": 0.1}]}, "objectives[0].label_smothing",
     "did you mean 'label_smoothing'"),
    ({"objectives": [{"name": "supervized"}]}, "objectives[0].name", "did you mean 'supervised'"),
    ({"trainer": {"batch_size": "big"}}, "trainer.batch_size", "expected integer"),
    ({"trainer": {"epocs": 3}}, "trainer.epocs", "did you mean 'epochs'"),
    ({"trainer": {"optimizer": {"name": "adamw", "lrr": 0.1}}}, "trainer.optimizer.lrr", "did you mean 'lr'"),
    ({"trainer": {"optimizer": {"name": "adamw", "lr": "fast"}}}, "trainer.optimizer.lr", "expected number"),
    ({"trainer": {"precision": "fp16"}}, "trainer.precision", "one of"),
    ({"encoder": {"name": "mlp", "hidden": [256, "x"]}}, "encoder.hidden[1]", "expected integer"),
    ({"dataa": {"name": "digits"}}, "dataa", "did you mean 'data'"),
    ({"data": {"name": "digitz"}}, "data.name", "did you mean 'digits'"),
    ({"objectives": []}, "objectives", "at least one"),
    ({"regularizer": {"name": "l22"}}, "regularizer.name", "did you mean"),
])
def test_bad_recipe_names_the_path(raw, path, fragment):
    with pytest.raises(ConfigError) as err:
        resolve(raw)
    assert err.value.path == path
    assert fragment in str(err.value)


def test_overrides_set_nested_and_indexed_keys():
    raw = {"objectives": [{"name": "supervised"}], "encoder": "mlp"}
    out = config.apply_overrides(raw, ["objectives[0].weight=0.5", "objectives.0.label_smoothing=0.1",
                                       "encoder.hidden=[32, 16]", "trainer.max_steps=7"])
    cfg = resolve(out)
    assert cfg["objectives"][0]["weight"] == 0.5 and cfg["objectives"][0]["label_smoothing"] == 0.1
    assert cfg["encoder"]["hidden"] == [32, 16] and cfg["trainer"]["max_steps"] == 7
    assert raw["encoder"] == "mlp", "overrides must not modify the input"


@pytest.mark.parametrize("spec", ["trainer.max_steps", "=3", "a..b=1", "objectives[5].weight=1", "x=[1,"])
def test_malformed_override(spec):
    with pytest.raises(ConfigError):
        config.apply_overrides({"objectives": [{"name": "supervised"}]}, [spec])


def test_malformed_yaml_names_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  epochs: [1, 2\n")
    with pytest.raises(ConfigError) as err:
        config.load_yaml(bad)
    assert "malformed YAML" in str(err.value) and "line" in str(err.value)


def test_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("seed: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError):
        config.load_yaml(evil)


def test_recipe_must_be_mapping(tmp_path):
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        config.load_yaml(p)


@pytest.mark.slow
@pytest.mark.parametrize("args,fragment", [
    (["run", str(RECIPES / "supervised_digits.yaml"), "--set", "objectives[0].label_smothing=0.1"],
     "objectives[0].label_smothing: unknown key for objective 'supervised'; did you mean 'label_smoothing'?"),
    (["run", "no/such/recipe.yaml"], "recipe file not found"),
    (["run", str(RECIPES / "supervised_digits.yaml"), "--set", "trainer.max_steps"], "expected KEY=VALUE"),
    (["validate", str(RECIPES / "supervised_digits.yaml"), "--set", "data.labels_per_class=1000"],
     "data.labels_per_class: 1000 labels per class requested"),
    (["describe", "supervized"], "did you mean 'supervised'"),
])
def test_cli_errors_exit_2_without_traceback(args, fragment):
    proc = sslkit_main(*args)
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_cli_malformed_yaml(tmp_path):
    """In a real ``python -m sslkit`` process (the other CLI tests run in this one): exit 2, no traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {name: digits\n")
    proc = sslkit_cli("run", bad)
    assert proc.returncode == 2 and "malformed YAML" in proc.stderr and "Traceback" not in proc.stderr


def test_every_shipped_recipe_validates():
    for path in sorted(RECIPES.glob("*.yaml")):
        cfg = config.load_recipe(path)
        assert cfg["objectives"], path


def test_seed_any_value_in_range_and_a_clear_error_outside():
    from sslkit.config import MAX_SEED, resolve
    from sslkit.runner import build_data

    for seed in (3, 9, 123456, MAX_SEED):  # nothing in a recipe is indexed by seed
        cfg = resolve({"seed": seed, "data": {"name": "digits", "labels_per_class": 5}})
        assert len(build_data(cfg).labeled) == 50
    for bad in (-1, MAX_SEED + 1):
        with pytest.raises(ConfigError, match=r"must be in \[0, 2147483647\]") as err:
            resolve({"seed": bad})
        assert err.value.path == "seed"


def test_numbers_in_every_form_float_takes(tmp_path):
    """``1e-3`` (a string to YAML 1.1) is 0.001, in a recipe and in --set; words stay words."""
    from sslkit.config import load_yaml, parse_override

    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: {name: digits}\ntrainer:\n  optimizer: {name: adamw, lr: 1e-3, weight_decay: 5E-4}\n"
                      "  batch_size: 64\nnote: 1e3x\n")
    cfg = load_yaml(recipe)
    assert cfg["trainer"]["optimizer"]["lr"] == 0.001 and cfg["trainer"]["optimizer"]["weight_decay"] == 0.0005
    assert cfg["trainer"]["batch_size"] == 64 and cfg["note"] == "1e3x"
    assert parse_override("trainer.optimizer.lr=1e-3") == ("trainer.optimizer.lr", 0.001)
    assert parse_override("trainer.optimizer.lr=.5") == ("trainer.optimizer.lr", 0.5)


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: {name: digits}\ntrainer:\n  epochs: 5\n  batch_size: 32\n  epochs: 50\n")
    proc = sslkit_main("validate", recipe)
    assert proc.returncode == 2
    assert "duplicate key 'epochs' (lines 3 and 5)" in proc.stderr and str(recipe) in proc.stderr
