"""Decoding from an autoregressive language model: greedy, temperature, top-k and nucleus (top-p)
sampling, batched over prompts (no loop over rows)."""
from __future__ import annotations

from typing import Callable, Optional

import torch


def filter_logits(logits: torch.Tensor, top_k: Optional[int] = None, top_p: Optional[float] = None) -> torch.Tensor:
    """Set to ``-inf`` every logit outside the ``top_k`` largest and outside the smallest set of tokens
    whose probability mass reaches ``top_p`` (Holtzman et al., 2020). The most likely token always stays."""
    logits = logits.clone()
    if top_k is not None and top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits[logits < kth] = float("-inf")
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the mass of the strictly more likely tokens already reaches top_p
        drop_sorted = (probs.cumsum(-1) - probs) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits[drop] = float("-inf")
    return logits


def lm_stepper(encoder, head) -> Optional[Callable]:
    """``step(ids, cache) -> (logits [B, 1, V], cache)``: the next-token logits after ``ids``, the ids that
    follow those in ``cache``, from ``encoder`` + ``head`` decoding with the encoder's key/value cache
    (capability ``KV_CACHE``); None when the encoder has no cache (callers then recompute the prefix)."""
    from ..encoders.capabilities import KV_CACHE
    from .lm_head import embedding_of

    if not KV_CACHE.met_by(encoder):
        return None

    def step(ids, cache):
        h, cache = encoder.forward_tokens_cached(ids, cache)
        return head(h[:, -1:], embedding_of(encoder)), cache  # only the last position is sampled from

    return step


class NextTokenLogits:
    """The logits of the token at column ``end`` of a growing ``[B, T]`` sequence, given ``seq[:, :end]``.

    With ``step_fn`` (see :func:`lm_stepper`) only the columns added since the last call go through the
    model, the rest come from its key/value cache; without it, or once the sequence is longer than
    ``max_length`` (the context then slides, which a cache cannot), the model reads the whole window.
    Columns already read must not change afterwards.
    """

    def __init__(self, logits_fn: Callable, step_fn: Optional[Callable], max_length: int):
        self.logits_fn, self.step_fn, self.max_length = logits_fn, step_fn, max_length
        self.cache, self.read = None, 0

    def __call__(self, seq: torch.Tensor, end: int) -> torch.Tensor:
        if self.step_fn is None or end > self.max_length:
            return self.logits_fn(seq[:, max(0, end - self.max_length):end])[:, -1].float()
        logits, self.cache = self.step_fn(seq[:, self.read:end], self.cache)
        self.read = end
        return logits[:, -1].float()


def next_tokens(logits: torch.Tensor, temperature: float, top_k: Optional[int], top_p: Optional[float],
                greedy: bool, generator: Optional[torch.Generator],
                uniform: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``[B]`` ids drawn from ``[B, V]`` logits: the arg-max (``greedy``), else a sample after temperature
    and top-k/top-p filtering; with ``uniform`` (``[B]`` draws in [0, 1)) the sample is the inverse CDF at
    those draws (the same distribution, from random numbers the caller chose)."""
    if greedy:
        return logits.argmax(-1)
    probs = filter_logits(logits / max(temperature, 1e-6), top_k, top_p).softmax(-1)
    if uniform is not None:
        cdf = probs.cumsum(-1)
        u = uniform.to(cdf.dtype)[:, None] * cdf[:, -1:]  # scaled to the sum: rounding leaves no gap at 1
        # the first id whose cumulative probability passes u; never one of probability 0 (filtered, <pad>)
        return ((cdf > u) & (probs > 0)).to(torch.int8).argmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


@torch.no_grad()
def generate(logits_fn: Callable, prompt: torch.Tensor, max_new_tokens: int, max_length: int,
             temperature: float = 1.0, top_k: Optional[int] = None, top_p: Optional[float] = None,
             greedy: bool = False, generator: Optional[torch.Generator] = None,
             step_fn: Optional[Callable] = None) -> torch.Tensor:
    """Extend ``prompt`` ``[B, T0]`` by ``max_new_tokens`` ids. ``logits_fn(ids) -> [B, T, V]`` is the
    model; the context is cropped to its last ``max_length`` ids. ``greedy`` takes the arg-max.
    ``step_fn``: the model's cached decoding step (:func:`lm_stepper`); same tokens, less compute."""
    if prompt.dim() != 2 or prompt.shape[1] == 0:
        raise ValueError("prompt must be a [B, T] tensor with at least one token")
    ids = torch.cat([prompt, prompt.new_zeros(len(prompt), max_new_tokens)], 1)
    next_logits = NextTokenLogits(logits_fn, step_fn, max_length)
    for end in range(prompt.shape[1], ids.shape[1]):
        ids[:, end] = next_tokens(next_logits(ids, end), temperature, top_k, top_p, greedy, generator)
    return ids
