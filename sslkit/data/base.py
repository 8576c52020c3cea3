"""Datasets as columns of tensors, and the train/test/labeled split every dataset goes through.

A dataset builder (registered under ``datasets``) returns :class:`Examples`: named
columns (``x``, ``y`` and any others such as ``annotations``) plus a :class:`DataInfo`.
The framework then makes the stratified test split and hides labels beyond
``labels_per_class`` (hidden labels become ``-1`` in ``y``; the truth stays in
``y_true`` for diagnostics only, never for training).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch

from ..errors import ConfigError

UNLABELED = -1


@dataclass
class DataInfo:
    """What encoders and objectives need to know about the data.

    modality: ``image``, ``tabular`` or ``text``.
    input_shape: shape of one ``x`` (``(C, H, W)``, ``(D,)`` or ``(T,)`` token ids).
    num_classes: number of classes (0 for unlabeled corpora).
    class_names: a name per class.
    tokenizer: the text tokenizer (text data only).
    """

    modality: str
    input_shape: tuple
    num_classes: int = 0
    class_names: list = field(default_factory=list)
    tokenizer: Any = None
    name: str = ""


class LazyColumn:
    """A column whose rows are loaded on demand (e.g. image files); indexable by an index tensor."""

    def __init__(self, load_row, length: int, index: Optional[torch.Tensor] = None):
        self.load_row = load_row
        self.index = torch.arange(length) if index is None else index

    def __len__(self):
        return len(self.index)

    def __getitem__(self, idx):
        rows = self.index[idx]
        if rows.dim() == 0:
            return self.load_row(int(rows))
        return torch.stack([self.load_row(int(i)) for i in rows])

    def subset(self, idx) -> "LazyColumn":
        return LazyColumn(self.load_row, 0, self.index[idx])


class TensorData:
    """Equal-length named columns; ``fetch(idx)`` gathers a batch without a Python loop over rows."""

    def __init__(self, columns: dict):
        lengths = {k: len(v) for k, v in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns have different lengths: {lengths}")
        self.columns = columns

    def __len__(self):
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def fetch(self, idx: torch.Tensor) -> dict:
        return {k: v[idx] for k, v in self.columns.items()}

    def subset(self, idx) -> "TensorData":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return TensorData({k: (v.subset(idx) if isinstance(v, LazyColumn) else v[idx]) for k, v in self.columns.items()})

    def with_column(self, name: str, values) -> "TensorData":
        """A copy with one more column (or ``name`` replaced); the other columns are shared."""
        return TensorData({**self.columns, name: values})

    def __getitem__(self, key):
        return self.columns[key]

    def __contains__(self, key):
        return key in self.columns


@dataclass
class Examples:
    """What a dataset builder returns: columns, their description, and optionally a fixed test split.

    fit: for data with a part learned from the rows themselves (a word or BPE tokenizer's vocabulary).
        Once the test split is drawn, :func:`prepare` calls it with the training rows' indices; it returns
        the columns to add (made with what it learned from those rows only) and the :class:`DataInfo` to
        use, so that no test row shapes what the model is trained with.
    """

    columns: dict
    info: DataInfo
    test_columns: Optional[dict] = None
    fit: Optional[Callable[[np.ndarray], tuple]] = None


@dataclass
class DataBundle:
    """The prepared data of a run."""

    info: DataInfo
    train: TensorData
    test: TensorData

    @property
    def labeled(self) -> TensorData:
        return labeled_rows(self.train)

    def streamed_train(self) -> TensorData:
        """The training rows as the trainer streams them: with a ``row`` column, each row's index in
        ``train``, so that a part which computed something for every training row once (a relation over
        the whole set) can find a batch's rows in it."""
        return self.train.with_column(ROW, torch.arange(len(self.train)))


ROW = "row"  # the column of a streamed batch that holds each row's index in the training rows


def labeled_rows(rows: TensorData) -> TensorData:
    """The rows of ``rows`` that carry a label (``y >= 0``); none when there is no ``y`` column."""
    y = rows.columns.get("y")
    if y is None:
        return TensorData({})
    return rows.subset(torch.nonzero(y >= 0).flatten())


def stratified_split(y: np.ndarray, test_size: float, seed: int):
    """Indices (train, test) of a stratified split, as scikit-learn's ``train_test_split`` makes it.
    When some rows are labeled and some not (label -1), only the labeled rows are split: a row without
    a label cannot be scored, so every unlabeled row trains."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    labeled = y >= 0
    if labeled.any() and not labeled.all():
        rows = idx[labeled]
        strat = y[labeled] if len(np.unique(y[labeled])) > 1 else None
        tr, te = train_test_split(rows, test_size=test_size, stratify=strat, random_state=seed)
        return np.concatenate([tr, idx[~labeled]]), te
    if labeled.all() and len(np.unique(y)) > 1:
        return train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)
    return train_test_split(idx, test_size=test_size, random_state=seed)


def hide_labels(y: np.ndarray, labels_per_class: int, num_classes: int, seed: int, path: str) -> np.ndarray:
    """Keep ``labels_per_class`` labels per class (chosen with ``seed``), set the others to -1."""
    rng = np.random.RandomState(seed)
    kept = np.full_like(y, UNLABELED)
    for c in range(num_classes):
        rows = np.flatnonzero(y == c)
        if len(rows) < labels_per_class:
            raise ConfigError(path, f"{labels_per_class} labels per class requested but class {c} has only "
                                    f"{len(rows)} training examples")
        chosen = rng.choice(rows, labels_per_class, replace=False)
        kept[chosen] = c
    return kept


def prepare(examples: Examples, common: dict, seed: int, path: str = "data") -> DataBundle:
    """Split ``examples`` into train/test (then fit what :attr:`Examples.fit` learns on the training rows)
    and apply ``labels_per_class``."""
    info = examples.info
    if examples.fit is not None and examples.test_columns is not None:  # a dataset author's mistake, not a user's
        raise TypeError(f"dataset '{info.name}': Examples.fit is for data split here; with a fixed test split, "
                        f"fit on the training rows in the builder (as corpus_examples does)")
    columns = {k: (v if isinstance(v, (torch.Tensor, LazyColumn)) else torch.as_tensor(v)) for k, v in examples.columns.items()}
    if "y" not in columns:
        columns["y"] = torch.full((len(next(iter(columns.values()))),), UNLABELED, dtype=torch.long)
    data = TensorData(columns)
    y = columns["y"].numpy()
    if len(data) == 0:
        raise ConfigError(path, "the dataset is empty")
    if info.num_classes and ((y >= info.num_classes) | (y < UNLABELED)).any():
        bad = int(np.flatnonzero((y >= info.num_classes) | (y < UNLABELED))[0])
        raise ConfigError(path, f"row {bad}: label {int(y[bad])} is outside [0, {info.num_classes})")
    if info.num_classes == 1:
        only = (info.class_names or ["0"])[0]
        raise ConfigError(path, f"dataset '{info.name}': every labeled row is of class '{only}'; classification "
                                f"needs at least two classes")
    if examples.test_columns is not None:
        train, test = data, TensorData({k: torch.as_tensor(v) if not isinstance(v, LazyColumn) else v
                                        for k, v in examples.test_columns.items()})
    else:
        counts = np.bincount(y[y >= 0], minlength=info.num_classes or 0)
        lone = [int(c) for c in np.flatnonzero(counts == 1)]
        if lone and common["test_size"]:  # scikit-learn would name the class by its index
            names = [str(info.class_names[c]) if info.class_names else str(c) for c in lone]
            raise ConfigError(path, f"dataset '{info.name}': class '{names[0]}' has a single labeled row; a "
                                    f"stratified train/test split needs at least 2 rows of every class")
        try:
            tr, te = stratified_split(y, common["test_size"], seed)
        except ValueError as exc:  # scikit-learn's: a split with fewer test (or train) rows than classes
            raise ConfigError(f"{path}.test_size", f"{common['test_size']} of {len(y)} rows cannot be split: "
                                                   + " ".join(str(exc).split())) from None
        tr, te = np.sort(tr), np.sort(te)
        if examples.fit is not None:
            try:
                fitted, info = examples.fit(tr)
            except (ValueError, OSError) as exc:
                raise ConfigError(path, f"dataset '{info.name}': {exc}") from None
            data = TensorData({**data.columns, **fitted})
        train, test = data.subset(tr), data.subset(te)
    y_train = train.columns["y"].clone()
    train.columns["y_true"] = y_train.clone()
    lpc = common.get("labels_per_class")
    if lpc is not None:
        if not info.num_classes:
            raise ConfigError(f"{path}.labels_per_class", f"dataset '{info.name}' has no labels to keep")
        train.columns["y"] = torch.as_tensor(
            hide_labels(y_train.numpy(), lpc, info.num_classes, seed, f"{path}.labels_per_class"))
    if common.get("annotators") is not None:
        _annotate(train, info, common, seed, path)
    if info.num_classes:
        present = set(train.columns["y"][train.columns["y"] >= 0].tolist())
        missing = sorted(set(range(info.num_classes)) - present)
        if missing:
            names = [info.class_names[c] if c < len(info.class_names) else str(c) for c in missing]
            raise ConfigError(path, f"class(es) {', '.join(map(str, names))} have no labeled training example")
    return DataBundle(info, train, test)


def _annotate(train: TensorData, info: DataInfo, common: dict, seed: int, path: str) -> None:
    """Replace the training labels by K simulated annotators' (``annotations`` [N, K], -1 missing);
    ``y`` becomes their majority vote so label-only objectives train on it, ``y_true`` keeps the truth.
    Rows hidden by ``labels_per_class`` get no annotations. The test split keeps its clean labels."""
    from .annotators import majority_vote, simulate_annotations

    if not info.num_classes:
        raise ConfigError(f"{path}.annotators", f"dataset '{info.name}' has no labels to annotate")
    if "annotations" in train.columns:
        raise ConfigError(f"{path}.annotators", f"dataset '{info.name}' already has annotations; omit this key")
    annotations = simulate_annotations(
        train.columns["y"], info.num_classes, common["annotators"],
        common["annotator_accuracy"], common["annotator_noise"], common["annotator_missing_rate"],
        seed, path)
    train.columns["annotations"] = annotations
    train.columns["y"] = majority_vote(annotations, info.num_classes, seed)
