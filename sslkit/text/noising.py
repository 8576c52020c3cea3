"""BART's noising functions (Lewis et al., 2020) on right-padded id batches ``[B, T]``, vectorised
over rows and tokens. Special tokens are never masked, deleted or moved inside a row.

* :func:`permute_sentences`: shuffle the sentences of a row (a sentence ends after a token whose
  text ends in ``.``, ``!`` or ``?``).
* :func:`mask_tokens`: each token becomes ``<mask>`` with probability ``p``.
* :func:`delete_tokens`: each token is removed with probability ``p``.
* :func:`infill`: text infilling; span lengths ~ Poisson(lambda = 3), spans start at random tokens
  until about ``p`` of the tokens are covered; each span becomes ONE ``<mask>`` (a 0-length span
  inserts a ``<mask>``), so the model must also predict how many tokens are missing.
* :func:`rotate`: rotate a row to start at a random token (document rotation).

Rows keep their length ``T`` (insertions beyond it are cut); a row left without any token gets a
single ``<mask>`` so attention never sees an empty sequence.
"""
from __future__ import annotations

import torch

from ..data.views_text import compact


def _rand(shape, ref, g):
    return torch.rand(shape, device=ref.device, generator=g)


def _special(ids, tok):
    return torch.isin(ids, torch.tensor(tok.special_ids, device=ids.device))


def _not_empty(ids, tok):
    empty = (ids == tok.pad_id).all(1)
    if empty.any():
        ids = ids.clone()
        ids[empty, 0] = tok.mask_id
    return ids


def sentence_end_ids(tok) -> torch.Tensor:
    """Ids whose text ends a sentence."""
    ends = [i for i in range(len(tok.special_ids), tok.vocab_size) if tok.decode([i]).rstrip().endswith((".", "!", "?"))]
    return torch.tensor(ends, dtype=torch.long)


def permute_sentences(ids, tok, prob: float, end_ids: torch.Tensor, g=None):
    """With probability ``prob`` per row, reorder its sentences at random (tokens keep their order inside
    a sentence; padding stays at the end)."""
    B, T = ids.shape
    if prob <= 0:
        return ids
    is_end = torch.isin(ids, end_ids.to(ids.device))
    sid = torch.nn.functional.pad(is_end[:, :-1].long(), (1, 0)).cumsum(1)  # sentence index of each token
    order = _rand((B, T), ids, g).argsort(1)  # a random rank for each possible sentence index
    rank = order.gather(1, sid)
    col = torch.arange(T, device=ids.device).expand(B, T)
    chosen = (_rand((B, 1), ids, g) < prob).expand(B, T)
    key = torch.where(chosen, rank * T + col, col)
    key = torch.where(ids == tok.pad_id, T * T + col, key)
    return ids.gather(1, key.argsort(1))


def mask_tokens(ids, tok, p: float, g=None):
    if p <= 0:
        return ids
    hit = (_rand(ids.shape, ids, g) < p) & ~_special(ids, tok)
    return ids.masked_fill(hit, tok.mask_id)


def delete_tokens(ids, tok, p: float, g=None):
    if p <= 0:
        return ids
    keep = (_rand(ids.shape, ids, g) >= p) | _special(ids, tok)
    return _not_empty(compact(ids, keep, tok.pad_id), tok)


def infill(ids, tok, p: float, lam: float = 3.0, g=None):
    """Text infilling: Poisson(``lam``) spans covering about ``p`` of the tokens, one ``<mask>`` each."""
    if p <= 0:
        return ids
    B, T = ids.shape
    special = _special(ids, tok)
    n = (~special).sum(1)  # maskable tokens per row
    rank = (~special).long().cumsum(1) - 1  # index of each token among the maskable ones
    n_spans = torch.ceil(p * n.float() / max(lam, 1e-6)).long()
    S = max(int(n_spans.max()), 1)
    lengths = torch.poisson(torch.full((B, S), float(lam), device=ids.device), generator=g).long()
    start = (_rand((B, S), ids, g) * n.unsqueeze(1).float()).floor().long()
    active = torch.arange(S, device=ids.device).unsqueeze(0) < n_spans.unsqueeze(1)
    r = rank.unsqueeze(1)  # [B, 1, T]
    inside = ((r >= start.unsqueeze(2)) & (r < (start + lengths).unsqueeze(2)) & active.unsqueeze(2)).any(1) & ~special
    # a zero-length span inserts a <mask> before its start token
    insert = ((r == start.unsqueeze(2)) & (lengths == 0).unsqueeze(2) & active.unsqueeze(2)).any(1) & ~special
    prev_inside = torch.nn.functional.pad(inside[:, :-1], (1, 0), value=False)
    first = inside & ~prev_inside  # the first token of each (merged) span becomes the span's <mask>
    insert = insert & ~inside
    emit = (~inside | first) & (ids != tok.pad_id)
    value = torch.where(first, torch.full_like(ids, tok.mask_id), ids)
    # destinations: each position writes its inserted <mask> (if any) and then its token (if emitted)
    width = insert.long() + emit.long()
    end = width.cumsum(1)
    out = torch.full((B, 2 * T), tok.pad_id, dtype=ids.dtype, device=ids.device)
    rows = torch.arange(B, device=ids.device).unsqueeze(1).expand(B, T)
    out[rows[insert], (end - width)[insert]] = tok.mask_id
    out[rows[emit], (end - 1)[emit]] = value[emit]
    return _not_empty(out[:, :T], tok)


def rotate(ids, tok, prob: float, g=None):
    """With probability ``prob`` per row, rotate its non-pad tokens to start at a random one."""
    if prob <= 0:
        return ids
    B, T = ids.shape
    n = (ids != tok.pad_id).sum(1, keepdim=True).clamp_min(1)
    shift = (_rand((B, 1), ids, g) * n.float()).floor().long()
    shift = torch.where(_rand((B, 1), ids, g) < prob, shift, torch.zeros_like(shift))
    col = torch.arange(T, device=ids.device).expand(B, T)
    src = torch.where(col < n, (col + shift) % n, col)
    return ids.gather(1, src)


def bart_noise(ids, tok, end_ids, *, permute: float = 0.0, mask: float = 0.0, delete: float = 0.0,
               infill_p: float = 0.0, lam: float = 3.0, rotate_p: float = 0.0, g=None):
    """Compose the noising functions in fairseq's order: sentence permutation, token masking, token
    deletion, text infilling, document rotation. Each is skipped when its probability is 0."""
    x = permute_sentences(ids, tok, permute, end_ids, g)
    x = mask_tokens(x, tok, mask, g)
    x = delete_tokens(x, tok, delete, g)
    x = infill(x, tok, infill_p, lam, g)
    return rotate(x, tok, rotate_p, g)
