"""Pieces shared by the language-model objectives: the token head (the encoder's own, or one tied to its
embedding: :func:`lm_head` chooses), a cross-entropy that stays finite when a batch has no target, and the
tied embedding of a token encoder."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import global_count


IGNORE = -100  # label of positions that carry no target (PyTorch's ignore_index)


class TiedLMHead(nn.Module):
    """Token logits ``LN(act(W h)) E^T + b`` with the decoder tied to the encoder's embedding ``E``
    (BERT's transform + tied decoder). ``transform=False`` gives GPT-2's bare ``h E^T``.

    dim: hidden width. vocab_size: number of tokens. transform: add the dense + GELU + LayerNorm.
    """

    def __init__(self, dim: int, vocab_size: int, transform: bool = True):
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim)) if transform else nn.Identity()
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, h: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(h), embedding, self.bias)


def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple:
    """Mean cross-entropy over positions with ``labels != IGNORE`` and the number of such positions.
    A batch without any target gives a zero loss that still back-propagates (never NaN).

    Under ``torchrun`` the mean is over the global batch's targets (:func:`sslkit.distributed.global_count`),
    so ranks whose rows hold more targets weigh more, as in one process."""
    flat = labels.reshape(-1)
    keep = flat != IGNORE
    n = int(keep.sum())
    divisor = global_count(n)
    if n == 0:  # (other ranks may have targets: this one adds nothing but still takes part in the backward)
        return logits.sum() * 0.0, 0
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1])[keep], flat[keep], reduction="sum")
    return ce / divisor, n


def token_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    keep = labels != IGNORE
    if not keep.any():
        return torch.zeros((), device=logits.device)
    return (logits.argmax(-1)[keep] == labels[keep]).float().mean()


def embedding_of(encoder: nn.Module) -> torch.Tensor:
    """The weight of a token encoder's input embedding (the tied output layer of LM heads)."""
    return encoder.token_embedding().weight


class EncoderLMHead(nn.Module):
    """The encoder's own language-model head (e.g. a Hugging Face ``BertForMaskedLM``'s), called like a
    :class:`TiedLMHead` (``head(h, embedding)``, the embedding unused). It has no weights of its own: they
    belong to the encoder, so they are trained, saved and exported with it.

    encoder: a token encoder with the ``LanguageModel`` capability (``lm_logits(h)``).
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.__dict__["encoder"] = encoder  # not a submodule: the encoder is the model's, registered once

    def forward(self, h: torch.Tensor, embedding=None) -> torch.Tensor:
        return self.encoder.lm_logits(h)


LM_HEADS = (TiedLMHead, EncoderLMHead)


def lm_head(encoder: nn.Module, transform: bool = True) -> nn.Module:
    """The token head of a language-model objective on ``encoder``: the encoder's own head when it has one
    (capability ``LM_HEAD``), else a :class:`TiedLMHead` over its embedding (``transform``: BERT's dense +
    GELU + LayerNorm before the tied decoder; False: GPT-2's bare ``h E^T``)."""
    from ..encoders.capabilities import LM_HEAD

    if LM_HEAD.met_by(encoder):
        return EncoderLMHead(encoder)
    return TiedLMHead(encoder.out_dim, encoder.token_embedding().num_embeddings, transform)
