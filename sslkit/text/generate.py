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


@torch.no_grad()
def generate(logits_fn: Callable, prompt: torch.Tensor, max_new_tokens: int, max_length: int,
             temperature: float = 1.0, top_k: Optional[int] = None, top_p: Optional[float] = None,
             greedy: bool = False, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Extend ``prompt`` ``[B, T0]`` by ``max_new_tokens`` ids. ``logits_fn(ids) -> [B, T, V]`` is the
    model; the context is cropped to its last ``max_length`` ids. ``greedy`` takes the arg-max."""
    if prompt.dim() != 2 or prompt.shape[1] == 0:
        raise ValueError("prompt must be a [B, T] tensor with at least one token")
    ids = prompt
    for _ in range(max_new_tokens):
        logits = logits_fn(ids[:, -max_length:])[:, -1, :].float()
        if greedy:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            logits = filter_logits(logits / max(temperature, 1e-6), top_k, top_p)
            nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)
        ids = torch.cat([ids, nxt], 1)
    return ids
