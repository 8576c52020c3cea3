"""Masked language modelling, BERT/RoBERTa: dynamic masking of every batch (a new mask each time a
row is seen), 15 % of the tokens with the 80/10/10 rule, loss on the selected tokens only:
L = -(1/|M|) sum_{t in M} log p(x_t | x_masked)."""
from __future__ import annotations

from abc import abstractmethod


import torch

from ..distributed import on_global_rows
from ..encoders.capabilities import BIDIRECTIONAL
from ..errors import ConfigError
from ..registry import register
from ..schema import OpenProbability, Probability
from ..text.lm_head import IGNORE, embedding_of, lm_head
from ..text.masking import mlm_mask, token_kinds
from .base import ObjectiveContext
from .token_prediction import TokenPrediction

EVAL_SEED = 1234  # the test split is masked the same way at every evaluation, so curves are comparable


class MaskedObjective(TokenPrediction):
    """Shared by ``mlm`` and ``span``: a tied head over masked positions, and masked-token accuracy and
    perplexity on the test split (``test_masked_accuracy``, ``test_masked_perplexity``)."""

    requires = (BIDIRECTIONAL,)  # masked tokens are predicted from both sides
    metric, eval_seed = "masked", EVAL_SEED

    def __init__(self, ctx: ObjectiveContext, name: str):
        super().__init__()
        self.tokenizer = ctx.info.tokenizer
        self.register_buffer("kinds", token_kinds(self.tokenizer), persistent=False)
        self.head = lm_head(ctx.encoder)

    @abstractmethod
    def corrupt(self, x: torch.Tensor, generator=None) -> tuple:  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, inputs, labels, encoder):
        """Logits at the labelled positions only (saves the vocabulary projection elsewhere)."""
        h = encoder.forward_tokens(inputs)
        keep = labels != IGNORE
        return self.head(h[keep], embedding_of(encoder)), labels[keep]

    def predictions(self, x, encoder, generator=None, train=False):
        if train:  # drawn for the global batch's rows (the same masks at any number of processes)
            return self.predict(*on_global_rows(lambda ids: self.corrupt(ids, generator)[:2], x), encoder)
        return self.predict(*self.corrupt(x, generator)[:2], encoder)


@register("objectives", "mlm")
class MaskedLM(MaskedObjective):
    """BERT masked-language-model loss ``-(1/|M|) sum_{t in M} log p(x_t | x~)`` over the selected
    positions ``M``, with a fresh mask for every batch (RoBERTa's dynamic masking).

    prob: share of non-special tokens selected (0.15). mask_ratio: selected tokens replaced by
    ``<mask>`` (0.8). random_ratio: replaced by a random token (0.1); the rest stay unchanged.
    whole_word: select whole words (every token of a chosen word) instead of single tokens.
    """

    def __init__(self, ctx: ObjectiveContext, *, prob: OpenProbability = 0.15, mask_ratio: Probability = 0.8,
                 random_ratio: Probability = 0.1, whole_word: bool = False):
        super().__init__(ctx, "mlm")
        if mask_ratio < 0 or random_ratio < 0 or mask_ratio + random_ratio > 1:
            raise ConfigError(f"{ctx.path}.mask_ratio", f"mask_ratio + random_ratio must be in [0, 1], "
                                                        f"got {mask_ratio} + {random_ratio}")
        self.prob, self.mask_ratio, self.random_ratio, self.whole_word = prob, mask_ratio, random_ratio, whole_word

    def corrupt(self, x, generator=None):
        return mlm_mask(x, self.tokenizer, self.prob, self.mask_ratio, self.random_ratio, self.whole_word,
                        self.kinds, generator)
