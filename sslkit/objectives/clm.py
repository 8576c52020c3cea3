"""Causal (autoregressive) language modelling, GPT:  L = -(1/N) sum_t log p(x_t | x_<t)."""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from ..data.stream import StreamSpec
from ..distributed import global_mean, sum_over_ranks
from ..errors import ConfigError
from ..registry import register
from ..encoders.capabilities import CAUSAL
from ..schema import Count, NonNegativeInt, Positive, PositiveProbability
from ..text.lm_head import IGNORE, embedding_of, lm_head, token_loss
from .base import ObjectiveContext, Objective, Output, batched


def shifted(x: torch.Tensor, pad_id: int) -> tuple:
    """Inputs ``x[:, :-1]`` and next-token targets ``x[:, 1:]`` (padding targets ignored)."""
    target = x[:, 1:].masked_fill(x[:, 1:] == pad_id, IGNORE)
    return x[:, :-1], target


@register("objectives", "clm")
class CausalLM(Objective):
    """Next-token cross-entropy ``-(1/N) sum_t log p(x_t | x_<t)`` of a causal encoder (``gpt``) with a
    head tied to its token embedding; reports ``test_perplexity = exp(mean test NLL)``, and its default
    reporter ``text_samples`` writes ``samples.txt`` (greedy and top-k/top-p continuations of test prompts).

    sample_tokens: ids generated per sample in ``samples.txt`` (0: none). temperature, top_k, top_p:
    the sampling settings for those samples.
    """

    requires = (CAUSAL,)  # each token is predicted from the tokens before it
    reporters = ("text_samples",)

    def __init__(self, ctx: ObjectiveContext, *, sample_tokens: NonNegativeInt = 64, temperature: Positive = 0.8,
                 top_k: Optional[Count] = 40, top_p: Optional[PositiveProbability] = 0.95):
        super().__init__()
        if ctx.info.input_shape[0] < 2:
            raise ConfigError("data.max_length", "next-token prediction needs sequences of at least 2 ids")
        self.pad_id = ctx.info.tokenizer.pad_id
        self.tokenizer = ctx.info.tokenizer
        self.head = lm_head(ctx.encoder, transform=False)
        self.sample_tokens, self.temperature, self.top_k, self.top_p = sample_tokens, temperature, top_k, top_p
        self.seed = ctx.seed

    def streams(self):
        return {"all": StreamSpec("all")}

    def token_logits(self, ids, encoder):
        return self.head(encoder.forward_tokens(ids), embedding_of(encoder))

    def forward(self, batch, encoder, player="model"):
        inp, target = shifted(batch["all"]["x"], self.pad_id)
        loss, _ = token_loss(self.token_logits(inp, encoder), target)
        return Output(loss, {"perplexity": lambda: global_mean(loss.detach()).exp()})

    @torch.no_grad()
    def evaluate(self, data, encoder, batch_size, device):
        nll, n = 0.0, 0
        for b in batched(data.test, batch_size, device, columns=("x",), shard=True):
            inp, target = shifted(b["x"], self.pad_id)
            logits = self.token_logits(inp, encoder).float()
            keep = target != IGNORE
            nll += F.cross_entropy(logits[keep], target[keep], reduction="sum").item()
            n += int(keep.sum())
        nll, n = sum_over_ranks(nll, n)
        if not n:
            return {}
        return {"test_perplexity": math.exp(nll / n), "test_nll": nll / n}

    def default_reporters(self) -> tuple:
        return self.reporters if self.sample_tokens else ()
