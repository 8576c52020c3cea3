"""Offline tokenizers. Every tokenizer shares the same five special tokens at ids 0-4,
so objectives can rely on ``pad_id``, ``cls_id``, ``sep_id``, ``mask_id`` and ``unk_id``."""
from __future__ import annotations

import json
from collections import Counter
from typing import Optional

import torch

from ..errors import ConfigError
from ..registry import register
from ..schema import Count

SPECIALS = ("<pad>", "<cls>", "<sep>", "<mask>", "<unk>")


class Tokenizer:
    """Base: maps text to ids and back. Subclasses define ``vocab`` (list of token strings),
    ``_encode(text) -> list[int]`` and ``_decode(ids) -> str``."""

    pad_id, cls_id, sep_id, mask_id, unk_id = range(5)
    name = "tokenizer"

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def special_ids(self) -> tuple:
        return tuple(range(len(SPECIALS)))

    def encode(self, text: str, add_special: bool = True) -> list:
        ids = self._encode(text)
        return [self.cls_id, *ids, self.sep_id] if add_special else ids

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids if int(i) >= len(SPECIALS)]
        return self._decode(ids)

    def encode_batch(self, texts, max_length: int) -> torch.Tensor:
        """``[N, max_length]`` ids: ``<cls> text <sep>`` truncated to fit, padded with ``<pad>``."""
        out = torch.full((len(texts), max_length), self.pad_id, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = self._encode(text)[: max_length - 2]
            row = [self.cls_id, *ids, self.sep_id]
            out[i, : len(row)] = torch.tensor(row)
        return out

    def state(self) -> dict:
        """Plain data identifying this tokenizer (stored in checkpoints to detect mismatches)."""
        return {"name": self.name, "vocab": list(self.vocab)}


def tokenizer_mismatch(theirs, tokenizer) -> str:
    """Why ids made by the tokenizer whose :meth:`Tokenizer.state` is ``theirs`` (None: no tokenizer) mean
    other tokens than ``tokenizer``'s ids (None: no tokenizer), or ``""`` when they are the same.
    A word or bpe vocabulary is fitted on a dataset's training rows, so two vocabularies of one size can still
    put other words at the same ids: an embedding table trained on one reads the other as noise."""
    ours = tokenizer.state() if tokenizer is not None else None
    if theirs == ours:
        return ""

    def describe(state):
        return f"{state['name']}, {len(state['vocab'])} ids" if state else "no tokenizer"

    same_size = theirs and ours and len(theirs["vocab"]) == len(ours["vocab"])
    return f"{describe(theirs)} there, {describe(ours)} here" + (", the same size but other tokens at the same ids"
                                                                 if same_size else "")


def recorded_tokenizer(state: dict) -> Optional[dict]:
    """The :meth:`Tokenizer.state` a checkpoint recorded (JSON under ``tokenizer``), or None: a run without
    text, or a checkpoint older than the record."""
    return json.loads(state["tokenizer"]) if state.get("tokenizer") else None


def refuse_other_tokenizer(recorded: Optional[dict], tokenizer, path: str, source: str) -> None:
    """ConfigError at ``path`` when weights from ``source`` were trained on other ids than ``tokenizer``'s:
    ``recorded`` is the :meth:`Tokenizer.state` its checkpoint or export recorded (None: it recorded none,
    as checkpoints older than the record do; nothing to compare)."""
    if recorded is None:
        return
    why = tokenizer_mismatch(recorded, tokenizer)
    if why:
        raise ConfigError(path, f"{source} was trained on the ids of another tokenizer ({why}): its embeddings "
                                f"would stand for other tokens. Build this run's data with the source run's "
                                f"data.tokenizer, text and split (seed, data.test_size or data.test_fraction): a "
                                f"word, char or bpe vocabulary is fitted on the training rows")


@register("tokenizers", "byte")
class ByteTokenizer(Tokenizer):
    """UTF-8 bytes: 256 byte tokens after the 5 specials (vocabulary 261). Needs no training."""

    name = "byte"

    def __init__(self, texts=()):
        self.vocab = list(SPECIALS) + [f"<0x{b:02X}>" for b in range(256)]

    def _encode(self, text):
        return [b + len(SPECIALS) for b in text.encode("utf-8")]

    def _decode(self, ids):
        return bytes(i - len(SPECIALS) for i in ids).decode("utf-8", errors="replace")


@register("tokenizers", "char")
class CharTokenizer(Tokenizer):
    """Characters seen at least ``min_freq`` times in the corpus; others map to ``<unk>``.

    min_freq: minimum count for a character to get its own id.
    """

    name = "char"

    def __init__(self, texts=(), *, min_freq: Count = 1):
        counts = Counter()
        for t in texts:
            counts.update(t)
        chars = sorted(c for c, n in counts.items() if n >= min_freq)
        self.vocab = list(SPECIALS) + chars
        self._ids = {c: i for i, c in enumerate(self.vocab)}

    def _encode(self, text):
        return [self._ids.get(c, self.unk_id) for c in text]

    def _decode(self, ids):
        return "".join(self.vocab[i] for i in ids)
