"""Batched masking for masked-language-model objectives (no Python loop over rows or tokens).

* :func:`mlm_mask`: BERT/RoBERTa dynamic masking. Each non-special token (or each whole word) is
  selected with probability ``prob`` (0.15); of the selected tokens 80 % become ``<mask>``, 10 % a
  random token and 10 % stay unchanged; the labels hold the original id at selected positions and
  ``IGNORE`` (-100) elsewhere. Special tokens (``<pad>``, ``<cls>``, ``<sep>``, ...) are never selected.
* :func:`span_mask`: SpanBERT masking: span lengths (in words) from Geometric(p = 0.2) clipped at 10,
  spans placed at random word starts until about ``prob`` of the tokens are covered.

Words: :func:`token_kinds` classifies each vocabulary id as continuing the current word, starting
a new word, or being a boundary (whitespace/special, a unit of its own); :func:`word_starts` turns
that into a ``[B, T]`` mask of word-initial tokens for byte, char, word and BPE tokenizers alike.
"""
from __future__ import annotations

from typing import Optional

import torch

from .lm_head import IGNORE

CONTINUE, START, BOUNDARY = 0, 1, 2


def token_kinds(tokenizer) -> torch.Tensor:
    """``[V]`` kind of each id: ``BOUNDARY`` for specials and whitespace, ``START`` for tokens that always
    begin a word (word-level tokens, BPE tokens with a leading space), else ``CONTINUE``."""
    if hasattr(tokenizer, "token_kinds"):
        return tokenizer.token_kinds()
    kinds = torch.full((tokenizer.vocab_size,), CONTINUE, dtype=torch.long)
    kinds[list(tokenizer.special_ids)] = BOUNDARY
    for i in range(len(tokenizer.special_ids), tokenizer.vocab_size):
        s = tokenizer.decode([i])
        if s and s.isspace():
            kinds[i] = BOUNDARY
        elif s[:1].isspace():
            kinds[i] = START
    return kinds


def special_mask(ids: torch.Tensor, tokenizer) -> torch.Tensor:
    return torch.isin(ids, torch.tensor(tokenizer.special_ids, device=ids.device))


def word_starts(ids: torch.Tensor, kinds: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` True where a token begins a unit: a word, or a single boundary token."""
    k = kinds.to(ids.device)[ids]
    prev = torch.nn.functional.pad(k[:, :-1], (1, 0), value=BOUNDARY)
    return (k != CONTINUE) | (prev == BOUNDARY)


def word_start_index(starts: torch.Tensor) -> torch.Tensor:
    """For each token, the column of the start of its unit (``[B, T]``)."""
    col = torch.arange(starts.shape[1], device=starts.device).expand_as(starts)
    return torch.where(starts, col, torch.zeros_like(col)).cummax(1).values


def _rand(shape, device, generator):
    return torch.rand(shape, device=device, generator=generator)


def mlm_mask(ids: torch.Tensor, tokenizer, prob: float = 0.15, mask_ratio: float = 0.8, random_ratio: float = 0.1,
             whole_word: bool = False, kinds: Optional[torch.Tensor] = None,
             generator: Optional[torch.Generator] = None) -> tuple:
    """BERT masking of ``ids`` ``[B, T]``; returns ``(inputs, labels, selected)``.

    prob: selection probability per token (per word with ``whole_word``). mask_ratio / random_ratio:
    shares of the selected tokens replaced by ``<mask>`` / a random non-special token (the rest are kept).
    """
    special = special_mask(ids, tokenizer)
    u = _rand(ids.shape, ids.device, generator)
    if whole_word:
        if kinds is None:
            kinds = token_kinds(tokenizer)
        u = u.gather(1, word_start_index(word_starts(ids, kinds)))  # one draw per word, shared by its tokens
    selected = (u < prob) & ~special
    return apply_replacement(ids, selected, tokenizer, mask_ratio, random_ratio, generator)


def apply_replacement(ids, selected, tokenizer, mask_ratio=0.8, random_ratio=0.1, generator=None) -> tuple:
    """The 80/10/10 rule on the ``selected`` positions; returns ``(inputs, labels, selected)``."""
    labels = ids.masked_fill(~selected, IGNORE)
    r = _rand(ids.shape, ids.device, generator)
    to_mask = selected & (r < mask_ratio)
    to_random = selected & (r >= mask_ratio) & (r < mask_ratio + random_ratio)
    n_special = len(tokenizer.special_ids)
    random_ids = torch.randint(n_special, tokenizer.vocab_size, ids.shape, device=ids.device, generator=generator)
    inputs = torch.where(to_mask, torch.full_like(ids, tokenizer.mask_id), ids)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels, selected


def span_mask(ids: torch.Tensor, tokenizer, prob: float = 0.15, p: float = 0.2, max_span: int = 10,
              kinds: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """SpanBERT span selection: ``[B, T]`` bool of masked tokens.

    Span lengths in words ``l ~ Geometric(p)`` clipped at ``max_span`` (mean 3.8 words for p = 0.2);
    each span starts at a random word and covers ``l`` whole words with the whitespace after each.
    The number of spans per row is ``ceil(prob * n_tokens / mean token length of a span)``, so about
    ``prob`` of the tokens are masked (overlapping spans make it a little less). Specials are never
    masked, and a row is never masked entirely (its last token stays visible).
    """
    B, T = ids.shape
    dev = ids.device
    if kinds is None:
        kinds = token_kinds(tokenizer)
    special = special_mask(ids, tokenizer)
    # a span unit is a word together with the whitespace that follows it
    starts = word_starts(ids, kinds) & (kinds.to(dev)[ids] != BOUNDARY)
    word_id = starts.long().cumsum(1) - 1  # index of each token's word within its row (-1 before the first)
    n_words = starts.sum(1)  # [B]
    n_tok = (~special).sum(1)
    # expected tokens per word in this row, to convert the token budget into a number of spans
    tok_per_word = n_tok.float() / n_words.clamp_min(1).float()
    q = torch.arange(1, max_span + 1, device=dev, dtype=torch.float)
    pmf = p * (1 - p) ** (q - 1)
    pmf = pmf / pmf.sum()  # clipping = renormalised truncated geometric
    mean_words = float((pmf * q).sum())
    n_spans = torch.ceil(prob * n_tok.float() / (mean_words * tok_per_word)).long()
    n_spans = torch.where(n_words > 0, n_spans.clamp_min(1), torch.zeros_like(n_spans))
    S = int(n_spans.max()) if B else 0
    if S == 0:
        return torch.zeros_like(ids, dtype=torch.bool)
    lengths = torch.multinomial(pmf.expand(B * S, -1), 1, replacement=True, generator=generator).view(B, S) + 1
    first = (_rand((B, S), dev, generator) * n_words.unsqueeze(1).float()).floor().long()
    active = torch.arange(S, device=dev).unsqueeze(0) < n_spans.unsqueeze(1)  # [B, S]
    # token t is masked if first_s <= word_id_t < first_s + len_s for some active span s
    w = word_id.unsqueeze(1)  # [B, 1, T]
    hit = (w >= first.unsqueeze(2)) & (w < (first + lengths).unsqueeze(2)) & active.unsqueeze(2)
    masked = hit.any(1) & ~special & (word_id >= 0)
    # never mask a whole row: keep at least one visible non-special token when the row has two or more
    full = (masked.sum(1) >= n_tok) & (n_tok > 1)
    if full.any():
        last = T - 1 - (~special).flip(1).long().argmax(1)  # the row's last non-special token stays visible
        masked[full, last[full]] = False
    return masked
