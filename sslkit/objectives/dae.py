"""Denoising auto-encoder, BART (Lewis et al., 2020): corrupt a row with a composition of the five
noising functions of :mod:`sslkit.text.noising`, encode the corrupted ids, and decode the original
with teacher forcing:  L = -(1/N) sum_t log p(x_t | x_<t, noise(x))."""
from __future__ import annotations


import torch

from ..distributed import on_global_rows
from ..encoders.capabilities import ENCODER_DECODER
from ..registry import register
from ..schema import Positive, Probability
from ..text.lm_head import IGNORE, TiedLMHead, embedding_of
from ..text.noising import bart_noise, sentence_end_ids
from .base import ObjectiveContext
from .token_prediction import TokenPrediction

EVAL_SEED = 1357


@register("objectives", "dae")
class DenoisingAutoencoder(TokenPrediction):
    """BART reconstruction loss of a ``seq2seq`` encoder. Defaults follow BART's final setting: text
    infilling of 30 % of the tokens with Poisson(3) spans plus sentence permutation of every row.
    Reports ``test_reconstruction_perplexity`` and ``test_reconstruction_accuracy`` (teacher-forced).

    mask_prob: token masking probability. delete_prob: token deletion probability. infill_prob: share
    of tokens covered by infilled spans. poisson_lambda: mean span length. permute_prob: probability
    that a row's sentences are shuffled. rotate_prob: probability that a row is rotated.
    """

    requires = (ENCODER_DECODER,)  # the corrupted text is reconstructed by a decoder
    metric, eval_seed = "reconstruction", EVAL_SEED

    def __init__(self, ctx: ObjectiveContext, *, mask_prob: Probability = 0.0, delete_prob: Probability = 0.0,
                 infill_prob: Probability = 0.3, poisson_lambda: Positive = 3.0, permute_prob: Probability = 1.0,
                 rotate_prob: Probability = 0.0):
        super().__init__()
        self.tokenizer = ctx.info.tokenizer
        self.noise = dict(permute=permute_prob, mask=mask_prob, delete=delete_prob, infill_p=infill_prob,
                          lam=poisson_lambda, rotate_p=rotate_prob)
        self.register_buffer("end_ids", sentence_end_ids(self.tokenizer), persistent=False)
        self.head = TiedLMHead(ctx.encoder.out_dim, self.tokenizer.vocab_size, transform=False)

    def predictions(self, x, encoder, g=None, train=False):
        noise = lambda ids: bart_noise(ids, self.tokenizer, self.end_ids, g=g, **self.noise)  # noqa: E731
        # training noise is drawn for the global batch's rows (the same at any number of processes)
        source = on_global_rows(noise, x) if train else noise(x)
        memory = encoder.forward_tokens(source)
        bos = torch.full_like(x[:, :1], self.tokenizer.cls_id)  # <cls> starts every decoded sequence
        h = encoder.decode(torch.cat([bos, x[:, :-1]], 1), memory, source)
        return self.head(h, embedding_of(encoder)), x.masked_fill(x == self.tokenizer.pad_id, IGNORE)
