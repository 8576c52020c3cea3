"""Direct preference optimisation (Rafailov et al., 2023): the policy learns from the ranked pairs
directly, without a reward model or sampling:
``L = -log sigma(beta [(log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x))])``
with sequence log-probabilities summed over the response tokens (``<sep>`` included)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..data.stream import StreamSpec
from ..distributed import global_count, sum_over_ranks
from ..encoders.capabilities import CAUSAL
from ..errors import ConfigError
from ..registry import register
from ..schema import Positive
from ..text.lm_head import embedding_of, lm_head
from ..text.policy import FrozenReference, response_mask, token_logprobs
from .base import ObjectiveContext, Objective, Output, batched
from .reward import ranked_pairs


def dpo_loss(logp_w: torch.Tensor, logp_l: torch.Tensor, ref_w: torch.Tensor, ref_l: torch.Tensor,
             beta: float) -> tuple:
    """Per-pair DPO loss and the implicit reward margin ``beta [(logp_w - ref_w) - (logp_l - ref_l)]``."""
    margin = beta * ((logp_w - ref_w) - (logp_l - ref_l))
    return -F.logsigmoid(margin), margin


@register("objectives", "dpo")
class DPO(Objective):
    """DPO on the ``ranked`` ``[N, K, T]`` / ``scores`` / ``prompt_len`` columns (the ``rlhf_toy`` dataset's
    ``rankings`` layout): every pair of the K responses with a strictly better labeler score, against a
    frozen reference. Reports ``test_pairwise_accuracy`` (share of held-out pairs whose implicit reward
    ranks the chosen response higher).

    beta: the inverse temperature of the implicit reward (how far the policy may move from the reference).
    reference: the earlier stage whose language model is the frozen reference and the policy head's
    start (None: a frozen copy of this run's initial encoder and head).
    """

    requires = (CAUSAL,)  # each token is predicted from the tokens before it

    def __init__(self, ctx: ObjectiveContext, *, beta: Positive = 0.1, reference: Optional[str] = "sft"):
        super().__init__()
        if ctx.data is not None and not {"ranked", "scores", "prompt_len"} <= set(ctx.data.train.columns):
            raise ConfigError("data", "'dpo' needs ranked responses: columns ranked, scores and prompt_len "
                                      "(e.g. data: {name: rlhf_toy, layout: rankings})")
        self.beta, self.path, self.reference_stage = beta, ctx.path, reference
        self.pad_id, self.tokenizer = ctx.info.tokenizer.pad_id, ctx.info.tokenizer
        self.head = lm_head(ctx.encoder, transform=False)
        self.ref = FrozenReference(reference, ctx.stages, f"{ctx.path}.reference", self.tokenizer, ctx.encoder,
                                   self.head)

    def streams(self):
        return {"all": StreamSpec("all")}

    def sequence_logprobs(self, logits_fn, ranked: torch.Tensor, prompt_len: torch.Tensor) -> torch.Tensor:
        """``[B, K]`` summed log-probabilities of each ranked response given its prompt."""
        B, K, T = ranked.shape
        seq = ranked.reshape(B * K, T)
        mask = response_mask(seq, prompt_len.repeat_interleave(K), self.pad_id, self.tokenizer.sep_id)
        return (token_logprobs(logits_fn(seq[:, :-1]), seq) * mask).sum(1).view(B, K)

    def policy_logits(self, ids, encoder):
        return self.head(encoder.forward_tokens(ids), embedding_of(encoder))

    def margins(self, b: dict, encoder: nn.Module) -> tuple:
        ref = self.ref.to(b["ranked"].device)
        logp = self.sequence_logprobs(lambda ids: self.policy_logits(ids, encoder), b["ranked"], b["prompt_len"])
        with torch.no_grad():
            ref_logp = self.sequence_logprobs(ref.logits, b["ranked"], b["prompt_len"])
        i, j, valid = ranked_pairs(b["scores"])
        loss, margin = dpo_loss(logp[:, i], logp[:, j], ref_logp[:, i], ref_logp[:, j], self.beta)
        return loss[valid], margin[valid], logp

    def forward(self, batch, encoder, player="model"):
        loss, margin, logp = self.margins(batch["all"], encoder)
        # a mean over the global batch's comparisons (ties leave the ranks different counts)
        divisor = global_count(loss.numel())
        if loss.numel() == 0:  # only ties in this rank's rows
            return Output(logp.sum() * 0.0, {})
        return Output(loss.sum() / divisor, {"pairwise_accuracy": (margin > 0).float().mean(),
                                             "reward_margin": margin.detach().mean()})

    @torch.no_grad()
    def evaluate(self, data, encoder, batch_size, device):
        if not self.ref.available:
            return {}
        correct = total = 0
        for b in batched(data.test, batch_size, device, columns=("ranked", "scores", "prompt_len"), shard=True):
            _, margin, _ = self.margins(b, encoder)
            correct += int((margin > 0).sum())
            total += margin.numel()
        correct, total = sum_over_ranks(correct, total)
        return {"test_pairwise_accuracy": correct / total} if total else {}
