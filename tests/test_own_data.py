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


def _csv(tmp_path, body: bytes):
    path = tmp_path / "t.csv"
    path.write_bytes(b"f1,f2,label\n" + body)
    return path


def _validate_csv(path):
    from conftest import sslkit_main

    return sslkit_main("validate", RECIPES / "own_csv.yaml", "--set", f"data.path={path}", "--set",
                       "data.label_columns=label", "--set", "data.feature_columns=null")


def test_a_non_finite_feature_is_refused_at_load_naming_line_and_column(tmp_path):
    rows = b"".join(b"%d,%d,%s\n" % (i, i % 3, b"ab"[i % 2:i % 2 + 1]) for i in range(20))
    proc = _validate_csv(_csv(tmp_path, rows + b"1,nan,a\n"))
    assert proc.returncode == 2 and "line 22, column 'f2': 'nan' is not a finite number" in proc.stderr


def test_a_csv_that_is_not_utf8_names_the_line(tmp_path):
    rows = b"".join(b"%d,%d,%s\n" % (i, i % 3, b"ab"[i % 2:i % 2 + 1]) for i in range(20))
    proc = _validate_csv(_csv(tmp_path, rows + b"1,2,caf\x80\n"))
    assert proc.returncode == 2 and "line 22: not UTF-8 text (byte 0x80)" in proc.stderr


def test_one_class_and_a_class_of_one_row_are_refused_by_name(tmp_path):
    one = b"".join(b"%d,%d,cat\n" % (i, i % 3) for i in range(20))
    proc = _validate_csv(_csv(tmp_path, one))
    assert proc.returncode == 2 and "every labeled row is of class 'cat'" in proc.stderr
    lone = b"".join(b"%d,%d,%s\n" % (i, i % 3, b"ab"[i % 2:i % 2 + 1]) for i in range(20)) + b"3,4,zebra\n"
    proc = _validate_csv(_csv(tmp_path, lone))
    assert proc.returncode == 2 and "class 'zebra' has a single labeled row" in proc.stderr
