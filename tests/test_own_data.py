"""The README's "Your own data" recipes: the weak-supervision variant of the CSV recipe (the plain
recipes run in test_recipes.py)."""
from __future__ import annotations

import pytest

import sslkit

from conftest import RECIPES, ROOT, SMOKE

pytestmark = pytest.mark.slow  # every test here trains or runs the CLI


def test_csv_with_annotator_columns_trains_weak_ova(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    res = sslkit.run(RECIPES / "own_csv.yaml", out=tmp_path / "weak", overrides={
        **SMOKE, "data.label_columns": ["annotator_1", "annotator_2", "annotator_3"],
        "objectives": [{"name": "weak_ova"}]})
    assert res.metrics["step"] == 3 and 0 <= res.metrics["test_accuracy"] <= 1
