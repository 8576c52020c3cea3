"""A GPT-style causal decoder (nanoGPT-sized): token + learned position embeddings, pre-norm
causal ``Block``s from :mod:`sslkit.encoders.transformer`, a final LayerNorm.

The language-model head is not part of the encoder: objectives tie it to ``encoder.tok.weight``
(GPT-2's weight tying), so a fine-tuning recipe can load these encoder weights unchanged.
"""
from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import nn

from ..data import DataInfo
from ..registry import register
from ..schema import Count, Rate
from .transformer import TransformerEncoder


@register("encoders", "gpt")
class GPTEncoder(TransformerEncoder):
    """Causal Transformer decoder: position ``t`` attends to positions ``<= t`` only.

    dim: width. depth: number of blocks. heads: attention heads. dropout: attention/MLP dropout.
    max_length: number of learned positions (default: the data's sequence length).
    pooling: features for ``forward``: ``last`` real token (it has seen the whole sequence)
    or ``mean`` over real tokens.
    """

    causal = True

    def __init__(self, info: DataInfo, *, dim: Count = 128, depth: Count = 4, heads: Count = 4, dropout: Rate = 0.0,
                 max_length: Optional[Count] = None, pooling: Literal["last", "mean"] = "last"):
        nn.Module.__init__(self)
        self._build(info, dim, depth, heads, dropout, max_length, pooling)

    def forward_tokens_cached(self, ids: torch.Tensor, cache: Optional[list] = None) -> tuple:
        """States of ``ids`` following the positions held in ``cache`` (one ``[keys, values]`` per block;
        None to start), and the cache extended by them: each step costs one new position, not the prefix."""
        cache = cache if cache is not None else [[] for _ in self.blocks]
        past = cache[0][0].shape[2] if cache[0] else 0
        T = ids.shape[1]
        if past + T > self.max_length:
            raise ValueError(f"sequence of {past + T} tokens exceeds the encoder's {self.max_length} positions")
        x = self.drop(self.tok(ids) + self.pos(torch.arange(past, past + T, device=ids.device)))
        for block, layer_cache in zip(self.blocks, cache):
            x = block(x, None, True, layer_cache)
        return self.ln(x), cache
