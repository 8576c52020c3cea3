"""Users' own tabular data from a CSV file: feature columns and one or more label columns."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..registry import register
from .annotators import majority_vote
from .base import UNLABELED, DataInfo, Examples


def _read(path: str, delimiter: str):
    p = Path(path)
    if not p.is_file():
        raise ConfigError("data.path", f"file not found: {path}")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError("data.path", f"{path} line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the "
                                       f"file as UTF-8") from None
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not rows:
        raise ConfigError("data.path", f"{path} is empty")
    return rows[0], rows[1:]


@register("datasets", "csv")
def csv_table(seed: int, *, path: str, label_columns: Union[str, list[str]] = "label",
              feature_columns: Optional[list[str]] = None, delimiter: str = ",", missing_label: str = "",
              classes: Optional[list[str]] = None) -> Examples:
    """Rows of a CSV file with a header. Features must be numeric; labels may be any strings.

    path: the CSV file. label_columns: one column, or K columns of (noisy) annotations per row.
    feature_columns: default every non-label column. delimiter: field separator.
    missing_label: the cell value meaning "not annotated" (stored as -1).
    classes: the class names in index order; a label outside them is an error (default: the sorted
    distinct labels; numeric labels must then be non-negative integers).
    With several label columns the rows get an ``annotations`` column ``[N, K]`` (for weak
    supervision, e.g. the ``weak_ova`` objective) and ``y`` is their majority vote (ties broken at
    random with the seed); every such row needs at least one label.
    """
    header, rows = _read(path, delimiter)
    labels = [label_columns] if isinstance(label_columns, str) else list(label_columns)
    if not labels:
        raise ConfigError("data.label_columns", "give at least one label column (K = 0 leaves nothing to learn)")
    for col in labels + list(feature_columns or []):
        if col not in header:
            raise ConfigError("data", f"{path}: column '{col}' not in header {header}")
    feats = feature_columns or [c for c in header if c not in labels]
    if not feats:
        raise ConfigError("data.feature_columns", f"{path}: no feature columns")
    fi, li = [header.index(c) for c in feats], [header.index(c) for c in labels]
    x = np.empty((len(rows), len(feats)), dtype=np.float32)
    raw_labels = []
    for r, row in enumerate(rows):
        line = r + 2  # 1-based, after the header
        if len(row) != len(header):
            raise ConfigError("data.path", f"{path} line {line}: {len(row)} fields, header has {len(header)}")
        for j, i in enumerate(fi):
            try:
                x[r, j] = value = float(row[i])
            except ValueError:
                raise ConfigError("data.path", f"{path} line {line}, column '{feats[j]}': "
                                               f"'{row[i]}' is not a number") from None
            if not math.isfinite(value):  # it would make the first loss NaN, far from its cause
                raise ConfigError("data.path", f"{path} line {line}, column '{feats[j]}': '{row[i]}' is not a "
                                               f"finite number; fill in or drop the row")
        raw_labels.append([row[i] for i in li])
    values = sorted({v for row in raw_labels for v in row if v != missing_label})
    numeric = bool(values) and all(v.lstrip("-").isdigit() for v in values)
    if classes is not None:
        classes = [str(c) for c in classes]
        if len(set(classes)) != len(classes) or len(classes) < 2:
            raise ConfigError("data.classes", f"needs at least 2 distinct class names, got {classes}")
        expected = f"is not one of data.classes {classes}"
    elif numeric:  # class indices; negative numbers are a mistake (or an unset missing_label)
        classes = [str(v) for v in sorted({int(v) for v in values if int(v) >= 0})]
        expected = "is negative: numeric labels are class indices >= 0 (set missing_label for unlabeled cells)"
    else:
        classes, expected = values, ""
    index = {c: k for k, c in enumerate(classes)}
    if numeric:  # '07' and '7' are the same class
        index.update({v: index[str(int(v))] for v in values if str(int(v)) in index})
    for r, row in enumerate(raw_labels):
        for k, v in enumerate(row):
            if v != missing_label and v not in index:
                raise ConfigError("data.path", f"{path} line {r + 2}, column '{labels[k]}': label '{v}' {expected}")
    lab = np.array([[index.get(v, UNLABELED) for v in row] for row in raw_labels],
                   dtype=np.int64).reshape(len(rows), len(labels))
    if len(labels) > 1:
        empty = np.flatnonzero((lab == UNLABELED).all(1))
        if len(empty):
            raise ConfigError("data.path", f"{path} line {empty[0] + 2}: all {len(labels)} label columns are "
                                           f"missing ('{missing_label}'); drop the row or annotate it")
    columns = {"x": torch.from_numpy(x)}
    if len(labels) == 1:
        columns["y"] = torch.from_numpy(lab[:, 0])
    else:
        columns["annotations"] = torch.from_numpy(lab)
        columns["y"] = majority_vote(columns["annotations"], len(classes), seed)
    info = DataInfo("tabular", (len(feats),), len(classes), classes, name="csv")
    return Examples(columns, info)
