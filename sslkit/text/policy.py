"""A causal language model as a *policy* over response tokens: per-token log-probabilities of a
response given its prompt, sampling responses to right-padded prompts of different lengths, and
loading an earlier stage's language model or reward model as a frozen copy.

Layout shared by ``sft``, ``ppo`` and ``dpo``: a row is ``<cls> prompt response <sep>`` then padding;
``prompt_len`` counts the ids before the response. The action at column ``c`` (``c >= prompt_len``)
is predicted from the hidden state at ``c - 1``, so per-token quantities are ``[B, T - 1]`` tensors
aligned with ``seq[:, 1:]``.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .generate import NextTokenLogits, next_tokens
from .lm_head import LM_HEADS, embedding_of
from .tokenizers import tokenizer_mismatch


def response_mask(seq: torch.Tensor, prompt_len: torch.Tensor, pad_id: int, eos_id: Optional[int] = None) -> torch.Tensor:
    """``[B, T - 1]`` bool: target ``seq[:, 1:]`` is a response token. With ``eos_id`` a response ends at its
    first ``eos_id`` (included), which also tells a final eos from padding when they share an id (GPT-2:
    pad = eos); without it, every non-pad id after the prompt counts."""
    col = torch.arange(1, seq.shape[1], device=seq.device)
    target = seq[:, 1:]
    resp = col[None, :] >= prompt_len[:, None]
    if eos_id is None:
        return resp & (target != pad_id)
    eos = resp & (target == eos_id)
    after_eos = (eos.long().cumsum(1) - eos.long()) > 0
    return resp & ~after_eos & ((target != pad_id) | eos)


def row_lengths(seq: torch.Tensor, pad_id: int) -> torch.Tensor:
    """``[B]`` columns up to the last non-pad id of each right-padded row (a leading bos equal to pad, as
    in GPT-2, still counts)."""
    real = seq != pad_id
    return torch.where(real.any(1), seq.shape[1] - real.flip(1).long().argmax(1), torch.zeros_like(real[:, 0], dtype=torch.long))


def token_logprobs(logits: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
    """``log p(seq[:, t+1] | seq[:, :t+1])`` for ``logits = model(seq[:, :-1])`` -> ``[B, T - 1]``."""
    return torch.gather(F.log_softmax(logits.float(), -1), 2, seq[:, 1:, None]).squeeze(2)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-position entropy of the softmax of ``logits`` (``[B, T]``)."""
    logp = F.log_softmax(logits.float(), -1)
    return -(logp.exp() * logp).sum(-1)


@torch.no_grad()
def sample_responses(logits_fn: Callable, prompt: torch.Tensor, prompt_len: torch.Tensor, max_new_tokens: int,
                     max_length: int, eos_id: int, pad_id: int, temperature: float = 1.0,
                     top_k: Optional[int] = None, top_p: Optional[float] = None,
                     generator: Optional[torch.Generator] = None, step_fn: Optional[Callable] = None,
                     uniforms: Optional[torch.Tensor] = None, width: Optional[int] = None) -> torch.Tensor:
    """Sample a response of at most ``max_new_tokens`` ids after each right-padded prompt (``prompt_len``
    real ids per row), stopping a row at ``eos_id``; tokens after it are ``pad_id``. Returns
    ``[B, max(prompt_len) + max_new_tokens]``. Rows of different prompt lengths are batched column by
    column: at column ``c`` a row still inside its prompt keeps its prompt id, the others write their
    sample, so every row is contiguous (no padding inside, no attention mask) and ``step_fn`` (the model's
    cached step, :func:`sslkit.text.generate.lm_stepper`) reads one new column per step. ``<pad>`` is
    never sampled, unless it is also the eos (GPT-2 style tokenizers). ``uniforms`` (``[B, columns]`` in
    [0, 1)): the random numbers of the samples, column ``c`` of a row drawing with ``uniforms[:, c]``
    (:func:`sslkit.text.generate.next_tokens`) instead of ``generator``. ``width``: the columns of the result
    when wider than ``max(prompt_len) + max_new_tokens`` (a shape shared by the ranks of a run)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens} (it would generate nothing)")
    if int(prompt_len.min()) < 1:
        raise ValueError("every prompt needs at least one id (e.g. <cls>)")
    longest = int(prompt_len.max())
    if longest + max_new_tokens > max_length:
        raise ValueError(f"a prompt of {longest} ids plus {max_new_tokens} new ids exceeds the model's context of "
                         f"{max_length} positions")
    B, dev = len(prompt), prompt.device
    seq = torch.full((B, max(width or 0, longest + max_new_tokens)), pad_id, dtype=torch.long, device=dev)
    seq[:, :prompt.shape[1]] = prompt[:, :seq.shape[1]]
    prompt_len = prompt_len.to(dev)
    produced = torch.zeros(B, dtype=torch.long, device=dev)
    done = torch.zeros(B, dtype=torch.bool, device=dev)
    next_logits = NextTokenLogits(logits_fn, step_fn, max_length)
    for col in range(int(prompt_len.min()), seq.shape[1]):
        logits = next_logits(seq, col)
        if pad_id != eos_id:
            logits[:, pad_id] = float("-inf")  # a sampled <pad> would read as the end of the row
        nxt = next_tokens(logits, temperature, top_k, top_p, False, generator,
                          None if uniforms is None else uniforms[:, col])
        writing = (col >= prompt_len) & (produced < max_new_tokens)
        seq[:, col] = torch.where(writing, torch.where(done, torch.full_like(nxt, pad_id), nxt), seq[:, col])
        done |= writing & (nxt == eos_id)
        produced += writing.long()
        if bool((done | (produced >= max_new_tokens)).all()):
            break
    return seq


def split_texts(tokenizer, seq: torch.Tensor, prompt_len: torch.Tensor) -> tuple:
    """Decoded ``(prompts, responses)`` of response rows (specials such as ``<sep>`` dropped)."""
    prompts = [tokenizer.decode(r[:int(n)].tolist()) for r, n in zip(seq, prompt_len)]
    responses = [tokenizer.decode(r[int(n):].tolist()) for r, n in zip(seq, prompt_len)]
    return prompts, responses


class FrozenLM(nn.Module):
    """A frozen causal language model (encoder + tied head) loaded from an earlier stage, e.g. the
    reference policy of ``ppo``/``dpo``. ``logits(ids) -> [B, T, V]``."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head
        self.requires_grad_(False).eval()

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder.forward_tokens(ids), embedding_of(self.encoder))


class FrozenReference:
    """The frozen reference policy ``pi_ref`` of ``ppo`` and ``dpo``, held outside the module tree (not
    trained, not checkpointed: it is rebuilt from its stage's run folder, or snapshotted again from the
    same initial weights).

    stage: the earlier stage whose language model is the reference; its head also becomes the policy's
    starting ``head``. None: a snapshot of the initial ``encoder`` and ``head`` (a copy, because the policy
    trains the originals). stages: run folders of the earlier stages (empty outside a staged run: the
    reference is then unavailable until used, when :meth:`to` says so). path: the recipe key for errors.
    A frozen encoder (e.g. ``hf`` with ``freeze: true``) is shared with the policy rather than copied.
    """

    def __init__(self, stage: Optional[str], stages: dict, path: str, tokenizer, encoder: nn.Module,
                 head: nn.Module):
        self.stage, self.path, self.lm = stage, path, None
        if stage is None:
            # one memo: a head that refers to its encoder (the encoder's own LM head) refers to the same copy;
            # a frozen encoder is put in the memo as itself, so it is shared, not copied
            memo = {} if any(p.requires_grad for p in encoder.parameters()) else {id(encoder): encoder}
            self.lm = FrozenLM(copy.deepcopy(encoder, memo), copy.deepcopy(head, memo))
        elif stages:
            self.lm = frozen_lm(stages, stage, path, tokenizer)
            head.load_state_dict(self.lm.head.state_dict())  # the policy starts with the reference's head

    @property
    def available(self) -> bool:
        return self.lm is not None

    def to(self, device) -> FrozenLM:
        """The reference model on ``device``."""
        if self.lm is None:
            raise ConfigError(self.path, f"the reference stage '{self.stage}' is not available (run this "
                                         f"objective inside its staged recipe)")
        return self.lm.to(device)


def load_stage(stages: dict, name: str, path: str, tokenizer, what: str):
    """``load_run`` of the earlier stage ``name`` after checking it exists and that its tokenizer is
    this run's (a reward model or reference fed other ids would silently score garbage)."""
    from ..runner import load_run

    if name not in stages:
        raise ConfigError(path, f"no earlier stage '{name}' to load the {what} from "
                                f"(earlier stages: {', '.join(stages) or 'none'})")
    run_dir = Path(stages[name])
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        raise ConfigError(path, f"stage '{name}' has not finished ({run_dir} has no checkpoint); run it first")
    cfg, data, model = load_run(run_dir)
    theirs = data.info.tokenizer.state() if data.info.tokenizer is not None else None
    why = tokenizer_mismatch(theirs, tokenizer)
    if why:
        raise ConfigError(path, f"the {what} of stage '{name}' uses a different tokenizer than this stage "
                                f"({why}); train both with the same data.tokenizer")
    return model


def frozen_lm(stages: dict, name: str, path: str, tokenizer) -> FrozenLM:
    """The language model (encoder + the first objective's tied ``head``) of stage ``name``, frozen."""
    model = load_stage(stages, name, path, tokenizer, "language model")
    for obj in model.objectives:
        if isinstance(getattr(obj, "head", None), LM_HEADS) and hasattr(model.encoder, "forward_tokens"):
            return FrozenLM(model.encoder, obj.head)
    raise ConfigError(path, f"stage '{name}' holds no language model (train it with clm or sft)")
