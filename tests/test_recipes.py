"""Every shipped recipe runs (at smoke size) and writes its final metrics."""
from __future__ import annotations

import shutil

import pytest

import sslkit

from conftest import RECIPES, SMOKE

ALL = sorted(RECIPES.glob("*.yaml"))


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_recipe_runs_at_smoke_size(path, tmp_path, monkeypatch, request):
    for kind in ("bert", "gpt2", "llama"):
        if f"models/tiny-{kind}" in path.read_text():  # the folder `python -m sslkit.encoders.hf_tiny` makes
            shutil.copytree(request.getfixturevalue("hf_models")[kind], tmp_path / "models" / f"tiny-{kind}")
            monkeypatch.chdir(tmp_path)
    sslkit.validate(path)
    res = sslkit.run(path, overrides=dict(SMOKE), out=tmp_path / path.stem)
    assert (res.run_dir / "metrics.json").is_file()
    # a staged recipe reports every stage's step as "stage/step"
    steps = [v for k, v in res.metrics.items() if k == "step" or k.endswith("/step")]
    assert steps and all(s == 3 for s in steps)
