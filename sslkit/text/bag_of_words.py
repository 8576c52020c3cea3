"""Bag-of-words views of token-id rows: word counts and TF-IDF (scikit-learn's), for graphs over texts and
classical baselines."""
from __future__ import annotations

import numpy as np
import torch


def word_counts(ids: torch.Tensor, vocab_size: int, special_ids) -> "scipy.sparse.csr_matrix":  # noqa: F821
    """How often each word id occurs in each row of token ids (``[N, T]`` -> sparse ``[N, vocab_size]``),
    without the tokenizer's special ids (padding, masks, boundaries)."""
    from scipy.sparse import csr_matrix

    ids = ids.long()
    keep = ~torch.isin(ids, torch.as_tensor(list(special_ids), dtype=torch.long))
    rows = torch.arange(len(ids)).repeat_interleave(ids.shape[1]).view_as(ids)
    return csr_matrix((np.ones(int(keep.sum())), (rows[keep].numpy(), ids[keep].numpy())), shape=(len(ids), vocab_size))


def bag_of_words(ids: torch.Tensor, vocab_size: int, special_ids) -> "scipy.sparse.csr_matrix":  # noqa: F821
    """TF-IDF of token-id rows: :func:`word_counts` with sublinear tf and smoothed idf over the rows,
    each row L2-normalised (scikit-learn's ``TfidfTransformer(sublinear_tf=True)``). The order of the
    words is dropped: the view of a text that a transformer's features do not give."""
    from sklearn.feature_extraction.text import TfidfTransformer

    return TfidfTransformer(sublinear_tf=True).fit_transform(word_counts(ids, vocab_size, special_ids))
