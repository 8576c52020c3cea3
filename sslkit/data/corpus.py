"""A language-modelling corpus: the help topics of ``pydoc_data.topics`` (ships with CPython),
one document per topic, with the test split held out *by document*.

Two layouts of the same token stream:

* ``lm``: the documents of a split, each followed by ``<sep>`` (the end-of-document token), are
  concatenated and cut into contiguous blocks of ``max_length`` ids (GPT/RoBERTa "full
  sentences" packing). The tail shorter than a block is dropped.
* ``pairs``: consecutive segments ``A``, ``B`` of one document (``S = (max_length - 3) // 2`` ids
  each), laid out as ``<cls> A <sep> B <sep>`` in ``x`` and kept apart in the columns ``a`` and
  ``b`` (right-padded) for next-sentence / sentence-order prediction; ``doc`` is the document
  index. Fall-back: a document tail (or a whole document) shorter than ``2 S`` ids is split into
  two halves; a document with fewer than 2 ids gives no pair.

Empty documents are skipped. A corpus whose split holds fewer ids than one block raises a clear
error rather than producing an empty (NaN-loss) dataset.
"""
from __future__ import annotations

from typing import Literal, Optional

import numpy as np
import torch

from ..errors import ConfigError
from ..registry import register
from ..schema import AtLeastTwo, OpenProbability, build
from .base import DataInfo, Examples
from .text import TokenizerSpec


def pydoc_documents() -> list:
    """The text of every ``pydoc_data.topics`` topic, in key order."""
    from pydoc_data.topics import topics

    return [topics[k].strip() for k in sorted(topics)]


def split_documents(docs: list, test_fraction: float, seed: int) -> tuple:
    """Shuffle documents with ``seed`` and move whole documents to the test split until it holds at
    least ``test_fraction`` of the characters (at least one document on each side)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    docs = [d for d in docs if d.strip()]
    if len(docs) < 2:
        raise ValueError(f"need at least 2 non-empty documents to hold one out, got {len(docs)}")
    order = np.random.RandomState(seed).permutation(len(docs))
    sizes = np.array([len(docs[i]) for i in order])
    n_test = int(np.searchsorted(np.cumsum(sizes), test_fraction * sizes.sum()) + 1)
    n_test = min(max(n_test, 1), len(docs) - 1)
    test = [docs[i] for i in sorted(order[:n_test])]
    train = [docs[i] for i in sorted(order[n_test:])]
    return train, test


def lm_blocks(token_lists: list, block: int, sep_id: int, split: str) -> torch.Tensor:
    """Concatenate documents (each followed by ``sep_id``) and cut ``[N, block]`` contiguous blocks."""
    stream = [t for ids in token_lists if ids for t in (*ids, sep_id)]
    n = len(stream) // block
    if n == 0:
        raise ValueError(f"the {split} split has {len(stream)} tokens, fewer than one block of max_length={block}; "
                         f"lower max_length or use a larger corpus")
    return torch.tensor(stream[: n * block], dtype=torch.long).view(n, block)


def segment_pairs(token_lists: list, max_length: int, tok, split: str) -> dict:
    """Consecutive segment pairs (see the module docstring) as columns ``x``, ``a``, ``b``, ``doc``."""
    S = (max_length - 3) // 2
    if S < 1:
        raise ValueError(f"max_length={max_length} leaves no room for two segments (need at least 5)")
    a_rows, b_rows, docs = [], [], []
    for d, ids in enumerate(token_lists):
        for i in range(0, len(ids), 2 * S):
            chunk = ids[i:i + 2 * S]
            if len(chunk) < 2:
                continue
            half = S if len(chunk) == 2 * S else (len(chunk) + 1) // 2  # documented fall-back: halves
            a_rows.append(chunk[:half])
            b_rows.append(chunk[half:])
            docs.append(d)
    if not a_rows:
        raise ValueError(f"the {split} split has no document with 2 or more tokens to make a segment pair")
    N = len(a_rows)
    a = torch.full((N, S), tok.pad_id, dtype=torch.long)
    b = torch.full((N, S), tok.pad_id, dtype=torch.long)
    for i, (ra, rb) in enumerate(zip(a_rows, b_rows)):
        a[i, :len(ra)] = torch.tensor(ra)
        b[i, :len(rb)] = torch.tensor(rb)
    return {"x": join_pair(a, b, tok, max_length), "a": a, "b": b, "doc": torch.tensor(docs)}


def join_pair(a: torch.Tensor, b: torch.Tensor, tok, max_length: int) -> torch.Tensor:
    """``<cls> A <sep> B <sep>`` then padding, for right-padded segment batches ``a``, ``b`` (vectorised)."""
    B, S = a.shape
    pad, dev = tok.pad_id, a.device
    cls = torch.full((B, 1), tok.cls_id, dtype=a.dtype, device=dev)
    sep = torch.full((B, 1), tok.sep_id, dtype=a.dtype, device=dev)
    raw = torch.cat([cls, a, sep, b, sep], 1)
    keep = raw != pad
    pos = keep.long().cumsum(1) - 1  # close the gaps left by the segments' padding
    out = torch.full((B, max_length), pad, dtype=a.dtype, device=dev)
    rows = torch.arange(B, device=dev).unsqueeze(1).expand_as(raw)
    out[rows[keep], pos[keep]] = raw[keep]
    return out


def segment_ids(x: torch.Tensor, sep_id: int, pad_id: int) -> torch.Tensor:
    """0 for ``<cls> A <sep>``, 1 for ``B <sep>``, per token of a joined pair (padding gets 1)."""
    after_first_sep = (x == sep_id).long().cumsum(1) - (x == sep_id).long()
    return (after_first_sep > 0).long() | (x == pad_id).long()


def corpus_examples(docs: list, seed: int, tokenizer: dict, max_length: int, test_fraction: float,
                    layout: str, name: str) -> Examples:
    """Tokenise documents (the tokenizer is fitted on the training documents only) into ``layout``."""
    if max_length < 2:
        raise ConfigError("data.max_length", f"must be at least 2, got {max_length}")
    train_docs, test_docs = split_documents(docs, test_fraction, seed)
    tok = build("tokenizers", tokenizer, list(train_docs), path="data.tokenizer")
    train_ids = [tok.encode(d, add_special=False) for d in train_docs]
    test_ids = [tok.encode(d, add_special=False) for d in test_docs]
    if layout == "lm":
        train = {"x": lm_blocks(train_ids, max_length, tok.sep_id, "train")}
        test = {"x": lm_blocks(test_ids, max_length, tok.sep_id, "test")}
    else:
        train = segment_pairs(train_ids, max_length, tok, "train")
        test = segment_pairs(test_ids, max_length, tok, "test")
    info = DataInfo("text", (max_length,), 0, [], tokenizer=tok, name=name)
    return Examples(train, info, test_columns=test)


@register("datasets", "pydoc_blocks")
def pydoc_blocks(seed: int, *, tokenizer: TokenizerSpec = "byte", max_length: AtLeastTwo = 64,
                 layout: Literal["lm", "pairs"] = "lm", test_fraction: OpenProbability = 0.1,
                 max_documents: Optional[AtLeastTwo] = None):
    """Python's help topics as a language-modelling corpus, test documents held out.

    tokenizer: a registered tokenizer (fitted on the training documents). max_length: ids per row.
    layout: ``lm`` contiguous blocks, or ``pairs`` of consecutive segments (NSP/SOP).
    test_fraction: share of the characters, in whole documents, held out for evaluation.
    max_documents: use only the first N topics (quick experiments and tests).
    """
    docs = pydoc_documents()
    if max_documents is not None:
        if max_documents < 2:
            raise ValueError(f"max_documents must be at least 2 (one to train on, one to test), got {max_documents}")
        docs = docs[:max_documents]
    return corpus_examples(docs, seed, tokenizer, max_length, test_fraction, layout, "pydoc_blocks")
