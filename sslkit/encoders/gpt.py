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
from ..errors import ConfigError
from ..registry import register
from .base import Encoder
from .transformer import Block, _init


@register("encoders", "gpt")
class GPTEncoder(Encoder):
    """Causal Transformer decoder: position ``t`` attends to positions ``<= t`` only.

    dim: width. depth: number of blocks. heads: attention heads. dropout: attention/MLP dropout.
    max_length: number of learned positions (default: the data's sequence length).
    pooling: features for ``forward``: ``last`` real token (it has seen the whole sequence)
    or ``mean`` over real tokens.
    """

    causal = True

    def __init__(self, info: DataInfo, *, dim: int = 128, depth: int = 4, heads: int = 4, dropout: float = 0.0,
                 max_length: Optional[int] = None, pooling: Literal["last", "mean"] = "last"):
        super().__init__()
        if info.modality != "text" or info.tokenizer is None:
            raise ConfigError("encoder.name", f"'gpt' takes text data, not {info.modality}")
        self.pad_id, self.pooling = info.tokenizer.pad_id, pooling
        self.max_length = max_length or info.input_shape[0]
        self.tok = nn.Embedding(info.tokenizer.vocab_size, dim)
        self.pos = nn.Embedding(self.max_length, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(depth))
        self.ln = nn.LayerNorm(dim)
        self.out_dim = dim
        self.apply(_init)

    def forward_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """``[B, T, dim]`` hidden states; padding needs no mask, because with right padding a real
        token never attends to a later pad under the causal mask."""
        T = ids.shape[1]
        if T > self.max_length:
            raise ValueError(f"sequence of {T} tokens exceeds the encoder's {self.max_length} positions")
        x = self.drop(self.tok(ids) + self.pos(torch.arange(T, device=ids.device)))
        for block in self.blocks:
            x = block(x, causal=True)
        return self.ln(x)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.forward_tokens(ids)
        real = ids != self.pad_id
        if self.pooling == "mean":
            w = real.unsqueeze(-1).to(h.dtype)
            return (h * w).sum(1) / w.sum(1).clamp_min(1.0)
        last = (real.long().cumsum(1).argmax(1))  # index of the last real token (0 for an all-pad row)
        return h[torch.arange(len(ids), device=ids.device), last]
