"""A GPT-style causal decoder (nanoGPT-sized): token + learned position embeddings, pre-norm
causal ``Block``s from :mod:`sslkit.encoders.transformer`, a final LayerNorm.

The language-model head is not part of the encoder: objectives tie it to ``encoder.tok.weight``
(GPT-2's weight tying), so a fine-tuning recipe can load these encoder weights unchanged.
"""
from __future__ import annotations

from typing import Literal, Optional

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
