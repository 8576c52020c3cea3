"""A small BART-style encoder-decoder: a bidirectional Transformer encoder and a causal decoder with
cross-attention, sharing one token embedding (which the output layer also reuses).

``forward(x)`` pools the encoder states (so a classification recipe can fine-tune it), ``forward_tokens``
gives them per token, and ``decode(targets_in, memory, source)`` runs the decoder.
"""
from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..data import DataInfo
from ..errors import ConfigError
from ..registry import register
from ..schema import Count, Rate
from .base import Encoder
from .pooling import pool
from .transformer import Block, _init, padding_mask


class CrossAttention(nn.Module):
    """Multi-head attention from decoder states ``x`` to encoder states ``memory`` (SDPA)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q, self.kv, self.proj = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)

    def forward(self, x, memory, mask):
        B, T, C = x.shape
        S = memory.shape[1]
        q = self.q(x).view(B, T, self.heads, C // self.heads).transpose(1, 2)
        k, v = self.kv(memory).view(B, S, 2, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class DecoderBlock(nn.Module):
    """Causal self-attention, then cross-attention to the encoder, then the MLP (pre-norm)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.self_block = Block(dim, heads, dropout)
        self.ln = nn.LayerNorm(dim)
        self.cross = CrossAttention(dim, heads, dropout)

    def forward(self, x, memory, mask):
        # Block = attention + MLP; the cross-attention sits in between as a residual of its own
        x = x + self.self_block.attn(self.self_block.ln1(x), None, True)
        x = x + self.cross(self.ln(x), memory, mask)
        return x + self.self_block.mlp(self.self_block.ln2(x))


@register("encoders", "seq2seq")
class Seq2SeqEncoder(Encoder):
    """Transformer encoder-decoder (BART-like, pre-norm) over token ids.

    dim: width. depth: encoder blocks. decoder_depth: decoder blocks (default: ``depth``).
    heads: attention heads. dropout: attention/MLP dropout. max_length: positions (default: the
    data's length). pooling: ``mean`` over real tokens or the first (``cls``) state for ``forward``.
    """

    def __init__(self, info: DataInfo, *, dim: Count = 128, depth: Count = 2, decoder_depth: Optional[Count] = None,
                 heads: Count = 4, dropout: Rate = 0.1, max_length: Optional[Count] = None,
                 pooling: Literal["mean", "cls"] = "mean"):
        super().__init__()
        if info.modality != "text" or info.tokenizer is None:
            raise ConfigError("encoder.name", f"'seq2seq' takes text data, not {info.modality}")
        self.pad_id, self.pooling = info.tokenizer.pad_id, pooling
        self.max_length = max_length or info.input_shape[0]
        self.tok = nn.Embedding(info.tokenizer.vocab_size, dim)
        self.pos = nn.Embedding(self.max_length, dim)
        self.dec_pos = nn.Embedding(self.max_length, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(depth))
        self.dec_blocks = nn.ModuleList(DecoderBlock(dim, heads, dropout) for _ in range(decoder_depth or depth))
        self.ln, self.dec_ln = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.out_dim = dim
        self.apply(_init)

    causal = False  # the encoder half sees the whole source
    pad_id: int
    max_length: int

    def token_embedding(self) -> nn.Embedding:
        return self.tok

    def _check(self, ids):
        if ids.shape[1] > self.max_length:
            raise ValueError(f"sequence of {ids.shape[1]} tokens exceeds the encoder's {self.max_length} positions")

    def forward_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        self._check(ids)
        x = self.drop(self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device)))
        mask = padding_mask(ids, self.pad_id)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln(x)

    def decode(self, targets_in: torch.Tensor, memory: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Decoder states ``[B, T, dim]`` for shifted targets ``targets_in``, attending causally to them and
        to the encoder states ``memory`` of the non-pad ``source`` tokens."""
        self._check(targets_in)
        x = self.drop(self.tok(targets_in) + self.dec_pos(torch.arange(targets_in.shape[1], device=targets_in.device)))
        mask = padding_mask(source, self.pad_id)
        for block in self.dec_blocks:
            x = block(x, memory, mask)
        return self.dec_ln(x)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return pool(self.forward_tokens(ids), ids != self.pad_id, self.pooling)
