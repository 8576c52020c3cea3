"""Every shipped recipe runs (at smoke size) and writes its final metrics."""
from __future__ import annotations

import shutil

import pytest

import sslkit

from conftest import RECIPES, ROOT, SMOKE, recipe_smoke_overrides

pytestmark = pytest.mark.slow  # every test here trains or runs the CLI

ALL = sorted(RECIPES.glob("*.yaml"))


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_recipe_runs_at_smoke_size(path, tmp_path, monkeypatch, request):
    monkeypatch.chdir(ROOT)  # recipes name their data (examples/own_data/...) relative to the repository root
    for kind in ("bert", "gpt2", "llama"):
        if f"models/tiny-{kind}" in path.read_text():  # the folder `python -m sslkit.encoders.hf_tiny` makes
            shutil.copytree(request.getfixturevalue("hf_models")[kind], tmp_path / "runs" / "models" / f"tiny-{kind}")
            monkeypatch.chdir(tmp_path)
    data = recipe_smoke_overrides(path, tmp_path / "data")  # image datasets: tiny files, nothing downloaded
    sslkit.validate(path, [f"{k}={v}" for k, v in data.items()])
    res = sslkit.run(path, overrides={**SMOKE, **data}, out=tmp_path / path.stem)
    assert (res.run_dir / "metrics.json").is_file()
    # a staged recipe reports every stage's step as "stage/step"
    steps = [v for k, v in res.metrics.items() if k == "step" or k.endswith("/step")]
    assert steps and all(s == 3 for s in steps)
