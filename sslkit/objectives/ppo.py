"""RLHF's reinforcement-learning stage: PPO against a reward model with a KL penalty.

Each rollout, the policy samples a response to every prompt of the batch; the reward model (an
earlier ``reward`` stage) or a rule-based reward (a Python callable) scores it, and the per-token
reward is ``-beta (log pi(a_t|s_t) - log pi_ref(a_t|s_t))`` plus the score on the last token, so a
response's total reward is ``r = r_theta - beta r_KL`` with ``pi_ref`` the frozen initial model. A
value head on the policy's hidden states gives GAE(gamma, lambda) advantages (whitened); then
``ppo_epochs`` passes over the rollout in minibatches minimise the clipped policy loss plus
``vf_coef`` times the clipped value loss. One trainer step is one minibatch update; the rollout
buffer (:class:`~sslkit.objectives.rollout.RolloutObjective`, checkpointed) is refilled from the next
batch of prompts when it is exhausted, so ``trainer.batch_size`` is the number of prompts per rollout
and every prompt of the stream is used.
"""
from __future__ import annotations

import importlib
from typing import Optional

import torch
from torch import nn

from ..data.stream import StreamSpec
from ..distributed import all_max, all_sum, for_my_rows, gather_rows, world_size
from ..encoders.capabilities import CAUSAL
from ..errors import ConfigError, TrainingError
from ..registry import register
from ..schema import Count, NonNegative, Positive, Probability
from ..text.generate import lm_stepper
from ..text.lm_head import embedding_of, lm_head
from ..text.policy import FrozenReference, entropy, load_stage, response_mask, row_lengths, \
    sample_responses, split_texts, token_logprobs
from ..text.rl import KLController, gae, kl_penalty_rewards, masked_mean, masked_whiten, ppo_policy_loss, \
    ppo_value_loss
from .base import ObjectiveContext, Output
from .rollout import RolloutObjective


def load_callable(spec: str, path: str):
    """``"package.module:function"`` -> the function, or a ConfigError naming ``path``."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ConfigError(path, f"expected 'module:function', got '{spec}'")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(path, f"cannot load '{spec}': {exc}") from None
    if not callable(fn):
        raise ConfigError(path, f"'{spec}' is not callable")
    return fn


def with_eos(seq: torch.Tensor, prompt_len: torch.Tensor, eos_id: int, pad_id: int) -> torch.Tensor:
    """Rows of ``seq`` with ``<sep>`` appended to responses cut at the length limit (one extra column),
    so a reward model always sees the end-of-response layout it was trained on."""
    out = torch.cat([seq, torch.full_like(seq[:, :1], pad_id)], 1)
    length = row_lengths(out, pad_id)
    ended = ((seq == eos_id) & (torch.arange(seq.shape[1], device=seq.device)[None] >= prompt_len[:, None])).any(1)
    rows = torch.arange(len(seq), device=seq.device)
    out[rows[~ended], length[~ended]] = eos_id
    return out


class RuleReward:
    """A rule-based reward: ``fn(prompts, responses) -> sequence of floats`` on decoded strings."""

    def __init__(self, fn, spec: str, tokenizer, path: str):
        self.fn, self.spec, self.tokenizer, self.path = fn, spec, tokenizer, path

    def __call__(self, seq: torch.Tensor, prompt_len: torch.Tensor) -> torch.Tensor:
        prompts, responses = split_texts(self.tokenizer, seq, prompt_len)
        try:
            out = torch.as_tensor(self.fn(prompts, responses), dtype=torch.float32).reshape(-1).to(seq.device)
        except (TypeError, ValueError) as exc:
            raise TrainingError(f"{self.path}: '{self.spec}'(prompts, responses) did not return a list of "
                                f"numbers: {exc}") from None
        if len(out) != len(seq):
            raise TrainingError(f"{self.path}: '{self.spec}' returned {len(out)} rewards for {len(seq)} responses")
        if not torch.isfinite(out).all():
            raise TrainingError(f"{self.path}: '{self.spec}' returned a non-finite reward")
        return out


class LearnedReward:
    """A reward model from an earlier ``reward`` stage, frozen: ``score`` of ``<cls> prompt response <sep>``."""

    def __init__(self, model: nn.Module, scorer, eos_id: int, pad_id: int):
        self.model, self.scorer, self.eos_id, self.pad_id = model.requires_grad_(False).eval(), scorer, eos_id, pad_id

    @torch.no_grad()
    def __call__(self, seq: torch.Tensor, prompt_len: torch.Tensor) -> torch.Tensor:
        self.model.to(seq.device)
        return self.scorer.score(with_eos(seq, prompt_len, self.eos_id, self.pad_id), self.model.encoder).float()


@register("objectives", "ppo")
class PPO(RolloutObjective):
    """PPO with a KL penalty to a frozen reference, for a causal encoder (``gpt``) on prompt rows
    (``x``, ``prompt_len``; the ``rlhf_toy`` dataset's ``prompts`` layout).

    reward_model: the earlier stage whose ``reward`` objective scores responses. reward_fn: instead, a
    rule-based reward ``"module:function"`` called as ``fn(prompts, responses) -> floats``. reference:
    the earlier stage whose language model is the frozen reference and the policy head's start (None:
    a frozen copy of this run's initial encoder and head). monitor: an optional ``"module:function"``
    logged as ``monitor_score`` but not optimised (e.g. the true labeler, to watch reward hacking).
    kl_coef: beta (the initial value if adaptive). kl_target: target summed KL per response for the
    adaptive controller (None: beta stays fixed). kl_horizon: the controller's horizon in sequences.
    gamma, lam: GAE discount and lambda. clip: policy ratio clip epsilon. value_clip: value clip.
    vf_coef: weight of the value loss. entropy_coef: weight of an entropy bonus. ppo_epochs: passes
    over each rollout. minibatch_size: rows per update (None: the whole rollout). response_tokens:
    the most ids sampled per response. temperature: sampling temperature. whiten_rewards: whiten the
    per-token rewards of each rollout (scale only, as TRL). eval_prompts: held-out prompts sampled by
    :meth:`evaluate`.
    """

    requires = (CAUSAL,)  # each token is predicted from the tokens before it
    reporters = ("ppo_curves",)

    def __init__(self, ctx: ObjectiveContext, *, reward_model: Optional[str] = "reward",
                 reward_fn: Optional[str] = None, reference: Optional[str] = "sft", monitor: Optional[str] = None,
                 kl_coef: NonNegative = 0.1, kl_target: Optional[Positive] = None, kl_horizon: Count = 10000,
                 gamma: Probability = 1.0, lam: Probability = 0.95, clip: NonNegative = 0.2, value_clip: NonNegative = 0.2,
                 vf_coef: NonNegative = 0.1, entropy_coef: NonNegative = 0.0, ppo_epochs: Count = 4,
                 minibatch_size: Optional[Count] = None, response_tokens: Count = 12, temperature: Positive = 1.0,
                 whiten_rewards: bool = False, eval_prompts: Count = 128):
        super().__init__(ctx.seed)
        enc = ctx.encoder
        if (reward_fn is None) == (reward_model is None):
            raise ConfigError(f"{ctx.path}.reward_fn", "give exactly one of reward_model (a stage) and reward_fn "
                                                       "(a 'module:function'); set the other to null")
        tok = ctx.info.tokenizer
        self.path, self.tokenizer = ctx.path, tok
        self.pad_id, self.eos_id = tok.pad_id, tok.sep_id
        if ctx.data is not None:
            if "prompt_len" not in ctx.data.train:
                raise ConfigError("data", "'ppo' needs prompt rows with a prompt_len column "
                                          "(e.g. data: {name: rlhf_toy, layout: prompts})")
            longest = max(int(ctx.data.train["prompt_len"].max()),
                          int(ctx.data.test["prompt_len"].max()) if len(ctx.data.test) else 0)
            if longest + response_tokens + 1 > enc.max_length:
                raise ConfigError(f"{ctx.path}.response_tokens",
                                  f"prompts of up to {longest} ids + {response_tokens} response ids + <sep> exceed "
                                  f"the context of {enc.max_length} positions; shorten the prompts or "
                                  f"response_tokens, or raise encoder.max_length")
        self.head = lm_head(ctx.encoder, transform=False)
        self.value_head = nn.Linear(ctx.encoder.out_dim, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self.kl = KLController(kl_coef, kl_target, kl_horizon)
        self.register_buffer("kl_coef", torch.tensor(float(kl_coef)))  # checkpointed, so resume keeps beta
        self.gamma, self.lam, self.clip, self.value_clip = gamma, lam, clip, value_clip
        self.vf_coef, self.entropy_coef, self.ppo_epochs = vf_coef, entropy_coef, ppo_epochs
        self.epochs = ppo_epochs  # passes over each rollout (RolloutObjective)
        self.minibatch_size, self.response_tokens, self.temperature = minibatch_size, response_tokens, temperature
        self.whiten_rewards, self.eval_prompts = whiten_rewards, eval_prompts  # self.seed: RolloutObjective
        self.monitor = RuleReward(load_callable(monitor, f"{ctx.path}.monitor"), monitor, tok,
                                  f"{ctx.path}.monitor") if monitor else None
        self._rule = RuleReward(load_callable(reward_fn, f"{ctx.path}.reward_fn"), reward_fn, tok,
                                f"{ctx.path}.reward_fn") if reward_fn else None
        self.reward_stage, self.reference_stage = reward_model, reference
        # frozen models live outside the module tree: not trained, not checkpointed (they are rebuilt
        # from their stages' run folders); a staged run loads them now, so a wrong stage or tokenizer
        # fails before training
        self.ref = FrozenReference(reference, ctx.stages, f"{ctx.path}.reference", tok, ctx.encoder, self.head)
        self._reward = None
        if ctx.stages and reward_model is not None:
            self._load_reward(ctx.stages, ctx.path)

    def _load_reward(self, stages: dict, path: str) -> None:
        model = load_stage(stages, self.reward_stage, f"{path}.reward_model", self.tokenizer, "reward model")
        scorer = next((o for o in model.objectives if hasattr(o, "score")), None)
        if scorer is None:
            raise ConfigError(f"{path}.reward_model", f"stage '{self.reward_stage}' holds no reward model "
                                                      f"(train it with the reward objective)")
        self._reward = LearnedReward(model, scorer, self.eos_id, self.pad_id)

    # ------------------------------------------------------------------ pieces
    def streams(self):
        return {"all": StreamSpec("all")}

    def policy(self, ids: torch.Tensor, encoder: nn.Module) -> tuple:
        """Token logits ``[B, T, V]`` and values ``[B, T]`` of the policy at every position."""
        h = encoder.forward_tokens(ids)
        return self.head(h, embedding_of(encoder)), self.value_head(h).squeeze(-1)

    def reward(self, seq: torch.Tensor, prompt_len: torch.Tensor) -> torch.Tensor:
        if self._rule is not None:
            return self._rule(seq, prompt_len)
        if self._reward is None:
            raise ConfigError(f"{self.path}.reward_model", f"the reward model stage '{self.reward_stage}' is not "
                                                           f"available (run this objective inside its staged recipe)")
        return self._reward(seq, prompt_len)

    def sample(self, prompt, prompt_len, encoder, generator=None, uniforms=None, width=None) -> torch.Tensor:
        was = encoder.training
        encoder.eval()
        seq = sample_responses(lambda ids: self.policy(ids, encoder)[0], prompt, prompt_len, self.response_tokens,
                               encoder.max_length, self.eos_id, self.pad_id, self.temperature, generator=generator,
                               step_fn=lm_stepper(encoder, self.head), uniforms=uniforms, width=width)
        encoder.train(was)
        return seq

    @torch.no_grad()
    def rollout(self, prompt: torch.Tensor, prompt_len: torch.Tensor, encoder: nn.Module) -> dict:
        """Sample, score and evaluate one batch of responses: everything the PPO updates need.

        Under ``torchrun`` each rank samples and scores its own prompts, with random numbers drawn for the
        global batch (a response does not depend on the number of processes), and the rollout is then
        gathered: whitening, the KL controller and the logged statistics see the global rollout, and every
        rank holds all of it (the checkpoint resumes at any number of processes)."""
        ref = self.ref.to(prompt.device)
        width = int(all_max(prompt_len.max())) + self.response_tokens  # one shape for every rank's rows
        g = self.rollout_generator(prompt.device)
        uniforms = for_my_rows(lambda N: torch.rand(N, width, device=prompt.device, generator=g), len(prompt))
        seq = self.sample(prompt, prompt_len, encoder, uniforms=uniforms, width=width)
        was = encoder.training
        encoder.eval()
        logits, values = self.policy(seq[:, :-1], encoder)
        encoder.train(was)
        logp = token_logprobs(logits, seq)
        ref_logp = token_logprobs(ref.logits(seq[:, :-1]), seq)
        scores = self.reward(seq, prompt_len)
        seq, prompt_len, logp, ref_logp, values, scores = (gather_rows(t) for t in (seq, prompt_len, logp, ref_logp,
                                                                                   values, scores))
        mask = response_mask(seq, prompt_len, self.pad_id, self.eos_id)
        beta = float(self.kl_coef)
        rewards, kl = kl_penalty_rewards(scores, logp, ref_logp, mask, beta)
        if self.whiten_rewards:
            rewards = masked_whiten(rewards, mask, shift_mean=False)
        values = values * mask
        adv, returns = gae(rewards, values, mask, self.gamma, self.lam)
        adv = masked_whiten(adv, mask)
        seq_kl = kl.sum(1).mean()
        stats = {"reward": scores.mean(), "kl": seq_kl, "kl_coef": torch.tensor(beta),
                 "response_length": mask.sum(1).float().mean(),
                 "empty_responses": (seq[torch.arange(len(seq)), prompt_len] == self.eos_id).float().mean()}
        if self.monitor is not None:
            stats["monitor_score"] = self.monitor(seq, prompt_len).mean()
        self.kl_coef.fill_(self.kl.update(float(seq_kl), len(seq)))
        return {"seq": seq, "mask": mask, "logp": logp, "values": values, "adv": adv, "returns": returns,
                "stats": stats}

    # ------------------------------------------------------------------ training
    def collect(self, batch, encoder):
        b = batch["all"]
        self.kl.value = float(self.kl_coef)  # after a resume, continue from the checkpointed beta
        return self.rollout(b["x"], b["prompt_len"], encoder)

    def update(self, r, stats, encoder):
        logits, values = self.policy(r["seq"][:, :-1], encoder)
        logp = token_logprobs(logits, r["seq"])
        # token means over the global minibatch: this rank's sums over the global count / the ranks (DDP
        # averages the ranks' gradients, the trainer their logged values)
        count = all_sum(r["mask"].sum().double()).float() / world_size()
        pg_loss, clipfrac = ppo_policy_loss(logp, r["logp"], r["adv"], r["mask"], self.clip, count)
        vf_loss = ppo_value_loss(values, r["values"], r["returns"], r["mask"], self.value_clip, count)
        ent = masked_mean(entropy(logits), r["mask"], count)
        loss = pg_loss + self.vf_coef * vf_loss - self.entropy_coef * ent
        approx_kl = 0.5 * masked_mean((logp - r["logp"]) ** 2, r["mask"], count)
        return Output(loss, {**stats, "entropy": ent.detach(), "clipfrac": clipfrac.detach(),
                             "value_loss": vf_loss.detach(), "policy_loss": pg_loss.detach(),
                             "approx_kl": approx_kl.detach()})

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, data, encoder, batch_size, device):
        """Reward, KL to the reference (and monitor score) of responses sampled for held-out prompts."""
        if len(data.test) == 0 or not self.ref.available:
            return {}
        n = min(len(data.test), self.eval_prompts)
        g = torch.Generator(device=device).manual_seed(self.seed)
        out = {"test_reward": 0.0, "test_kl": 0.0}
        if self.monitor is not None:
            out["test_monitor_score"] = 0.0
        ref = self.ref.to(device)
        for start in range(0, n, batch_size):
            rows = data.test.fetch(torch.arange(start, min(start + batch_size, n)))
            prompt, plen = rows["x"].to(device), rows["prompt_len"].to(device)
            seq = self.sample(prompt, plen, encoder, generator=g)
            mask = response_mask(seq, plen, self.pad_id, self.eos_id)
            logp = token_logprobs(self.policy(seq[:, :-1], encoder)[0], seq)
            kl = ((logp - token_logprobs(ref.logits(seq[:, :-1]), seq)) * mask).sum(1)
            w = len(seq) / n
            out["test_kl"] += float(kl.mean()) * w
            if self._rule is not None or self._reward is not None:
                out["test_reward"] += float(self.reward(seq, plen).mean()) * w
            if self.monitor is not None:
                out["test_monitor_score"] += float(self.monitor(seq, plen).mean()) * w
        return out

    def final_metrics(self) -> dict:
        return {"final_kl_coef": float(self.kl_coef)}
