"""A small pre-norm Transformer over token ids, written to be read top to bottom.

``Block`` is shared by the bidirectional ``transformer`` encoder here and by causal
decoders: ``causal=True`` turns on the autoregressive mask. Attention uses
``torch.nn.functional.scaled_dot_product_attention``.
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


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ConfigError("encoder.heads", f"width {dim} is not divisible by {heads} heads")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask: Optional[torch.Tensor] = None, causal: bool = False, cache: Optional[list] = None):
        """``cache``: this layer's ``[keys, values]`` of earlier positions (``[]`` at the start), extended
        in place; the new queries attend to them all (causal decoding step by step)."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
            past = k.shape[2] - T
            if past:  # query i sits at position past + i: it sees keys 0 .. past + i
                mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(past) if T > 1 else None
                causal = False
        return self._attend(q, k, v, mask, causal)

    def cross(self, xq: torch.Tensor, xkv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The same weights with queries from ``xq`` ``[B, T, C]`` and keys/values from ``xkv`` ``[B, S, C]``
        (the query stream of two-stream attention reads the content stream)."""
        (B, T, C), S, H = xq.shape, xkv.shape[1], self.heads
        w_q, w_kv = self.qkv.weight.split([C, 2 * C])
        b_q, b_kv = self.qkv.bias.split([C, 2 * C])
        q = F.linear(xq, w_q, b_q).view(B, T, H, C // H).transpose(1, 2)
        k, v = F.linear(xkv, w_kv, b_kv).view(B, S, 2, H, C // H).permute(2, 0, 3, 1, 4)
        return self._attend(q, k, v, mask, False)

    def _attend(self, q, k, v, mask, causal):
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None,
                                           dropout_p=self.dropout if self.training else 0.0)
        B, H, T, D = y.shape
        return self.proj(y.transpose(1, 2).reshape(B, T, H * D))


class Block(nn.Module):
    """``x + attn(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, mlp_ratio: int = 4):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim),
                                 nn.Dropout(dropout))

    def forward(self, x, mask=None, causal: bool = False, cache: Optional[list] = None):
        x = x + self.attn(self.ln1(x), mask, causal, cache)
        return x + self.mlp(self.ln2(x))

    def two_stream(self, h: torch.Tensor, g: torch.Tensor, content_mask: torch.Tensor,
                   query_mask: torch.Tensor) -> tuple:
        """One block of two-stream self-attention (XLNet) with this block's weights: the content stream
        ``h`` attends to itself under ``content_mask``, the query stream ``g`` attends to the content stream
        under ``query_mask`` (both before this block's update). Returns the new ``(h, g)``."""
        hn = self.ln1(h)
        g = g + self.attn.cross(self.ln1(g), hn, query_mask)
        g = g + self.mlp(self.ln2(g))
        h = h + self.attn.cross(hn, hn, content_mask)
        return h + self.mlp(self.ln2(h)), g


def padding_mask(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Boolean ``[B, 1, 1, T]`` mask for SDPA: True where the key is a real token."""
    return (ids != pad_id)[:, None, None, :]


@register("encoders", "transformer")
class TransformerEncoder(Encoder):
    """Bidirectional Transformer encoder over token ids (BERT-style), pre-norm blocks.

    dim: width. depth: number of blocks. heads: attention heads. dropout: attention/MLP dropout.
    pooling: ``mean`` over real tokens or the ``cls`` (first) token for ``forward``.
    max_length: number of learned positions (default: the data's sequence length).
    """

    causal = False  # GPT-style decoders set this: position t attends to positions <= t only
    pad_id: int
    max_length: int

    def __init__(self, info: DataInfo, *, dim: Count = 128, depth: Count = 4, heads: Count = 4, dropout: Rate = 0.1,
                 pooling: Literal["mean", "cls"] = "mean", max_length: Optional[Count] = None):
        super().__init__()
        self._build(info, dim, depth, heads, dropout, max_length, pooling)

    def _build(self, info, dim, depth, heads, dropout, max_length, pooling):
        """Token + learned position embeddings, ``depth`` pre-norm blocks and a final LayerNorm."""
        if info.modality != "text" or info.tokenizer is None:
            raise ConfigError("encoder.name", f"'{type(self).__name__}' takes text data, not {info.modality}")
        self.pad_id, self.pooling = info.tokenizer.pad_id, pooling
        self.max_length = max_length or info.input_shape[0]
        self.tok = nn.Embedding(info.tokenizer.vocab_size, dim)
        self.pos = nn.Embedding(self.max_length, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(depth))
        self.ln = nn.LayerNorm(dim)
        self.out_dim = dim
        self.apply(_init)

    def token_embedding(self) -> nn.Embedding:
        return self.tok

    def forward_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        T = ids.shape[1]
        if T > self.max_length:
            raise ValueError(f"sequence of {T} tokens exceeds the encoder's {self.max_length} positions")
        x = self.drop(self.tok(ids) + self.pos(torch.arange(T, device=ids.device)))
        # causal: with right padding a real token never attends to a later pad, so no padding mask
        mask = None if self.causal else padding_mask(ids, self.pad_id)
        for block in self.blocks:
            x = block(x, mask, self.causal)
        return self.ln(x)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return pool(self.forward_tokens(ids), ids != self.pad_id, self.pooling)

    # -- two-stream attention (the TwoStreamEncoder capability; used by the plm objective)
    def embed(self, ids: Optional[torch.Tensor], positions: torch.Tensor,
              start: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Block input: token embeddings of ``ids`` (or ``start``, e.g. XLNet's learned query vector) plus
        the position embeddings of ``positions``, with the embedding dropout."""
        return self.drop((self.tok(ids) if ids is not None else start) + self.pos(positions))

    def forward_two_stream(self, h: torch.Tensor, g: torch.Tensor, content_mask: torch.Tensor,
                           query_mask: torch.Tensor) -> torch.Tensor:
        """The content stream ``h`` and query stream ``g`` (from :meth:`embed`) through every block's
        :meth:`Block.two_stream`; returns the final-normed query stream."""
        for block in self.blocks:
            h, g = block.two_stream(h, g, content_mask, query_mask)
        return self.ln(g)


def _init(m: nn.Module):
    # GPT-2 style: small normal init keeps early logits near uniform
    if isinstance(m, (nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, std=0.02)
    if isinstance(m, nn.Linear) and m.bias is not None:
        nn.init.zeros_(m.bias)
