"""Reporters: which ones a run gets, a clear error for a reporter without the objective it reads, and a
reporter written outside sslkit (tutorial 10) checked against a hand computation."""
from __future__ import annotations

import pytest
import torch

import sslkit
from sslkit import config
from sslkit.errors import ConfigError
from sslkit.reporters.base import reporter_specs
from sslkit.runner import build_data, build_model
from sslkit.trainer import Trainer

from conftest import RECIPES

SMOKE = {"trainer.max_steps": 3, "trainer.progress": False}


def test_defaults_are_curves_and_the_objectives_reporters():
    cfg = config.load_recipe(RECIPES / "vae_digits.yaml")
    model = build_model(cfg, build_data(cfg))
    names = [s if isinstance(s, str) else s["name"] for _, s in reporter_specs(cfg, model.objectives)]
    assert names == ["curves", "sample_quality", "probe", "samples", "reconstructions", "latent"]
    listed = {**cfg, "reporters": [{"name": "probe", "features": "encoder"}]}
    assert reporter_specs(listed, model.objectives) == [("reporters[0]", {"name": "probe", "features": "encoder"})]


def test_listed_reporters_replace_the_defaults(tmp_path):
    res = sslkit.run(RECIPES / "supervised_digits.yaml", overrides={**SMOKE, "reporters": []}, out=tmp_path / "r")
    assert not (res.run_dir / "curves.png").exists() and (res.run_dir / "metrics.json").is_file()


def test_reporter_without_its_objective_stops_at_build():
    with pytest.raises(ConfigError, match=r"reporters\[1\].*'samples' needs an objective that generates samples"):
        sslkit.validate(RECIPES / "supervised_digits.yaml", ["reporters=[curves, samples]"])
    with pytest.raises(ConfigError, match=r"reporters\[0\]\.score_splits"):
        sslkit.validate(RECIPES / "vae_digits.yaml", ["reporters=[{name: sample_quality, score_splits: 0}]"])


def test_tutorial_reporter_matches_a_hand_computation():
    """The tutorial's ``confusion`` reporter: balanced accuracy is the mean over classes of the share of
    that class's test rows predicted right."""
    pytest.importorskip("sklearn")
    cfg = config.load_recipe(RECIPES / "supervised_digits.yaml",
                             ["imports=[docs.tutorials.confusion_reporter]", "reporters=[confusion]",
                              "trainer.max_steps=20", "trainer.progress=false"])
    data = build_data(cfg)
    trainer = Trainer(cfg, data, build_model(cfg, data), torch.device("cpu"), None)
    final = trainer.fit()
    model = trainer.model.eval()
    with torch.no_grad():
        pred = model.objectives[0].logits(data.test["x"], model.encoder).argmax(1)
    y = data.test["y"]
    recall = [float((pred[y == c] == c).double().mean()) for c in y.unique()]
    assert final["balanced_accuracy"] == pytest.approx(sum(recall) / len(recall), abs=1e-9)
