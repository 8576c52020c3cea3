"""Every shipped recipe runs (at smoke size) and writes its final metrics."""
from __future__ import annotations

import pytest

import sslkit

from conftest import RECIPES, ROOT, SMOKE

pytestmark = pytest.mark.slow  # every test here trains or runs the CLI

ALL = sorted(RECIPES.glob("*.yaml"))


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_recipe_runs_at_smoke_size(path, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # recipes name their data (examples/own_data/...) relative to the repository root
    sslkit.validate(path)
    res = sslkit.run(path, overrides=dict(SMOKE), out=tmp_path / path.stem)
    assert (res.run_dir / "metrics.json").is_file()
    # a staged recipe reports every stage's step as "stage/step"
    steps = [v for k, v in res.metrics.items() if k == "step" or k.endswith("/step")]
    assert steps and all(s == 3 for s in steps)
