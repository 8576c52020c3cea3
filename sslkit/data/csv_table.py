"""Users' own tabular data from a CSV file: feature columns and one or more label columns."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..registry import register
from .base import UNLABELED, DataInfo, Examples


def _read(path: str, delimiter: str):
    p = Path(path)
    if not p.is_file():
        raise ConfigError("data.path", f"file not found: {path}")
    with p.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    if not rows:
        raise ConfigError("data.path", f"{path} is empty")
    return rows[0], rows[1:]


@register("datasets", "csv")
def csv_table(seed: int, *, path: str, label_columns: Union[str, list[str]] = "label",
              feature_columns: Optional[list[str]] = None, delimiter: str = ",", missing_label: str = "") -> Examples:
    """Rows of a CSV file with a header. Features must be numeric; labels may be any strings.

    path: the CSV file. label_columns: one column, or K columns of (noisy) annotations per row.
    feature_columns: default every non-label column. delimiter: field separator.
    missing_label: the cell value meaning "not annotated" (stored as -1).
    With several label columns the rows get an ``annotations`` column ``[N, K]`` and ``y`` is their
    majority vote.
    """
    header, rows = _read(path, delimiter)
    labels = [label_columns] if isinstance(label_columns, str) else list(label_columns)
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
                x[r, j] = float(row[i])
            except ValueError:
                raise ConfigError("data.path", f"{path} line {line}, column '{feats[j]}': "
                                               f"'{row[i]}' is not a number") from None
        raw_labels.append([row[i] for i in li])
    values = sorted({v for row in raw_labels for v in row if v != missing_label})
    numeric = all(v.lstrip("-").isdigit() for v in values)
    classes = [str(v) for v in sorted(int(v) for v in values)] if numeric else values
    index = {c: k for k, c in enumerate(classes)}
    lab = np.array([[index[str(int(v))] if numeric and v != missing_label else index.get(v, UNLABELED)
                     for v in row] for row in raw_labels], dtype=np.int64).reshape(len(rows), len(labels))
    columns = {"x": torch.from_numpy(x)}
    if len(labels) == 1:
        columns["y"] = torch.from_numpy(lab[:, 0])
    else:
        columns["annotations"] = torch.from_numpy(lab)
        votes = np.stack([(lab == c).sum(1) for c in range(len(classes))], 1)
        y = np.where(votes.max(1) > 0, votes.argmax(1), UNLABELED)
        columns["y"] = torch.from_numpy(y)
    info = DataInfo("tabular", (len(feats),), len(classes), classes, name="csv")
    return Examples(columns, info)
