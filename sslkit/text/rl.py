"""The reinforcement-learning arithmetic of RLHF's PPO stage (Ziegler et al., 2019; Ouyang et al.,
2022; as in TRL), on ``[B, T]`` per-token tensors with a ``mask`` of the response tokens:

* KL-penalised rewards ``r_t = -beta * (log pi(a_t|s_t) - log pi_ref(a_t|s_t))``, plus the sequence's
  score ``r_theta`` on its last token: summed over a response, ``r = r_theta - beta * r_KL``;
* generalised advantage estimation, ``A_t = sum_l (gamma lambda)^l delta_{t+l}`` with
  ``delta_t = r_t + gamma V_{t+1} - V_t`` (``V = 0`` after the last token);
* the clipped policy and value losses of PPO;
* a fixed or adaptive KL coefficient.
"""
from __future__ import annotations

from typing import Optional

import torch


def masked_mean(x: torch.Tensor, mask: torch.Tensor, count: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The mean of ``x`` over the ``mask``ed entries; ``count``: the divisor instead of their number (under
    torchrun, the global batch's count over the number of ranks: see :meth:`sslkit.objectives.ppo.PPO.update`)."""
    m = mask.to(x.dtype)
    return (x * m).sum() / (m.sum() if count is None else count).clamp_min(1.0)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """``(x - mean) / std`` over the masked entries (the mean is added back when ``shift_mean`` is False)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    return out if shift_mean else out + mean


def kl_penalty_rewards(scores: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor,
                       kl_coef: float) -> tuple:
    """Per-token rewards ``-kl_coef * (logp - ref_logp)`` with ``scores[i]`` added on row ``i``'s last
    response token; zero outside ``mask``. Returns ``(rewards, kl)`` with ``kl = (logp - ref_logp) * mask``."""
    kl = (logp - ref_logp) * mask
    rewards = -kl_coef * kl
    last = mask.long().cumsum(1).argmax(1)  # the last response column of each row
    rewards[torch.arange(len(scores), device=scores.device), last] += scores * mask.any(1)
    return rewards, kl


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float) -> tuple:
    """Generalised advantage estimates and returns ``(A, A + V)`` along dim 1, vectorised: with
    ``V_{t+1}`` the next value (0 after the last masked token), ``A = delta @ M`` for the upper-triangular
    discount matrix ``M[l, t] = (gamma lambda)^(l - t)``, ``l >= t``."""
    m = mask.to(values.dtype)
    v = values * m
    r = rewards * m
    nxt = torch.cat([v[:, 1:], torch.zeros_like(v[:, :1])], 1)
    delta = (r + gamma * nxt - v) * m
    T = values.shape[1]
    idx = torch.arange(T, device=values.device)
    power = (idx[:, None] - idx[None, :]).to(values.dtype)  # l - t
    M = torch.where(power >= 0, (gamma * lam) ** power.clamp_min(0), torch.zeros_like(power))
    adv = (delta @ M) * m
    return adv, (adv + v) * m


def ppo_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor,
                    clip: float, count: Optional[torch.Tensor] = None) -> tuple:
    """``mean_t max(-A ratio, -A clip(ratio, 1 - eps, 1 + eps))`` with ``ratio = exp(logp - old_logp)``;
    also returns the fraction of tokens where the clipped term was the larger one (``count``: as
    :func:`masked_mean`'s)."""
    ratio = torch.exp(logp - old_logp)
    loss1 = -adv * ratio
    loss2 = -adv * ratio.clamp(1.0 - clip, 1.0 + clip)
    loss = masked_mean(torch.max(loss1, loss2), mask, count)
    clipfrac = masked_mean((loss2 > loss1).to(logp.dtype), mask, count)
    return loss, clipfrac


def ppo_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
                   clip: float, count: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``0.5 mean_t max((V - R)^2, (clip(V, V_old - eps, V_old + eps) - R)^2)`` (``count``: as
    :func:`masked_mean`'s)."""
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return 0.5 * masked_mean(torch.max((values - returns) ** 2, (clipped - returns) ** 2), mask, count)


class KLController:
    """The KL coefficient ``beta``: fixed, or adaptive (Ziegler et al., 2019):
    ``beta <- beta * (1 + clip(KL / target - 1, -0.2, 0.2) * n / horizon)`` after each rollout of ``n``
    sequences whose mean summed KL is ``KL``.

    value: initial beta. target: KL target per sequence (None: fixed beta). horizon: how many sequences
    it takes to move beta by the proportional error.
    """

    def __init__(self, value: float, target: Optional[float] = None, horizon: int = 10000):
        self.value, self.target, self.horizon = float(value), target, horizon

    def update(self, kl: float, n: int) -> float:
        if self.target is not None:
            error = min(max(kl / self.target - 1.0, -0.2), 0.2)
            self.value *= 1.0 + error * n / self.horizon
        return self.value
