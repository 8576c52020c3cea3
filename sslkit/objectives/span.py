"""SpanBERT (Joshi et al., 2020): contiguous spans of whole words are masked (lengths ~ Geometric(0.2)
clipped at 10 words, ~15 % of the tokens), the 80/10/10 rule applied per span, and two losses are
summed for every masked token x_i of a span (s..e):

    L = -log p_MLM(x_i | h_i) - log p_SBO(x_i | h_{s-1}, h_{e+1}, P_{i-s+1}),

where the Span Boundary Objective predicts the token from the encoder states just outside the span
and a learned embedding of its position inside the span: y_i = LN(GeLU(W2 LN(GeLU(W1 [h_{s-1}; h_{e+1}; P]))))
(the 2-layer GeLU/LayerNorm network of the paper), decoded by the tied output embedding.
"""
from __future__ import annotations

import torch
from torch import nn

from ..distributed import on_global_rows
from ..registry import register
from ..schema import Count, NonNegative, OpenProbability, PositiveProbability
from ..text.lm_head import IGNORE, embedding_of, token_accuracy, token_loss
from ..text.masking import span_mask
from .base import ObjectiveContext, Output
from .mlm import MaskedObjective


def span_bounds(masked: torch.Tensor) -> tuple:
    """For each token, the first (``s``) and last (``e``) column of the run of masked tokens it is in."""
    B, T = masked.shape
    col = torch.arange(T, device=masked.device).expand(B, T)
    prev = nn.functional.pad(masked[:, :-1], (1, 0), value=False)
    nxt = nn.functional.pad(masked[:, 1:], (0, 1), value=False)
    starts, ends = masked & ~prev, masked & ~nxt
    s = torch.where(starts, col, torch.zeros_like(col)).cummax(1).values
    e = torch.where(ends, col, torch.full_like(col, T - 1)).flip(1).cummin(1).values.flip(1)
    return s, e


def span_replacement(ids, masked, tokenizer, mask_ratio=0.8, random_ratio=0.1, generator=None) -> tuple:
    """80/10/10 decided once per span (every token of a span gets the same treatment)."""
    s, _ = span_bounds(masked)
    u = torch.rand(ids.shape, device=ids.device, generator=generator).gather(1, s)
    labels = ids.masked_fill(~masked, IGNORE)
    to_mask = masked & (u < mask_ratio)
    to_random = masked & (u >= mask_ratio) & (u < mask_ratio + random_ratio)
    random_ids = torch.randint(len(tokenizer.special_ids), tokenizer.vocab_size, ids.shape, device=ids.device,
                               generator=generator)
    inputs = torch.where(to_mask, torch.full_like(ids, tokenizer.mask_id), ids)
    return torch.where(to_random, random_ids, inputs), labels, masked


class BoundaryHead(nn.Module):
    """SBO representation ``f([h_{s-1}; h_{e+1}; P_{i-s+1}])``: two GeLU + LayerNorm layers.

    dim: encoder width. max_positions: number of in-span position embeddings.
    """

    def __init__(self, dim: int, max_positions: int):
        super().__init__()
        self.pos = nn.Embedding(max_positions, dim)
        self.net = nn.Sequential(nn.Linear(3 * dim, dim), nn.GELU(), nn.LayerNorm(dim),
                                 nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim))

    def forward(self, left, right, offset):
        return self.net(torch.cat([left, right, self.pos(offset)], -1))


@register("objectives", "span")
class SpanBERT(MaskedObjective):
    """SpanBERT: masked-LM loss plus ``sbo_weight`` x the span-boundary loss on geometric whole-word spans.
    Reports ``masked_accuracy``, ``sbo_accuracy`` and ``test_masked_accuracy``/``test_masked_perplexity``.

    prob: share of tokens masked (0.15). geometric_p: p of the span-length distribution (0.2).
    max_span: longest span in words (10). sbo_weight: weight of the boundary loss (1).
    """

    def __init__(self, ctx: ObjectiveContext, *, prob: OpenProbability = 0.15, geometric_p: PositiveProbability = 0.2, max_span: Count = 10,
                 sbo_weight: NonNegative = 1.0):
        super().__init__(ctx, "span")
        self.prob, self.p, self.max_span, self.sbo_weight = prob, geometric_p, max_span, sbo_weight
        self.T = ctx.info.input_shape[0]
        self.sbo = BoundaryHead(ctx.encoder.out_dim, self.T)

    def corrupt(self, x, generator=None):
        masked = span_mask(x, self.tokenizer, self.prob, self.p, self.max_span, self.kinds, generator)
        return span_replacement(x, masked, self.tokenizer, generator=generator)

    def forward(self, batch, encoder, player="model"):
        x = batch["all"]["x"]
        inputs, labels, masked = on_global_rows(self.corrupt, x)  # the same spans at any number of processes
        h = encoder.forward_tokens(inputs)
        emb = embedding_of(encoder)
        target = labels[masked]
        mlm_logits = self.head(h[masked], emb)
        s, e = span_bounds(masked)
        T = x.shape[1]
        rows = torch.arange(len(x), device=x.device).unsqueeze(1).expand_as(x)[masked]
        left, right = (s[masked] - 1).clamp(min=0), (e[masked] + 1).clamp(max=T - 1)
        offset = (torch.arange(T, device=x.device).expand_as(x)[masked] - s[masked]).clamp(max=self.T - 1)
        sbo_logits = self.head(self.sbo(h[rows, left], h[rows, right], offset), emb)
        mlm_loss, _ = token_loss(mlm_logits, target)
        sbo_loss, _ = token_loss(sbo_logits, target)
        return Output(mlm_loss + self.sbo_weight * sbo_loss,
                      {"mlm_loss": mlm_loss.detach(), "sbo_loss": sbo_loss.detach(),
                       "masked_accuracy": token_accuracy(mlm_logits, target),
                       "sbo_accuracy": token_accuracy(sbo_logits, target)})
