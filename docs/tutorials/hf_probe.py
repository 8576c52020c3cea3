"""Tutorial 08: load an exported model with ``transformers`` alone and probe its features.

    python docs/tutorials/hf_probe.py runs/hf_docstrings/export runs/models/tiny-bert

For each model folder: ``AutoTokenizer`` + ``AutoModel`` (no sslkit), the mean state of every
labeled docstring, then a logistic-regression probe (scikit-learn) trained on 20 docstrings per class
and scored on a held-out quarter. sslkit is used only to list the docstrings and their labels.
With ``SSLKIT_SMOKE=1`` only 300 docstrings are embedded.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from transformers import AutoModel, AutoTokenizer

from sslkit.data.docstrings import FAMILIES, _docstrings

SMOKE = os.environ.get("SSLKIT_SMOKE") == "1"


def docstrings():
    texts, labels, seen = [], [], set()
    for label, modules in enumerate(FAMILIES.values()):
        for module in modules:
            docs = _docstrings(module, 40, seen)
            texts += docs
            labels += [label] * len(docs)
    return texts, np.array(labels)


@torch.no_grad()
def features(folder, texts):
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    out = []
    for i in range(0, len(texts), 64):
        batch = tok(texts[i:i + 64], padding=True, truncation=True, max_length=96, return_tensors="pt")
        h = model(**batch).last_hidden_state
        real = batch["attention_mask"].unsqueeze(-1).float()
        out.append((h * real).sum(1) / real.sum(1))  # mean over real tokens, as the recipe's pooling
    return torch.cat(out).numpy()


def probe(x, y, per_class=20, seed=0):
    train, test = train_test_split(np.arange(len(y)), test_size=0.25, stratify=y, random_state=seed)
    rng = np.random.RandomState(seed)
    few = np.concatenate([rng.choice(train[y[train] == c], per_class, replace=False) for c in np.unique(y)])
    clf = LogisticRegression(max_iter=2000).fit(x[few], y[few])
    return clf.score(x[test], y[test])


if __name__ == "__main__":
    folders = sys.argv[1:] or ["runs/hf_docstrings/export", "runs/models/tiny-bert"]
    texts, y = docstrings()
    if SMOKE:
        keep = np.random.RandomState(0).permutation(len(y))[:300]
        texts, y = [texts[i] for i in keep], y[keep]
    for folder in folders:
        print(f"{folder}: probe accuracy at 20 labels/class = {probe(features(folder, texts), y, 20 if not SMOKE else 5):.3f}")
