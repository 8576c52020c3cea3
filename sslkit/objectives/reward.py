"""A scalar reward model trained from rankings (InstructGPT): K ranked responses per prompt give every
pair ``(chosen, rejected)`` with a strictly better labeler score, and
``L = mean_pairs -log sigma(r(x, y_chosen) - r(x, y_rejected) - margin)``."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.stream import StreamSpec
from ..distributed import sum_over_ranks
from ..distributed import global_count
from ..errors import ConfigError
from ..registry import register
from ..schema import NonNegative
from .base import ObjectiveContext, Objective, Output, batched


def ranked_pairs(scores: torch.Tensor) -> tuple:
    """Indices ``(i, j)`` of the pairs ``i < j`` of K responses and ``[B, P]`` validity (score_i > score_j:
    ties give no comparison)."""
    K = scores.shape[1]
    i, j = torch.triu_indices(K, K, 1, device=scores.device)
    return i, j, scores[:, i] > scores[:, j]


def pairwise_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """``-log sigma(r_chosen - r_rejected - margin)`` per pair (``logsigmoid`` keeps it finite)."""
    return -F.logsigmoid(r_chosen - r_rejected - margin)


@register("objectives", "reward")
class RewardModel(Objective):
    """Reward model = the run's text encoder (its pooled features of ``<cls> prompt response <sep>``) +
    a linear scalar head, trained on the ``ranked`` ``[N, K, T]`` / ``scores`` ``[N, K]`` columns of the
    ``rlhf_toy`` dataset's ``rankings`` layout. Reports ``test_pairwise_accuracy`` (share of held-out
    comparisons where the chosen response gets the higher reward). A later ``ppo`` stage scores
    its samples with :meth:`score`.

    margin: subtracted from the reward difference in the loss (asks for a gap of at least ``margin``).
    """

    def __init__(self, ctx: ObjectiveContext, *, margin: NonNegative = 0.0):
        super().__init__()
        if ctx.info.modality != "text":
            raise ConfigError(f"{ctx.path}.name", f"'reward' scores text, not {ctx.info.modality} data")
        if ctx.data is not None and not {"ranked", "scores"} <= set(ctx.data.train.columns):
            raise ConfigError("data", "'reward' needs ranked responses: columns ranked [N, K, T] and scores [N, K] "
                                      "(e.g. data: {name: rlhf_toy, layout: rankings})")
        self.margin = margin
        self.head = nn.Linear(ctx.encoder.out_dim, 1)

    def streams(self):
        return {"all": StreamSpec("all")}

    def score(self, ids: torch.Tensor, encoder: nn.Module) -> torch.Tensor:
        """``[B]`` scalar rewards of ``[B, T]`` rows."""
        return self.head(encoder(ids)).squeeze(-1)

    def ranked_rewards(self, ranked: torch.Tensor, encoder: nn.Module) -> torch.Tensor:
        B, K, T = ranked.shape
        return self.score(ranked.reshape(B * K, T), encoder).view(B, K)

    def forward(self, batch, encoder, player="model"):
        b = batch["all"]
        r = self.ranked_rewards(b["ranked"], encoder)
        i, j, valid = ranked_pairs(b["scores"])
        # a mean over the global batch's comparisons (ties leave the ranks different counts)
        divisor = global_count(int(valid.sum()))
        if not divisor:  # only ties: nothing to compare
            return Output(r.sum() * 0.0, {})
        diff = (r[:, i] - r[:, j])[valid]
        loss = pairwise_loss(r[:, i][valid], r[:, j][valid], self.margin).sum() / divisor
        if not len(diff):  # this rank's rows hold only ties
            return Output(loss, {})
        return Output(loss, {"pairwise_accuracy": (diff > 0).float().mean(), "reward_gap": diff.detach().mean()})

    @torch.no_grad()
    def evaluate(self, data, encoder, batch_size, device):
        correct = total = 0
        for b in batched(data.test, batch_size, device, columns=("ranked", "scores"), shard=True):
            r = self.ranked_rewards(b["ranked"], encoder)
            i, j, valid = ranked_pairs(b["scores"])
            correct += int(((r[:, i] - r[:, j]) > 0)[valid].sum())
            total += int(valid.sum())
        correct, total = sum_over_ranks(correct, total)
        return {"test_pairwise_accuracy": correct / total} if total else {}
