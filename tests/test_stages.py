"""Multi-stage recipes: inherited defaults, shared overrides, ``from:``, ``--stage`` and resume."""
from __future__ import annotations

import json

import pytest
import torch

import sslkit
from sslkit import checkpoint
from sslkit.errors import ConfigError
from sslkit.stages import merge, resolve_stages

from conftest import sslkit_main

STAGED = {
    "seed": 0,
    "data": {"name": "digits"},
    "encoder": {"name": "mlp", "hidden": [32]},
    "trainer": {"max_steps": 20, "progress": False, "batch_size": 32},
    "stages": {
        "pre": {"objectives": [{"name": "supervised"}]},
        "fine": {"from": "pre", "data": {"labels_per_class": 5}, "trainer": {"max_steps": 10},
                 "objectives": [{"name": "supervised", "label_smoothing": 0.1}]},
    },
}


def test_merge_is_recursive_and_replaces_lists():
    assert merge({"a": {"b": 1, "c": [1]}, "d": 1}, {"a": {"c": [2]}}) == {"a": {"b": 1, "c": [2]}, "d": 1}


def test_stages_inherit_and_overrides_apply_to_all():
    stages = resolve_stages(STAGED, ["trainer.max_steps=2"])
    assert list(stages) == ["pre", "fine"]
    pre, fine = stages["pre"][0], stages["fine"][0]
    assert pre["encoder"]["hidden"] == fine["encoder"]["hidden"] == [32]
    assert fine["data"]["labels_per_class"] == 5 and fine["data"]["name"] == "digits"
    assert pre["trainer"]["max_steps"] == fine["trainer"]["max_steps"] == 2
    assert stages["fine"][1] == "pre"
    only = resolve_stages(STAGED, ["stages.fine.trainer.max_steps=7"])
    assert only["fine"][0]["trainer"]["max_steps"] == 7 and only["pre"][0]["trainer"]["max_steps"] == 20


def test_stage_errors_name_the_stage():
    bad = merge(STAGED, {"stages": {"fine": {"objectives": [{"name": "supervised", "label_smothing": 0.1}]}}})
    with pytest.raises(ConfigError) as err:
        resolve_stages(bad)
    assert err.value.path == "stages.fine.objectives[0].label_smothing"
    bad = merge(STAGED, {"stages": {"pre": {"from": "fine"}}})
    with pytest.raises(ConfigError, match="not an earlier stage"):
        resolve_stages(bad)


@pytest.mark.slow
def test_pipeline_runs_stages_in_order_and_starts_from_earlier_weights(tmp_path):
    res = sslkit.run(STAGED, overrides={"trainer.max_steps": 3}, out=tmp_path / "p")
    assert res.metrics["pre/step"] == 3 and res.metrics["fine/step"] == 3
    assert "fine/test_accuracy" in json.loads((tmp_path / "p" / "metrics.json").read_text())
    fine_cfg = (tmp_path / "p" / "fine" / "config.yaml").read_text()
    assert "init_from:" in fine_cfg and str(tmp_path / "p" / "pre") in fine_cfg
    # the fine stage's encoder started from the pre stage's final weights
    pre_state = checkpoint.load(tmp_path / "p" / "pre" / "checkpoints" / "last.pt")["model"]
    cfg, data, model = sslkit.runner.load_run(tmp_path / "p" / "fine")
    assert not torch.equal(pre_state["encoder.net.1.weight"], model.encoder.net[1].weight)  # trained further
    # --stage reruns one stage only, using the earlier stage's folder
    with pytest.raises(ConfigError, match="already holds a run; pass --overwrite"):
        sslkit.run(STAGED, overrides={"trainer.max_steps": 3}, out=tmp_path / "p", stage="fine")
    (tmp_path / "p" / "fine" / "metrics.json").unlink()
    sslkit.run(STAGED, overrides={"trainer.max_steps": 3}, out=tmp_path / "p", stage="fine", overwrite=True)
    assert (tmp_path / "p" / "fine" / "metrics.json").is_file()
    with pytest.raises(ConfigError, match="did you mean 'fine'"):
        sslkit.run(STAGED, out=tmp_path / "p", stage="fin")


@pytest.mark.slow
def test_resume_skips_finished_stages(tmp_path):
    sslkit.run(STAGED, overrides={"trainer.max_steps": 3}, out=tmp_path / "p")
    pre_metrics = (tmp_path / "p" / "pre" / "metrics.json").read_text()
    (tmp_path / "p" / "fine" / "metrics.json").unlink()
    proc = sslkit_main("run", "--resume", tmp_path / "p")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "p" / "pre" / "metrics.json").read_text() == pre_metrics
    fine = json.loads((tmp_path / "p" / "fine" / "metrics.json").read_text())
    assert fine["step"] == 3, "the first run's --set trainer.max_steps=3 must survive the resume"


@pytest.mark.slow
def test_staged_run_folder_is_guarded_like_a_single_run(tmp_path):
    top = tmp_path / "p"
    sslkit.run(STAGED, overrides={"trainer.max_steps": 2}, out=top)
    assert json.loads((top / "metrics.json").read_text())["status"] == "finished"
    with pytest.raises(ConfigError, match="already holds a run; pass --overwrite"):
        sslkit.run(STAGED, overrides={"trainer.max_steps": 2}, out=top)
    before = {p: p.read_bytes() for p in top.rglob("*") if p.is_file()}
    res = sslkit.run(resume=top)  # finished: nothing trains, nothing is written
    assert res.already_finished and {p: p.read_bytes() for p in top.rglob("*") if p.is_file()} == before
    with pytest.raises(ConfigError, match="cannot be changed on --resume"):
        sslkit.run(resume=top, overrides={"encoder.hidden": [8]})
    # a stage that fails marks the stage folder and the pipeline folder
    bad = {**STAGED, "stages": {**STAGED["stages"], "fine": {**STAGED["stages"]["fine"], "data": {"labels_per_class": 999}}}}
    with pytest.raises(ConfigError, match="labels per class requested"):
        sslkit.run(bad, overrides={"trainer.max_steps": 2}, out=tmp_path / "q")
    for d in (tmp_path / "q", tmp_path / "q" / "fine"):
        assert json.loads((d / "metrics.json").read_text())["status"] == "failed"
    assert json.loads((tmp_path / "q" / "pre" / "metrics.json").read_text())["status"] == "finished"


def test_stage_after_an_unfinished_stage_stops_with_an_error_naming_it(tmp_path):
    """An interrupted pretraining stage (a checkpoint but no metrics.json) or a missing one: the next
    stage refuses to start instead of training from partial or random weights."""
    sslkit.run(STAGED, overrides={"trainer.max_steps": 3}, out=tmp_path / "p", stage="pre")
    (tmp_path / "p" / "pre" / "metrics.json").unlink()  # as if killed after its last checkpoint
    with pytest.raises(ConfigError, match="stage 'pre' did not finish") as err:
        sslkit.run(STAGED, overrides={"trainer.max_steps": 3}, out=tmp_path / "p", stage="fine")
    assert err.value.path == "stages.fine.from"
    (tmp_path / "p" / "pre" / "metrics.json").write_text('{"status": "failed", "error": "bad data"}')
    with pytest.raises(ConfigError, match="stage 'pre' did not finish"):  # a failed stage writes metrics.json too
        sslkit.run(STAGED, overrides={"trainer.max_steps": 3}, out=tmp_path / "p", stage="fine")
    with pytest.raises(ConfigError, match="stage 'pre' did not finish"):
        sslkit.run(STAGED, overrides={"trainer.max_steps": 3}, out=tmp_path / "q", stage="fine")
    proc = sslkit_main("run", "--stage", "fine", "--out", tmp_path / "q", "--set", "trainer.max_steps=3", _write_staged(tmp_path))
    assert proc.returncode == 2 and "stage 'pre' did not finish" in proc.stderr and "Traceback" not in proc.stderr


def _write_staged(tmp_path):
    import yaml

    path = tmp_path / "staged.yaml"
    path.write_text(yaml.safe_dump(STAGED, sort_keys=False))
    return path


@pytest.mark.slow
def test_export_of_a_staged_run_says_which_stage_and_takes_stage(tmp_path):
    """`sslkit export` of a staged run exports its last trained stage and says so; --stage picks another;
    an unknown stage is exit 2 naming the stages."""
    from sslkit.export import CONFIG

    sslkit.run(STAGED, overrides={"trainer.max_steps": 2}, out=tmp_path / "p")
    last = sslkit_main("export", tmp_path / "p", "--to", tmp_path / "e1")
    assert last.returncode == 0 and f"exported stage 'fine' of {tmp_path / 'p'}" in last.stdout
    pre = sslkit_main("export", tmp_path / "p", "--to", tmp_path / "e2", "--stage", "pre")
    assert pre.returncode == 0 and "exported stage 'pre'" in pre.stdout
    assert json.loads((tmp_path / "e2" / CONFIG).read_text())["run"] == str(tmp_path / "p" / "pre")
    bad = sslkit_main("export", tmp_path / "p", "--to", tmp_path / "e3", "--stage", "fin")
    assert bad.returncode == 2 and "--stage: 'fin' is not a trained stage" in bad.stderr and "did you mean 'fine'" in bad.stderr
    assert not (tmp_path / "e3").exists()
