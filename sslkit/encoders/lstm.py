"""A multi-layer LSTM over token ids (ELMo-style when bidirectional).

Bidirectional (default): each direction has ``dim // 2`` units, so per-token states are ``dim``
wide like the embedding, which lets masked-LM heads tie to ``tok``. Unidirectional: ``dim`` units
left to right; the encoder is then causal and works with ``clm``. Padding (right-padded rows) is
skipped with packed sequences, so the backward direction starts at each row's last real token.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..data import DataInfo
from ..errors import ConfigError
from ..registry import register
from .base import Encoder


@register("encoders", "lstm")
class LSTMEncoder(Encoder):
    """Stacked LSTM over token embeddings; ``forward`` mean-pools the real tokens' states.

    dim: embedding and state width. depth: LSTM layers. dropout: between layers and on embeddings.
    bidirectional: ELMo-style forward + backward layers (``dim // 2`` units each); ``false`` is causal.
    """

    def __init__(self, info: DataInfo, *, dim: int = 128, depth: int = 2, dropout: float = 0.1,
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
        self.rnn = nn.LSTM(dim, dim // 2 if bidirectional else dim, num_layers=depth, batch_first=True,
                           dropout=dropout if depth > 1 else 0.0, bidirectional=bidirectional)
        self.ln = nn.LayerNorm(dim)
        self.out_dim = dim

    def forward_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        T = ids.shape[1]
        lengths = (ids != self.pad_id).sum(1).clamp_min(1).cpu()
        packed = pack_padded_sequence(self.drop(self.tok(ids)), lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
        return self.ln(out)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.forward_tokens(ids)
        real = (ids != self.pad_id).unsqueeze(-1).to(h.dtype)
        return (h * real).sum(1) / real.sum(1).clamp_min(1.0)
