"""Replaced-token detection, ELECTRA (Clark et al., 2020).

A small generator is trained as a masked LM; its samples fill the masked positions, and the
discriminator (the recipe's encoder, the one kept for fine-tuning) predicts for every real token
whether it was replaced:

    L = L_MLM(generator) + disc_weight * L_disc,
    L_disc = -(1/n) sum_t [ r_t log D(x~)_t + (1 - r_t) log(1 - D(x~)_t) ],  r_t = [x~_t != x_t]

with ``disc_weight = 50``. A sampled token equal to the original counts as original (r_t = 0).
Sampling is not differentiated through, so both parts minimise their own loss in one step; the
generator shares the discriminator's token embeddings (projected to its width), as in ELECTRA.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.stream import StreamSpec
from ..distributed import for_my_rows, on_global_rows, sum_over_ranks
from ..encoders.capabilities import BIDIRECTIONAL
from ..encoders.transformer import Block, _init, padding_mask
from ..errors import ConfigError
from ..registry import register
from ..schema import Count, NonNegative, OpenProbability, Positive, Probability
from ..text.generate import next_tokens
from ..text.lm_head import embedding_of, token_accuracy, token_loss
from ..text.masking import mlm_mask
from ..data.batches import seeded_batches
from ..text.token_scores import TokenScores
from .base import ObjectiveContext, Objective, Output

EVAL_SEED = 2468


class SmallGenerator(nn.Module):
    """A narrow bidirectional Transformer MLM that reads and predicts through the discriminator's
    token embedding ``E`` (``[V, D]``): ``logits = up(blocks(down(E[x]) + pos)) E^T + b``.

    dim: discriminator width D. width: generator width. depth, heads: its blocks. max_length: positions.
    """

    def __init__(self, dim: int, width: int, depth: int, heads: int, max_length: int, vocab_size: int, pad_id: int):
        super().__init__()
        self.pad_id = pad_id
        self.down, self.up = nn.Linear(dim, width), nn.Linear(width, dim)
        self.pos = nn.Embedding(max_length, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.ln, self.ln_out = nn.LayerNorm(width), nn.LayerNorm(dim)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.apply(_init)

    def forward(self, ids: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        x = self.down(F.embedding(ids, embedding)) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        mask = padding_mask(ids, self.pad_id)
        for block in self.blocks:
            x = block(x, mask)
        return F.linear(self.ln_out(self.up(F.gelu(self.ln(x)))), embedding, self.bias)


@register("objectives", "rtd")
class ReplacedTokenDetection(Objective):
    """ELECTRA: generator MLM loss + ``disc_weight`` x per-token binary cross-entropy of the discriminator
    (the encoder) on "was this token replaced?". Reports ``rtd_accuracy`` / ``test_rtd_accuracy`` (all
    real tokens), ``test_replaced_recall`` and the generator's ``test_masked_accuracy``.

    prob: share of tokens masked for the generator (0.15). mask_ratio: of those, replaced by ``<mask>``
    in the generator's input (ELECTRA's code: 0.85, the rest kept). disc_weight: lambda (50).
    gen_width: generator width (default: a quarter of the encoder's). gen_depth, gen_heads: its blocks.
    temperature: generator sampling temperature.
    """

    requires = (BIDIRECTIONAL,)  # the discriminator judges each token from both sides

    def __init__(self, ctx: ObjectiveContext, *, prob: OpenProbability = 0.15, mask_ratio: Probability = 0.85,
                 disc_weight: NonNegative = 50.0, gen_width: Count | None = None, gen_depth: Count = 2, gen_heads: Count = 1,
                 temperature: Positive = 1.0):
        super().__init__()
        enc = ctx.encoder
        width = gen_width or max(enc.out_dim // 4, 8)
        if width % gen_heads:
            raise ConfigError(f"{ctx.path}.gen_heads", f"generator width {width} is not divisible by {gen_heads}")
        self.tokenizer = ctx.info.tokenizer
        self.prob, self.mask_ratio, self.disc_weight, self.temperature = prob, mask_ratio, disc_weight, temperature
        self.generator = SmallGenerator(enc.out_dim, width, gen_depth, gen_heads, enc.max_length,
                                        enc.token_embedding().num_embeddings, self.tokenizer.pad_id)
        self.disc = nn.Linear(enc.out_dim, 1)

    def streams(self):
        return {"all": StreamSpec("all")}

    def _run(self, x, encoder, generator=None):
        """Training (no ``generator``) draws the masks and the sampled replacements for the global batch's
        rows, so they do not depend on the number of processes; evaluation draws from ``generator``."""
        def mask(ids):
            return mlm_mask(ids, self.tokenizer, self.prob, self.mask_ratio, 0.0, generator=generator)

        train = generator is None
        inputs, labels, selected = on_global_rows(mask, x) if train else mask(x)
        emb = embedding_of(encoder)
        gen_logits = self.generator(inputs, emb)[selected]
        target = labels[selected]
        with torch.no_grad():  # sampling is not back-propagated through (ELECTRA)
            # one uniform per position of every row, drawn for the global batch; a sample at the selected ones
            u = for_my_rows(lambda N: torch.rand(N, x.shape[1], device=x.device), len(x))[selected] if train else None
            sampled = (next_tokens(gen_logits.detach().float(), self.temperature, None, None, False, generator, u)
                       if len(gen_logits) else target)
        corrupted = x.clone()
        corrupted[selected] = sampled
        replaced = (corrupted != x).float()
        real = x != self.tokenizer.pad_id
        disc_logits = self.disc(encoder.forward_tokens(corrupted)).squeeze(-1)
        return gen_logits, target, disc_logits[real], replaced[real]

    def forward(self, batch, encoder, player="model"):
        gen_logits, target, d, r = self._run(batch["all"]["x"], encoder)
        gen_loss, _ = token_loss(gen_logits, target)
        disc_loss = F.binary_cross_entropy_with_logits(d, r) if len(r) else d.sum() * 0.0
        return Output(gen_loss + self.disc_weight * disc_loss,
                      {"gen_loss": gen_loss.detach(), "disc_loss": disc_loss.detach(),
                       "rtd_accuracy": ((d > 0).float() == r).float().mean(),
                       "gen_accuracy": token_accuracy(gen_logits, target)})

    @torch.no_grad()
    def evaluate(self, data, encoder, batch_size, device):
        gen, correct, n, hit, n_rep = TokenScores(), 0, 0, 0, 0
        for x, g in seeded_batches(data.test, batch_size, device, EVAL_SEED):
            gen_logits, target, d, r = self._run(x, encoder, g)
            gen.add(gen_logits, target)
            pred = (d > 0).float()
            correct += int((pred == r).sum())
            n += len(r)
            hit += int((pred * r).sum())
            n_rep += int(r.sum())
        correct, n, hit, n_rep = sum_over_ranks(correct, n, hit, n_rep)
        _, gen_correct, gen_n = gen.totals()
        out = {"test_rtd_accuracy": correct / max(n, 1), "test_masked_accuracy": gen_correct / max(gen_n, 1)}
        if n_rep:
            out["test_replaced_recall"] = hit / n_rep
        return out
