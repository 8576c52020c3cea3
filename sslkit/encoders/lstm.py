"""A multi-layer LSTM over token ids (ELMo-style when bidirectional).

Bidirectional (default): like ELMo, two separate stacks of ``depth`` layers, ``dim // 2`` units
each. The forward stack reads left to right; the backward stack reads each row's real tokens right
to left. Neither stack ever sees the other's states, so ``forward_directions`` gives a forward state
``h_fwd[:, t]`` that depends only on ``ids[:, :t+1]`` and a backward state ``h_bwd[:, t]`` that
depends only on ``ids[:, t:len]``, which a bidirectional LM (``bilm``) needs. (One
``nn.LSTM(bidirectional=True, num_layers>1)`` would not do: its layer 2 feeds both directions with
the concatenation of layer 1's, so the forward direction would read the future.) ``forward_tokens``
concatenates the two, ``dim`` wide like the embedding, which lets masked-LM heads tie to ``tok``.

Unidirectional: one stack of ``dim`` units, left to right; the encoder is then causal and works
with ``clm``. Rows are right-padded; padding never changes the real tokens' states.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data import DataInfo
from ..errors import ConfigError
from ..registry import register
from ..schema import Count, Rate
from .base import Encoder
from .pooling import pool


def reversal_index(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """[B, T] gather index that reverses each row's first ``lengths[b]`` positions and keeps the rest
    in place. It is its own inverse, so the same gather also flips the backward states back."""
    t = torch.arange(T, device=lengths.device).expand(len(lengths), T)
    L = lengths.unsqueeze(1)
    return torch.where(t < L, L - 1 - t, t)


@register("encoders", "lstm")
class LSTMEncoder(Encoder):
    """Stacked LSTM over token embeddings; ``forward`` mean-pools the real tokens' states.

    dim: embedding and state width. depth: LSTM layers per direction. dropout: between layers and
    on embeddings. bidirectional: ELMo-style separate forward and backward stacks (``dim // 2``
    units each, concatenated); ``false``: one causal stack of ``dim`` units.
    """

    pad_id: int
    max_length: int
    causal: bool  # True for one left-to-right stack (bidirectional: false)

    def __init__(self, info: DataInfo, *, dim: Count = 128, depth: Count = 2, dropout: Rate = 0.1,
                 bidirectional: bool = True):
        super().__init__()
        if info.modality != "text" or info.tokenizer is None:
            raise ConfigError("encoder.name", f"'lstm' takes text data, not {info.modality}")
        if bidirectional and dim % 2:
            raise ConfigError("encoder.dim", f"a bidirectional LSTM splits dim in two; {dim} is odd")
        self.pad_id, self.causal = info.tokenizer.pad_id, not bidirectional
        self.max_length = info.input_shape[0]
        self.tok = nn.Embedding(info.tokenizer.vocab_size, dim)
        nn.init.normal_(self.tok.weight, std=0.02)
        self.drop = nn.Dropout(dropout)
        width = dim // 2 if bidirectional else dim
        lstm = dict(num_layers=depth, batch_first=True, dropout=dropout if depth > 1 else 0.0)
        self.fwd = nn.LSTM(dim, width, **lstm)
        # one LayerNorm per direction: a LayerNorm over the concatenation would normalise each
        # forward state with statistics of the backward one, i.e. of the future
        self.ln_fwd = nn.LayerNorm(width)
        self.bwd = nn.LSTM(dim, width, **lstm) if bidirectional else None
        self.ln_bwd = nn.LayerNorm(width) if bidirectional else None
        self.out_dim = dim

    def token_embedding(self) -> nn.Embedding:
        return self.tok

    def forward_directions(self, ids: torch.Tensor) -> tuple:
        """Forward and backward states ``(h_fwd, h_bwd)``, each [B, T, dim // 2] (bidirectional only)."""
        if self.bwd is None:
            raise RuntimeError("forward_directions needs a bidirectional lstm encoder")
        T = ids.shape[1]
        # a row's length runs to its last real token, so the reversal below never moves padding
        # into the real tokens even if a pad id occurs inside a row
        pos = torch.arange(1, T + 1, device=ids.device)
        lengths = ((ids != self.pad_id) * pos).amax(1)
        x = self.drop(self.tok(ids))
        # both stacks read their real tokens first and the padding after them, so padding (whose
        # states nobody uses) cannot reach a real token's state: no packing needed
        h_fwd, _ = self.fwd(x)
        rev = reversal_index(lengths, T).unsqueeze(-1)
        h_bwd, _ = self.bwd(x.gather(1, rev.expand_as(x)))
        h_bwd = h_bwd.gather(1, rev.expand_as(h_bwd))
        return self.ln_fwd(h_fwd), self.ln_bwd(h_bwd)

    def forward_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        if self.bwd is None:
            h, _ = self.fwd(self.drop(self.tok(ids)))  # causal: right padding cannot reach real tokens
            return self.ln_fwd(h)
        return torch.cat(self.forward_directions(ids), dim=-1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.forward_tokens(ids)
        return pool(h, ids != self.pad_id, "mean")
