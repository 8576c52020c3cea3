"""Permuted language modelling, XLNet (Yang et al., 2019), with two-stream self-attention.

Targets (as Hugging Face's ``DataCollatorForPermutationLanguageModeling``): walk each row in
blocks of ``context = int(L / plm_probability)`` tokens, ``L ~ U{1..max_span_length}``, and mark
a span of ``L`` tokens at a random offset inside each block, so about ``plm_probability`` (1/6) of
the tokens are targets. Special tokens are never targets, and a row always keeps one visible token.

Factorisation order: a random order ``z`` of the target tokens, all non-targets first. A token's
content stream ``h`` attends to the non-targets and to targets not after it in ``z``; its query
stream ``g`` (a learned vector + the position, never the token itself) attends to the content
streams of the non-targets and of targets strictly before it. The loss is the cross-entropy of the
tied head on the query streams of the targets:
    L = -(1/|M|) sum_{t in M} log p(x_{z_t} | x_{z_<t}).
The two streams share every weight of the recipe's ``transformer`` encoder.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..data.stream import StreamSpec
from ..encoders.transformer import Block
from ..errors import ConfigError
from ..registry import register
from ..text.lm_head import TiedLMHead, token_accuracy, token_loss
from ..text.masking import special_mask
from .base import ObjectiveContext, Objective, Output, batched

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


def _attend(attn, xq, xkv, mask):
    """``SelfAttention`` weights with queries from ``xq`` and keys/values from ``xkv``."""
    B, T, C = xq.shape
    H = attn.heads
    w_q = attn.qkv.weight.split([C, 2 * C])
    b_q, b_kv = attn.qkv.bias.split([C, 2 * C])
    q = F.linear(xq, w_q[0], b_q).view(B, T, H, C // H).transpose(1, 2)
    k, v = F.linear(xkv, w_q[1], b_kv).view(B, T, 2, H, C // H).permute(2, 0, 3, 1, 4)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=attn.dropout if attn.training else 0.0)
    return attn.proj(y.transpose(1, 2).reshape(B, T, C))


@register("objectives", "plm")
class PermutedLM(Objective):
    """XLNet permuted-LM loss with two-stream attention over the ``transformer`` encoder's weights.
    Reports ``test_plm_accuracy`` and ``test_plm_perplexity`` on the target tokens of the test split.

    plm_probability: share of tokens that are targets (1/6). max_span_length: longest target span (5).
    """

    def __init__(self, ctx: ObjectiveContext, *, plm_probability: float = 1 / 6, max_span_length: int = 5):
        super().__init__()
        enc = ctx.encoder
        if not all(hasattr(enc, k) for k in ("blocks", "tok", "pos", "ln")) or getattr(enc, "causal", False) \
                or not all(isinstance(b, Block) for b in enc.blocks):
            raise ConfigError(f"{ctx.path}.name", f"'plm' runs two attention streams through the blocks of the "
                                                  f"'transformer' encoder, not {type(enc).__name__}")
        if not 0 < plm_probability < 1:
            raise ConfigError(f"{ctx.path}.plm_probability", f"must be in (0, 1), got {plm_probability}")
        if max_span_length < 1:
            raise ConfigError(f"{ctx.path}.max_span_length", f"must be at least 1, got {max_span_length}")
        self.tokenizer = ctx.info.tokenizer
        self.p, self.max_span = plm_probability, max_span_length
        self.query = nn.Parameter(torch.randn(enc.out_dim) * 0.02)  # XLNet's trainable query vector w
        self.head = TiedLMHead(enc.out_dim, self.tokenizer.vocab_size)

    def streams(self):
        return {"all": StreamSpec("all")}

    def _logits(self, x, encoder, g=None):
        targets = plm_targets(x, self.tokenizer, self.p, self.max_span, g)
        content_mask, query_mask = two_stream_masks(targets, x == self.tokenizer.pad_id, g)
        pos = encoder.pos(torch.arange(x.shape[1], device=x.device))
        h = encoder.drop(encoder.tok(x) + pos)
        q = encoder.drop(self.query + pos).expand_as(h)
        for block in encoder.blocks:
            hn = block.ln1(h)
            q = q + _attend(block.attn, block.ln1(q), hn, query_mask)
            q = q + block.mlp(block.ln2(q))
            h = h + _attend(block.attn, hn, hn, content_mask)
            h = h + block.mlp(block.ln2(h))
        out = encoder.ln(q)[targets]
        return self.head(out, encoder.tok.weight), x[targets]

    def forward(self, batch, encoder, player="model"):
        logits, target = self._logits(batch["all"]["x"], encoder)
        loss, _ = token_loss(logits, target)
        return Output(loss, {"plm_accuracy": token_accuracy(logits, target)})

    @torch.no_grad()
    def evaluate(self, test, encoder, batch_size, device):
        g = torch.Generator(device=device).manual_seed(EVAL_SEED)
        nll, correct, n = 0.0, 0, 0
        for b in batched(test, batch_size, device, columns=("x",)):
            logits, target = self._logits(b["x"], encoder, g)
            nll += F.cross_entropy(logits.float(), target, reduction="sum").item()
            correct += int((logits.argmax(-1) == target).sum())
            n += len(target)
        if not n:
            return {}
        return {"test_plm_accuracy": correct / n, "test_plm_perplexity": math.exp(nll / n)}
