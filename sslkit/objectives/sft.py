"""Supervised fine-tuning on prompt -> response demonstrations (InstructGPT's first RLHF stage):
``L = -(1/|R|) sum_{t in R} log p(x_t | x_<t)`` over the response tokens ``R`` (``<sep>`` included)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..data.stream import StreamSpec
from ..distributed import global_mean, sum_over_ranks
from ..encoders.capabilities import CAUSAL
from ..errors import ConfigError
from ..registry import register
from ..text.lm_head import IGNORE, embedding_of, lm_head, token_loss
from ..text.policy import response_mask
from .base import ObjectiveContext, Objective, Output, batched


@register("objectives", "sft")
class SFT(Objective):
    """Next-token loss of a causal encoder (``gpt``) with a head tied to its token embedding, on rows
    ``<cls> prompt response <sep>`` with a ``prompt_len`` column (the ``rlhf_toy`` dataset's ``sft``
    layout). Reports ``test_response_nll`` (mean per response token).

    prompt_loss: also train on the prompt tokens (plain language modelling of the whole row).
    """

    requires = (CAUSAL,)  # each token is predicted from the tokens before it

    def __init__(self, ctx: ObjectiveContext, *, prompt_loss: bool = False):
        super().__init__()
        if ctx.data is not None and "prompt_len" not in ctx.data.train:
            raise ConfigError("data", "'sft' needs prompt -> response rows with a prompt_len column "
                                      "(e.g. data: {name: rlhf_toy, layout: sft})")
        self.pad_id, self.eos_id = ctx.info.tokenizer.pad_id, ctx.info.tokenizer.sep_id
        self.prompt_loss = prompt_loss
        self.head = lm_head(ctx.encoder, transform=False)

    def streams(self):
        return {"all": StreamSpec("all")}

    def targets(self, x: torch.Tensor, prompt_len: torch.Tensor) -> torch.Tensor:
        """Next-token targets ``x[:, 1:]`` with padding (and, by default, prompt tokens) set to IGNORE."""
        start = torch.ones_like(prompt_len) if self.prompt_loss else prompt_len
        keep = response_mask(x, start, self.pad_id, self.eos_id)
        return x[:, 1:].masked_fill(~keep, IGNORE)

    def logits(self, ids, encoder):
        return self.head(encoder.forward_tokens(ids), embedding_of(encoder))

    def forward(self, batch, encoder, player="model"):
        b = batch["all"]
        loss, _ = token_loss(self.logits(b["x"][:, :-1], encoder), self.targets(b["x"], b["prompt_len"]))
        return Output(loss, {"perplexity": lambda: global_mean(loss.detach()).exp()})

    @torch.no_grad()
    def evaluate(self, data, encoder, batch_size, device):
        nll, n = 0.0, 0
        for b in batched(data.test, batch_size, device, columns=("x", "prompt_len"), shard=True):
            target = b["x"][:, 1:].masked_fill(~response_mask(b["x"], b["prompt_len"], self.pad_id, self.eos_id), IGNORE)
            logits = self.logits(b["x"][:, :-1], encoder).float()
            keep = target != IGNORE
            nll += F.cross_entropy(logits[keep], target[keep], reduction="sum").item()
            n += int(keep.sum())
        nll, n = sum_over_ranks(nll, n)
        return {"test_response_nll": nll / n, "test_response_perplexity": math.exp(nll / n)} if n else {}
