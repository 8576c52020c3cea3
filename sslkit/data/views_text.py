"""Views of token-id batches for contrastive learning on text, batched (no loop over rows or
tokens): token dropout and span deletion remove tokens and close the gap, masking replaces them
with ``<mask>``, and ``simcse`` leaves the ids alone so that two passes through an encoder with
dropout are the two views (Gao et al., SimCSE 2021).

Special tokens (``<pad>``, ``<cls>``, ``<sep>``, ...) are never removed or masked.
"""
from __future__ import annotations

import torch

from ..registry import register
from ..schema import Probability, Rate
from .base import DataInfo
from .views import mask_tokens


def _special(ids: torch.Tensor, tokenizer) -> torch.Tensor:
    return torch.isin(ids, torch.tensor(tokenizer.special_ids, device=ids.device))


def compact(ids: torch.Tensor, keep: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Keep the ``keep`` tokens of each row in order, shifted left, and pad the tail."""
    keep = keep & (ids != pad_id)
    pos = keep.cumsum(1) - 1  # destination column of each kept token
    out = torch.full_like(ids, pad_id)
    rows = torch.arange(ids.shape[0], device=ids.device).unsqueeze(1).expand_as(ids)
    out[rows[keep], pos[keep]] = ids[keep]
    return out


def drop_tokens(ids: torch.Tensor, prob: float, tokenizer) -> torch.Tensor:
    """Delete each non-special token with probability ``prob``."""
    if prob <= 0:
        return ids
    keep = (torch.rand(ids.shape, device=ids.device) >= prob) | _special(ids, tokenizer)
    return compact(ids, keep, tokenizer.pad_id)


def delete_span(ids: torch.Tensor, fraction: float, tokenizer) -> torch.Tensor:
    """Delete one contiguous span per row of up to ``fraction`` of its non-special tokens (length
    uniform in [0, fraction * n], start uniform among the non-special tokens)."""
    if fraction <= 0:
        return ids
    special = _special(ids, tokenizer)
    n = (~special).sum(1, keepdim=True)  # non-special tokens per row
    length = (torch.rand(n.shape, device=ids.device) * (fraction * n + 1)).floor().long().clamp(max=n)
    start = (torch.rand(n.shape, device=ids.device) * (n - length + 1)).floor().long()
    rank = (~special).cumsum(1) - 1  # index of each token among the row's non-special tokens
    inside = ~special & (rank >= start) & (rank < start + length)
    return compact(ids, ~inside, tokenizer.pad_id)


class _TextView:
    def __init__(self, info: DataInfo):
        if info.modality != "text" or info.tokenizer is None:
            from ..errors import ConfigError

            raise ConfigError("objectives", f"view '{type(self).__name__.lower()}' takes text data, "
                                            f"not {info.modality}")
        self.tokenizer = info.tokenizer


@register("views", "token_dropout")
class TokenDropout(_TextView):
    """Delete each non-special token with probability ``prob`` (the rest close ranks).

    prob: deletion rate.
    """

    def __init__(self, info: DataInfo, *, prob: Probability = 0.1):
        super().__init__(info)
        self.prob = prob

    def __call__(self, x):
        return drop_tokens(x, self.prob, self.tokenizer)


@register("views", "span_deletion")
class SpanDeletion(_TextView):
    """Delete one random contiguous span of up to ``fraction`` of each row's tokens.

    fraction: maximal span length as a fraction of the row's non-special tokens.
    """

    def __init__(self, info: DataInfo, *, fraction: Rate = 0.2):
        super().__init__(info)
        self.fraction = fraction

    def __call__(self, x):
        return delete_span(x, self.fraction, self.tokenizer)


@register("views", "token_mask")
class TokenMask(_TextView):
    """Replace each non-special token with ``<mask>`` with probability ``prob``.

    prob: masking rate.
    """

    def __init__(self, info: DataInfo, *, prob: Probability = 0.15):
        super().__init__(info)
        self.prob = prob

    def __call__(self, x):
        return mask_tokens(x, self.prob, self.tokenizer)


@register("views", "simcse")
class SimCSE(_TextView):
    """The ids unchanged: the encoder's dropout (active in training) makes the two views differ, as in
    unsupervised SimCSE. Needs an encoder with ``dropout > 0``."""

    def __call__(self, x):
        return x
