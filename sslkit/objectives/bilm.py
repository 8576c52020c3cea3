"""Bidirectional language modelling, ELMo (Peters et al., 2018): a forward LM and a backward LM
trained jointly, with separate LSTM stacks but a shared token embedding and softmax:

    L = -(1/N) sum_t log p(x_t | x_1..x_{t-1}; fwd)  -  (1/N) sum_t log p(x_t | x_{t+1}..x_len; bwd)

The loss is the *sum* of the two directions' mean NLLs (ELMo maximises the sum of the two log
likelihoods). Both directions predict the same N pairs of neighbouring real tokens, so the mean NLL
per predicted token over both directions is L / 2, and ``perplexity = exp(L / 2)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..data.stream import StreamSpec
from ..distributed import global_mean, sum_over_ranks
from ..errors import ConfigError
from ..registry import register
from ..encoders.capabilities import DIRECTIONAL
from ..text.lm_head import IGNORE, TiedLMHead, embedding_of, token_loss
from .base import ObjectiveContext, Objective, Output, batched


def direction_targets(x: torch.Tensor, pad_id: int) -> tuple:
    """Targets of both directions for states ``h[:, :-1]`` (forward) and ``h[:, 1:]`` (backward):
    the forward LM at t predicts ``x[:, t+1]``, the backward LM at t+1 predicts ``x[:, t]``. A pair
    counts only when both ids are real tokens (a backward state at a padding position has read the
    whole row, its own target included)."""
    pair = (x[:, :-1] != pad_id) & (x[:, 1:] != pad_id)
    return x[:, 1:].masked_fill(~pair, IGNORE), x[:, :-1].masked_fill(~pair, IGNORE)


@register("objectives", "bilm")
class BidirectionalLM(Objective):
    """ELMo's biLM loss ``L = NLL_fwd + NLL_bwd``: the mean next-token NLL of the encoder's forward
    states (``h_fwd[:, t]`` predicts ``x[:, t+1]``) plus the mean previous-token NLL of its backward
    states (``h_bwd[:, t]`` predicts ``x[:, t-1]``), over pairs of neighbouring real tokens
    (padding is ignored). Needs an encoder with ``forward_directions`` (``lstm`` with
    ``bidirectional: true``), whose two stacks never see each other's states.

    Both directions share one softmax tied to the token embedding ``E``: ``logits = (P h) E^T + b``,
    where ``P`` (``dim // 2`` to ``dim``, no bias) lifts a direction's state to the embedding width.

    Logs ``fwd_perplexity``, ``bwd_perplexity`` and ``perplexity = exp(L / 2)`` per step; reports
    ``test_perplexity`` (exp of the mean NLL over both directions' predicted test tokens),
    ``test_fwd_perplexity``, ``test_bwd_perplexity`` and ``test_nll`` on the test split.
    """

    requires = (DIRECTIONAL,)  # two stacks that never see each other's states

    def __init__(self, ctx: ObjectiveContext):
        super().__init__()
        if ctx.info.input_shape[0] < 2:
            raise ConfigError("data.max_length", "neighbour-token prediction needs sequences of at least 2 ids")
        self.pad_id = ctx.info.tokenizer.pad_id
        dim = ctx.encoder.out_dim
        self.proj = nn.Linear(dim // 2, dim, bias=False)
        self.head = TiedLMHead(dim, ctx.info.tokenizer.vocab_size, transform=False)

    def streams(self):
        return {"all": StreamSpec("all")}

    def direction_logits(self, x, encoder) -> tuple:
        """Logits of the forward LM at positions 0..T-2 and of the backward LM at positions 1..T-1."""
        h_fwd, h_bwd = encoder.forward_directions(x)
        E = embedding_of(encoder)
        return self.head(self.proj(h_fwd[:, :-1]), E), self.head(self.proj(h_bwd[:, 1:]), E)

    def forward(self, batch, encoder, player="model"):
        x = batch["all"]["x"]
        fwd_logits, bwd_logits = self.direction_logits(x, encoder)
        fwd_target, bwd_target = direction_targets(x, self.pad_id)
        fwd, _ = token_loss(fwd_logits, fwd_target)
        bwd, _ = token_loss(bwd_logits, bwd_target)
        loss = fwd + bwd
        return Output(loss, {"fwd_perplexity": fwd.detach().exp(), "bwd_perplexity": bwd.detach().exp(),
                             "perplexity": lambda: (global_mean(loss.detach()) / 2).exp()})

    @torch.no_grad()
    def evaluate(self, data, encoder, batch_size, device):
        fwd_nll = bwd_nll = 0.0
        n = 0  # pairs: both directions predict n tokens
        for b in batched(data.test, batch_size, device, columns=("x",), shard=True):
            fwd_logits, bwd_logits = self.direction_logits(b["x"], encoder)
            fwd_target, bwd_target = direction_targets(b["x"], self.pad_id)
            keep = fwd_target != IGNORE  # the same pairs as bwd_target != IGNORE
            fwd_nll += F.cross_entropy(fwd_logits[keep].float(), fwd_target[keep], reduction="sum").item()
            bwd_nll += F.cross_entropy(bwd_logits[keep].float(), bwd_target[keep], reduction="sum").item()
            n += int(keep.sum())
        fwd_nll, bwd_nll, n = sum_over_ranks(fwd_nll, bwd_nll, n)
        if not n:
            return {}
        nll = (fwd_nll + bwd_nll) / (2 * n)
        return {"test_perplexity": math.exp(nll), "test_nll": nll,
                "test_fwd_perplexity": math.exp(fwd_nll / n), "test_bwd_perplexity": math.exp(bwd_nll / n)}
