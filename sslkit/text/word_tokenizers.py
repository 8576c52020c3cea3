"""Word-level and trained byte-level BPE tokenizers (offline; both fitted on the corpus they are built
from, with the five shared specials at ids 0-4).

``bpe`` uses the Hugging Face ``tokenizers`` library, an optional extra (``pip install tokenizers``).
"""
from __future__ import annotations

import re
from collections import Counter

import torch

from ..errors import ConfigError
from ..registry import register
from ..schema import Count
from .tokenizers import SPECIALS, Tokenizer

WORD = re.compile(r"\w+|[^\w\s]")


@register("tokenizers", "word")
class WordTokenizer(Tokenizer):
    """Words and single punctuation marks (regex ``\\w+|[^\\w\\s]``); the ``vocab_size`` most frequent ones
    seen at least ``min_freq`` times get ids, the rest map to ``<unk>``. Decoding joins tokens with
    spaces (whitespace is not kept).

    vocab_size: largest vocabulary, specials included. min_freq: minimum count. lowercase: fold case first.
    """

    name = "word"

    def __init__(self, texts=(), *, vocab_size: Count = 8000, min_freq: Count = 2, lowercase: bool = False):
        if vocab_size <= len(SPECIALS):
            raise ConfigError("data.tokenizer.vocab_size", f"must exceed the {len(SPECIALS)} special tokens")
        self.lowercase = lowercase
        counts = Counter()
        for t in texts:
            counts.update(self._split(t))
        words = [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_freq]
        self.vocab = list(SPECIALS) + words[: vocab_size - len(SPECIALS)]
        self._ids = {w: i for i, w in enumerate(self.vocab)}

    def _split(self, text):
        return WORD.findall(text.lower() if self.lowercase else text)

    def _encode(self, text):
        return [self._ids.get(w, self.unk_id) for w in self._split(text)]

    def _decode(self, ids):
        return " ".join(self.vocab[i] for i in ids)

    def token_kinds(self) -> torch.Tensor:
        """Every word token starts a word (see :func:`sslkit.text.masking.token_kinds`)."""
        kinds = torch.ones(self.vocab_size, dtype=torch.long)
        kinds[: len(SPECIALS)] = 2
        return kinds


@register("tokenizers", "bpe")
class BPETokenizer(Tokenizer):
    """Byte-level BPE (GPT-2 style) trained on the corpus with the ``tokenizers`` library: any text
    encodes without ``<unk>``; merges are learnt up to ``vocab_size`` tokens.

    vocab_size: target vocabulary size, specials included. min_frequency: minimum pair count to merge.
    """

    name = "bpe"

    def __init__(self, texts=(), *, vocab_size: Count = 2000, min_frequency: Count = 2):
        try:
            from tokenizers import Tokenizer as HFTokenizer, decoders, models, pre_tokenizers, trainers
        except ImportError:
            raise ConfigError("data.tokenizer.name", "'bpe' needs the optional 'tokenizers' package: "
                                                     "pip install tokenizers (or use byte, char or word)") from None
        texts = list(texts)
        if not texts:
            raise ConfigError("data.tokenizer.name", "'bpe' must be trained on a corpus, and none was given")
        tok = HFTokenizer(models.BPE(unk_token=None))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIALS),
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(texts, trainer)
        vocab = tok.get_vocab()
        if [vocab.get(s) for s in SPECIALS] != list(range(len(SPECIALS))):
            raise RuntimeError("the BPE trainer did not put the special tokens at ids 0-4")
        self.vocab = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
        self._tok = tok

    def _encode(self, text):
        return self._tok.encode(text, add_special_tokens=False).ids

    def _decode(self, ids):
        return self._tok.decode(list(ids), skip_special_tokens=True)
