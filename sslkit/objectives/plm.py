"""Permuted language modelling with two-stream self-attention: XLNet (Yang et al., 2019) or, with
``style: mpnet``, MPNet's masked and permuted pre-training (Song et al., 2020).

XLNet targets (as Hugging Face's ``DataCollatorForPermutationLanguageModeling``): walk each row in
blocks of ``context = int(L / plm_probability)`` tokens, ``L ~ U{1..max_span_length}``, and mark
a span of ``L`` tokens at a random offset inside each block, so about ``plm_probability`` (1/6) of
the tokens are targets. Special tokens are never targets, and a row always keeps one visible token.

XLNet factorisation order: a random order ``z`` of the target tokens, all non-targets first. A
token's content stream ``h`` attends to the non-targets and to targets not after it in ``z``; its
query stream ``g`` (a learned vector + the position, never the token itself) attends to the content
streams of the non-targets and of targets strictly before it. The loss is the cross-entropy of the
tied head on the query streams of the targets:
    L = -(1/|M|) sum_{t in M} log p(x_{z_t} | x_{z_<t}).

MPNet (as microsoft/MPNet ``pretraining/fairseq/tasks/masked_permutation_lm.py`` and
``models/masked_permutation_net.py``): ``z`` is a random permutation of a row's real (non-special)
tokens and its last ``n = round(mpnet_pred_probability * n_real)`` entries are predicted. Position
compensation: the input is extended by ``n`` [MASK] slots carrying the positions of the predicted
tokens (80 % [MASK], 10 % a random token, 10 % the token itself while training; all [MASK] in
``evaluate``), and the query stream of the k-th predicted token starts from its slot. Every row of
both streams sees ``T`` positions, each once: the non-predicted tokens, the content of the predicted
tokens before a horizon ``h`` and the [MASK] slots from ``h`` on, where ``h = k`` for the query of
the k-th predicted token (``log p(x_{z_k} | x_{z<k}, M_{z>=k})``), ``h = k + 1`` for its content and
``h = 0`` for the non-predicted tokens and the slots themselves. The loss is the tied head's
cross-entropy on the query streams of the predicted tokens.

Both styles share every weight of the recipe's ``transformer`` encoder between the two streams.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..encoders.capabilities import TWO_STREAM
from ..distributed import on_global_rows
from ..registry import register
from ..schema import Count, OpenProbability
from ..text.lm_head import TiedLMHead, embedding_of
from ..text.masking import apply_replacement, special_mask
from .base import ObjectiveContext
from .token_prediction import TokenPrediction

EVAL_SEED = 9753


def plm_targets(ids: torch.Tensor, tokenizer, plm_probability: float = 1 / 6, max_span_length: int = 5,
                generator=None) -> torch.Tensor:
    """``[B, T]`` bool target mask built block by block as described in the module docstring."""
    B, T = ids.shape
    dev = ids.device
    K = T // max(int(1 / plm_probability), 1) + 1  # enough blocks to cover T (the shortest block is 1/p)
    span = torch.randint(1, max_span_length + 1, (B, K), device=dev, generator=generator)
    context = (span.float() / plm_probability).long().clamp_min(1)
    block_start = context.cumsum(1) - context
    offset = (torch.rand((B, K), device=dev, generator=generator) * (context - span + 1).clamp_min(1)).floor().long()
    start = block_start + offset
    col = torch.arange(T, device=dev).view(1, 1, T)
    hit = ((col >= start.unsqueeze(2)) & (col < (start + span).unsqueeze(2))).any(1)
    special = special_mask(ids, tokenizer)
    targets = hit & ~special
    # keep one visible real token per row, so every query has something to attend to
    full = targets.sum(1) >= (~special).sum(1)
    if full.any():
        first = (~special).long().argmax(1)
        targets[full, first[full]] = False
    return targets


def two_stream_masks(targets: torch.Tensor, pad: torch.Tensor, generator=None) -> tuple:
    """Boolean ``[B, 1, T, T]`` attention masks (True = may attend) of the content and query streams."""
    B, T = targets.shape
    u = torch.rand((B, T), device=targets.device, generator=generator)
    key = torch.where(targets, u, torch.full_like(u, -1.0))  # non-targets come first in the order
    before_or_self = key.unsqueeze(1) <= key.unsqueeze(2)  # [B, a, b]: z(b) <= z(a)
    strictly_before = key.unsqueeze(1) < key.unsqueeze(2)
    visible_keys = ~pad.unsqueeze(1)
    content = before_or_self & visible_keys
    query = torch.where(targets.unsqueeze(2), strictly_before | ~targets.unsqueeze(1), content) & visible_keys
    eye = torch.eye(T, dtype=torch.bool, device=targets.device).unsqueeze(0)
    content = content | (eye & pad.unsqueeze(2))  # a pad row attends to itself only (never empty)
    query = query | (eye & pad.unsqueeze(2))
    return content.unsqueeze(1), query.unsqueeze(1)


def mpnet_permutation(ids: torch.Tensor, tokenizer, pred_probability: float = 0.15, generator=None) -> tuple:
    """MPNet's permutation of each row's real tokens, of which the last ``n_b`` are predicted.

    Returns ``order`` ``[B, T]`` (the index of a predicted token among the predicted ones, negative for
    every other token), ``pred_cols`` ``[B, P]`` (the columns of the predicted tokens in permutation
    order, ``P = max_b n_b``) and ``slot_valid`` ``[B, P]`` (False for the slots past a row's ``n_b``).
    """
    B, T = ids.shape
    special = special_mask(ids, tokenizer)  # pads included: specials stay non-predicted context
    n_pred = (pred_probability * (~special).sum(1)).round().long()
    key = torch.rand((B, T), device=ids.device, generator=generator).masked_fill(special, -1.0)
    z = key.argsort(1)  # specials first, then a uniformly random order of the real tokens
    order = z.argsort(1) - (T - n_pred).unsqueeze(1)  # rank in z, counted from the first predicted one
    P = int(n_pred.max()) if B else 0
    slot = torch.arange(P, device=ids.device).unsqueeze(0)
    pred_cols = z.gather(1, (T - n_pred.unsqueeze(1) + slot).clamp_max(T - 1))
    return order, pred_cols, slot < n_pred.unsqueeze(1)


def mpnet_masks(order: torch.Tensor, slot_valid: torch.Tensor, pad: torch.Tensor) -> tuple:
    """Boolean masks (True = may attend) over the keys ``[T tokens | P slots]``: the content stream's
    ``[B, 1, T+P, T+P]`` and the query stream's ``[B, 1, P, T+P]``, as in the module docstring.

    A row with horizon ``h`` sees the non-predicted tokens, the predicted tokens with ``order < h`` and
    the valid slots ``>= h`` (MPNet's ``make_query_and_content_mask``), never a pad.
    """
    P = slot_valid.shape[1]
    slot = torch.arange(P, device=order.device).expand_as(slot_valid)
    content_h = torch.cat([(order + 1).clamp_min(0), torch.zeros_like(slot)], 1)  # non-predicted: order < 0

    def visible(h):
        tokens = (order.unsqueeze(1) < h.unsqueeze(2)) & ~pad.unsqueeze(1)
        slots = (slot.unsqueeze(1) >= h.unsqueeze(2)) & slot_valid.unsqueeze(1)
        v = torch.cat([tokens, slots], 2)
        return (v | ~v.any(2, keepdim=True)).unsqueeze(1)  # an all-pad row attends everywhere, not to nothing

    return visible(content_h), visible(slot)


@register("objectives", "plm")
class PermutedLM(TokenPrediction):
    """Permuted-LM loss with two-stream attention over the ``transformer`` encoder's weights.
    Reports ``test_plm_accuracy`` and ``test_plm_perplexity`` on the predicted tokens of the test split.

    style: ``xlnet`` (span targets in a random factorisation order, a learned query vector) or ``mpnet``
    (a random permutation of the real tokens, [MASK] slots carrying the predicted positions).
    plm_probability: XLNet's share of tokens that are targets (1/6). max_span_length: XLNet's longest
    target span (5). mpnet_pred_probability: MPNet's share of each row's real tokens predicted (0.15).
    """

    requires = (TWO_STREAM,)  # content stream sees the whole row; queries follow the permutation
    metric, eval_seed = "plm", EVAL_SEED

    def __init__(self, ctx: ObjectiveContext, *, style: Literal["xlnet", "mpnet"] = "xlnet",
                 plm_probability: OpenProbability = 1 / 6, max_span_length: Count = 5, mpnet_pred_probability: OpenProbability = 0.15):
        super().__init__()
        enc = ctx.encoder
        self.tokenizer = ctx.info.tokenizer
        self.style, self.mpnet_p = style, mpnet_pred_probability
        self.p, self.max_span = plm_probability, max_span_length
        if style == "xlnet":
            self.query = nn.Parameter(torch.randn(enc.out_dim) * 0.02)  # XLNet's trainable query vector w
        self.head = TiedLMHead(enc.out_dim, self.tokenizer.vocab_size)

    def predictions(self, x, encoder, g=None, train=False):
        """Logits and ids of the predicted tokens; ``train`` turns on MPNet's 80/10/10 slot inputs."""
        if self.style == "mpnet":
            return self._mpnet_logits(x, encoder, g, train)
        def order(ids):
            targets = plm_targets(ids, self.tokenizer, self.p, self.max_span, g)
            return (targets, *two_stream_masks(targets, ids == self.tokenizer.pad_id, g))

        # in training, drawn for the global batch's rows (the same at any number of processes)
        targets, content_mask, query_mask = on_global_rows(order, x) if train else order(x)
        positions = torch.arange(x.shape[1], device=x.device)
        h = encoder.embed(x, positions)
        q = encoder.embed(None, positions, start=self.query).expand_as(h)
        out = encoder.forward_two_stream(h, q, content_mask, query_mask)[targets]
        return self.head(out, embedding_of(encoder)), x[targets]

    def _mpnet_logits(self, x, encoder, g, noise):
        B, T = x.shape
        # MPNet's mask_perm: 80/10/10 while training; at test time only [MASK], so no slot shows its own token
        mask_ratio, random_ratio = (0.8, 0.1) if noise else (1.0, 0.0)

        def permute(ids):
            order, pred_cols, slot_valid = mpnet_permutation(ids, self.tokenizer, self.mpnet_p, g)
            target = ids.gather(1, pred_cols)
            slots = apply_replacement(target, slot_valid, self.tokenizer, mask_ratio, random_ratio, g)[0]
            return order, pred_cols, slot_valid, target, slots

        # in training, drawn for the global batch's rows (the same at any number of processes)
        order, pred_cols, slot_valid, target, slots = on_global_rows(permute, x) if noise else permute(x)
        content_mask, query_mask = mpnet_masks(order, slot_valid, x == self.tokenizer.pad_id)
        # the slots take the positions of the predicted tokens, so every position stays < T
        positions = torch.cat([torch.arange(T, device=x.device).expand(B, T), pred_cols], 1)
        h = encoder.embed(torch.cat([x, slots], 1), positions)
        out = encoder.forward_two_stream(h, h[:, T:], content_mask, query_mask)[slot_valid]
        return self.head(out, embedding_of(encoder)), target[slot_valid]
