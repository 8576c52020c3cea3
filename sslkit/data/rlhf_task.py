"""A toy RLHF task that runs offline, with a programmatic "human" labeler.

The language: lowercase words whose letters are vowels with probability ``vowel_rate`` (0.2, so
vowel-rich words are rare). A *prompt* is a word followed by ``>``; the demonstrated *response*
is a new word that starts with the prompt's last letter (a word-chain game), ended by ``<sep>``.

The labeler prefers vowel-rich responses: :func:`vowel_fraction` is the share of the response's
characters that are vowels (``0`` for an empty response). It is easy to check but the base model
rarely shows it, so a policy's gain is measured by the labeler itself, not only by the learned
reward model. The same function is the rule-based reward (:func:`vowel_reward`, named in a recipe
as ``sslkit.data.rlhf_task:vowel_reward``) and the benchmark's judge. :func:`follows_chain`
checks the demonstrated format (does the response start with the prompt's last letter?), a
diagnostic of drift away from the supervised behaviour.

Layouts of the dataset ``rlhf_toy`` (one per stage; the same ``seed`` gives the same prompts, and
the first ``test_prompts`` of them are held out in every layout):

* ``corpus``: pretraining text, ``x`` = ``<cls> word word ... <sep>`` (chained words, no prompts).
* ``sft``: demonstrations, ``x`` = ``<cls> prompt> response <sep>``; ``prompt_len`` = ids before the
  response.
* ``rankings``: ``ranked`` ``[N, K, T]`` = K responses per prompt, each laid out as in ``sft``,
  sorted best first by the labeler; ``scores`` ``[N, K]`` their labeler scores; ``x`` the best one.
  The responses are synthesised with vowel rates spread over ``[0, 1]`` so the comparisons cover
  the whole range the policy may reach.
* ``prompts``: ``x`` = ``<cls> prompt>`` then padding, ``prompt_len``; for PPO rollouts.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ..errors import ConfigError
from ..registry import register
from ..schema import AtLeastTwo, Count, Probability, build
from .base import DataInfo, Examples
from .text import TokenizerSpec

VOWELS = frozenset("aeiou")
LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))
_IS_VOWEL = np.array([c in VOWELS for c in LETTERS])
PROMPT_END = ">"


def vowel_fraction(response: str) -> float:
    """The labeler: share of ``response``'s characters that are vowels (``0.0`` when it is empty)."""
    return sum(c in VOWELS for c in response) / len(response) if response else 0.0


def vowel_reward(prompts, responses) -> list:
    """Rule-based reward for ``ppo`` (``reward_fn: sslkit.data.rlhf_task:vowel_reward``): the labeler's
    score of each response; ``prompts`` and ``responses`` are lists of decoded strings."""
    return [vowel_fraction(r) for r in responses]


def follows_chain(prompts, responses) -> list:
    """1.0 where the response starts with the last letter of its prompt's word (the format the
    demonstrations show), else 0.0."""
    out = []
    for p, r in zip(prompts, responses):
        word = p[:-len(PROMPT_END)] if p.endswith(PROMPT_END) else p
        out.append(float(bool(word) and bool(r) and r[0] == word[-1]))
    return out


def _words(rng: np.random.RandomState, n: int, lo: int, hi: int, rates: np.ndarray, first=None) -> list:
    """``n`` words of ``lo..hi`` letters, letter ``i`` of word ``j`` a vowel with probability ``rates[j]``
    (vowels and consonants uniform within their group); ``first`` fixes first letters."""
    lengths = rng.randint(lo, hi + 1, size=n)
    width = hi
    vowel = rng.rand(n, width) < rates[:, None]
    v_pick = rng.choice(LETTERS[_IS_VOWEL], size=(n, width))
    c_pick = rng.choice(LETTERS[~_IS_VOWEL], size=(n, width))
    grid = np.where(vowel, v_pick, c_pick)
    if first is not None:
        grid[:, 0] = first
    return ["".join(row[:k]) for row, k in zip(grid, lengths)]


def _rows(tok, texts: list, max_length: int, what: str) -> torch.Tensor:
    """``<cls> text`` ids right-padded to ``max_length`` (no ``<sep>``), or a clear error if too long."""
    out = torch.full((len(texts), max_length), tok.pad_id, dtype=torch.long)
    for i, t in enumerate(texts):
        ids = [tok.cls_id, *tok.encode(t, add_special=False)]
        if len(ids) > max_length:
            raise ValueError(f"a {what} of {len(ids)} ids does not fit max_length={max_length}; raise "
                             f"data.max_length or shorten the words")
        out[i, :len(ids)] = torch.tensor(ids)
    return out


def _pairs(tok, prompts: list, responses: list, max_length: int) -> tuple:
    """``<cls> prompt response <sep>`` rows and the number of ids before the response."""
    x = _rows(tok, [p + r for p, r in zip(prompts, responses)], max_length - 1, "prompt and response")
    x = torch.cat([x, torch.full((len(x), 1), tok.pad_id, dtype=torch.long)], 1)
    lengths = (x != tok.pad_id).sum(1)
    x[torch.arange(len(x)), lengths] = tok.sep_id
    prompt_len = torch.tensor([1 + len(tok.encode(p, add_special=False)) for p in prompts])
    return x, prompt_len


@register("datasets", "rlhf_toy")
def rlhf_toy(seed: int, *, layout: Literal["corpus", "sft", "rankings", "prompts"] = "sft",
             tokenizer: TokenizerSpec = "byte", max_length: Count = 32, prompts: Count = 2000, test_prompts: Count = 200,
             ranked: AtLeastTwo = 4, vowel_rate: Probability = 0.2, min_letters: Count = 3, max_letters: Count = 8):
    """The toy RLHF task (see the module docstring); the first ``test_prompts`` prompts are held out.

    layout: ``corpus`` (pretraining), ``sft`` (demonstrations), ``rankings`` (K responses per prompt
    ranked by the labeler) or ``prompts`` (for PPO). tokenizer: a registered tokenizer. max_length: ids
    per row. prompts: number of prompts (train + test). test_prompts: held-out prompts. ranked: K, the
    responses ranked per prompt. vowel_rate: the language's probability that a letter is a vowel.
    min_letters, max_letters: word lengths.
    """
    if not 0 < test_prompts < prompts:
        raise ConfigError("data.test_prompts", f"must be in (0, prompts={prompts}), got {test_prompts}")
    if not 1 <= min_letters <= max_letters:
        raise ConfigError("data.min_letters", f"need 1 <= min_letters <= max_letters, got {min_letters}, {max_letters}")
    tok = build("tokenizers", tokenizer, ["".join(LETTERS) + PROMPT_END + " "], path="data.tokenizer")
    # prompts come from their own random stream, so every layout holds out the same prompts
    words = _words(np.random.RandomState(seed), prompts, min_letters, max_letters, np.full(prompts, vowel_rate))
    prompt_text = [w + PROMPT_END for w in words]
    rng = np.random.RandomState(seed + 1)
    if layout == "corpus":
        n_words = max(1, (max_length - 2) // (max_letters + 1))
        first = None
        chains = []
        for _ in range(n_words):  # a loop over words per row (a handful), not over rows
            w = _words(rng, prompts, min_letters, max_letters, np.full(prompts, vowel_rate), first)
            first = np.array([s[-1] for s in w])
            chains.append(w)
        texts = [" ".join(ws) for ws in zip(*chains)]
        x, _ = _pairs(tok, [""] * prompts, texts, max_length)
        columns = {"x": x}
    elif layout == "prompts":
        x = _rows(tok, prompt_text, max_length, "prompt")
        columns = {"x": x, "prompt_len": (x != tok.pad_id).sum(1)}
    else:
        last = np.array([w[-1] for w in words])
        if layout == "sft":
            resp = _words(rng, prompts, min_letters + 1, max_letters + 2, np.full(prompts, vowel_rate), last)
            x, prompt_len = _pairs(tok, prompt_text, resp, max_length)
            columns = {"x": x, "prompt_len": prompt_len}
        else:
            rates = rng.rand(prompts, ranked)
            resp = [_words(rng, prompts, min_letters + 1, max_letters + 2, rates[:, k], last) for k in range(ranked)]
            scores = torch.tensor([[vowel_fraction(resp[k][i]) for k in range(ranked)] for i in range(prompts)])
            seqs = torch.stack([_pairs(tok, prompt_text, resp[k], max_length)[0] for k in range(ranked)], 1)
            order = torch.sort(scores, dim=1, descending=True, stable=True).indices
            ranked_x = seqs.gather(1, order[:, :, None].expand_as(seqs))
            columns = {"x": ranked_x[:, 0], "ranked": ranked_x, "scores": scores.gather(1, order),
                       "prompt_len": _pairs(tok, prompt_text, resp[0], max_length)[1]}
    test = {k: v[:test_prompts] for k, v in columns.items()}
    train = {k: v[test_prompts:] for k, v in columns.items()}
    info = DataInfo("text", (max_length,), 0, [], tokenizer=tok, name="rlhf_toy")
    return Examples(train, info, test_columns=test)
