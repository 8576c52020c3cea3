"""Generative adversarial network (Goodfellow et al. 2014) as a two-player objective of the normal trainer.

The discriminator ``D(x) = head(encoder(x))`` (a logit) reuses the run's registered encoder as its body, so
its features can be evaluated downstream; the generator ``G(z)``, ``z ~ N(0, I)``, is a head sized from the
data. Each training step the trainer steps the ``discriminator`` player, then the ``generator`` player, each
with its own optimizer (``objectives[i].optimizers.{discriminator,generator}`` merged onto
``trainer.optimizer``). With ``r`` the logits of real rows and ``f`` those of generated rows
(``softplus(t) = log(1 + e^t)``):

* non-saturating: ``L_D = mean softplus(-r) + mean softplus(f)``, ``L_G = mean softplus(-f)``;
* hinge: ``L_D = mean relu(1 - r) + mean relu(1 + f)``, ``L_G = -mean f``;

plus an optional penalty on the discriminator: ``r1``: ``gamma/2 * mean ||grad_x D(x)||^2`` on real rows
(Mescheder et al. 2018), or ``gp``: ``lambda * mean (||grad_x D(x_hat)||_2 - 1)^2`` on random
interpolates ``x_hat`` of real and generated rows (Gulrajani et al. 2017); ``penalty_weight`` is
gamma or lambda. With ``penalty_every: k`` the penalty is lazy (StyleGAN2, Karras et al. 2020): it is
computed on every k-th discriminator step only, weighted ``k * penalty_weight`` so its average is the same;
the double backward pass it needs is the most expensive part of a discriminator step.

With ``categorical_code: K`` the GAN is an InfoGAN (Chen et al. 2016): the generator also takes a one-hot
code ``c ~ Uniform{1..K}``, ``G(z, c)``, and a head ``Q(c|x)`` on the discriminator's features learns to
recover it. Both players add ``info_weight * CE(Q(G(z, c)), c)``, the variational lower bound on the
mutual information I(c; G(z, c)) up to the constant H(c); the discriminator player trains Q (and its body)
on generated rows held fixed, the generator player makes its rows recoverable. Without labels the code
tends to take the role of the digit class, which the run measures (``code_class_agreement``).
"""
from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..data.stream import StreamSpec
from ..distributed import for_my_rows, sum_over_ranks
from ..ema import ema_copy, ema_update
from ..errors import ConfigError
from ..registry import register
from ..schema import Count, NonNegative, NonNegativeInt, Positive, Rate
from .base import Objective, ObjectiveContext, Output, batched
from .decoders import check_temperature, data_range, make_decoder


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
    """``L_D`` from the discriminator logits of real and generated rows (see the module docstring)."""
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(fake: torch.Tensor, kind: str) -> torch.Tensor:
    """``L_G`` from the discriminator logits of generated rows."""
    if kind == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()


def input_gradient_norms(d_out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-row L2 norm of ``grad_x sum(d_out)`` (each row's output depends only on its own input), kept in
    the graph so a penalty on it trains the discriminator."""
    (grad,) = torch.autograd.grad(d_out.sum(), x, create_graph=True)
    return grad.flatten(1).norm(dim=1)


@register("objectives", "gan")
class GAN(Objective):
    """Generative adversarial network; players ``discriminator`` (the encoder + a linear logit head) and
    ``generator`` (a head from ``z ~ N(0, I)`` to an input), stepped in turn by the trainer.

    latent_dim: size of ``z``.
    loss: ``non_saturating`` or ``hinge`` (formulas in the module docstring).
    penalty: ``none``, ``r1`` (on real rows) or ``gp`` (WGAN-GP on interpolates).
    penalty_weight: gamma of R1 (``gamma/2 * E||grad||^2``) or lambda of the gradient penalty.
    penalty_every: k: the penalty on every k-th discriminator step only, weighted k (lazy regularisation).
    generator: ``mlp``, or ``deconv`` (transposed convolutions, images only).
    generator_hidden: hidden widths of the MLP generator, or channel widths (one per 2x upsampling).
    batch_norm: BatchNorm in the generator's hidden layers.
    output: the generator's last activation; ``auto``: sigmoid when the data lie in [0, 1], else none.
    ema: decay of an exponential moving average of the generator's weights used for evaluation and samples
        (0: sample from the trained generator itself).
    sample_temperature: samples are ``G(t z)``, ``z ~ N(0, I)``: below 1 trades diversity for fidelity (the
        truncation trick in its simplest, rescaling form). Training is unaffected.
    categorical_code: K > 0 makes it an InfoGAN with a K-way categorical code (module docstring); 0: off.
    info_weight: lambda of the InfoGAN mutual-information term.
    """

    players = ("discriminator", "generator")
    # the probe and the t-SNE figure read the discriminator's features (the encoder)
    reporters = ("sample_balance", "sample_quality", "probe", "samples", "samples_by_code", "embedding")

    def __init__(self, ctx: ObjectiveContext, *, latent_dim: Count = 32,
                 loss: Literal["non_saturating", "hinge"] = "non_saturating",
                 penalty: Literal["none", "r1", "gp"] = "none", penalty_weight: NonNegative = 1.0, penalty_every: Count = 1,
                 generator: Literal["mlp", "deconv"] = "mlp", generator_hidden: list[Count] = (256, 256),
                 batch_norm: bool = True, output: Literal["auto", "sigmoid", "none"] = "auto",
                 ema: Rate = 0.0, sample_temperature: Positive = 1.0, categorical_code: NonNegativeInt = 0,
                 info_weight: NonNegative = 1.0):
        super().__init__()
        p = ctx.path
        if categorical_code == 1:
            raise ConfigError(f"{p}.categorical_code", f"must be 0 (off) or at least 2 categories, got {categorical_code}")
        check_temperature(p, sample_temperature)
        self.range = data_range(ctx.data)
        if output == "auto":
            output = "sigmoid" if self.range and self.range[0] >= 0 and self.range[1] <= 1 else "none"
        self.latent_dim, self.loss_kind, self.penalty, self.penalty_weight = latent_dim, loss, penalty, penalty_weight
        self.penalty_every, self.discriminator_steps = penalty_every, 0
        self.output, self.seed, self.sample_temperature = output, ctx.seed, sample_temperature
        self.code_size, self.info_weight = categorical_code, info_weight
        self.generator = make_decoder(generator, latent_dim + categorical_code, ctx.info, generator_hidden,
                                      batch_norm, p, key="generator_hidden")
        self.head = nn.Linear(ctx.encoder.out_dim, 1)
        # Q(c|x) as in the InfoGAN paper: one hidden layer on the shared discriminator body
        self.code_head = (nn.Sequential(nn.Linear(ctx.encoder.out_dim, 128), nn.LeakyReLU(0.1),
                                        nn.Linear(128, categorical_code)) if categorical_code else None)
        self.ema = ema
        # an averaged copy (no gradients, claimed by no player) that is checkpointed with the model
        self.generator_ema = ema_copy(self.generator) if ema else None

    def streams(self):
        return {"all": StreamSpec("all")}

    def player_parameters(self, player, encoder):
        if player == "discriminator":  # the encoder is the discriminator's body; Q shares it
            heads = [self.head] + ([self.code_head] if self.code_head is not None else [])
            return list(encoder.parameters()) + [q for h in heads for q in h.parameters()]
        return list(self.generator.parameters())

    def latent(self, n: int, device, temperature: float = 1.0, generator=None, codes=None):
        """The generator's input for ``n`` rows and their codes: ``t z``, ``z ~ N(0, I)``, with the one-hot
        code appended for an InfoGAN (``codes`` given, or uniform); codes are ``None`` otherwise."""
        z = temperature * torch.randn(n, self.latent_dim, device=device, generator=generator)
        if not self.code_size:
            return z, None
        if codes is None:
            codes = torch.randint(self.code_size, (n,), device=device, generator=generator)
        return torch.cat([z, F.one_hot(codes, self.code_size).to(z.dtype)], 1), codes

    def generate(self, z: torch.Tensor, averaged: bool = False) -> torch.Tensor:
        """G(z) (``z`` as made by :meth:`latent`); ``averaged``: with the moving-average generator when there is one."""
        net = self.generator_ema if averaged and self.generator_ema is not None else self.generator
        out = net(z)
        return torch.sigmoid(out) if self.output == "sigmoid" else out

    def discriminate(self, x: torch.Tensor, encoder, features: bool = False):
        """D(x): one logit per row; with ``features`` also the body's features (for Q)."""
        h = encoder(x)
        logits = self.head(h).squeeze(1)
        return (logits, h) if features else logits

    def info_loss(self, h: torch.Tensor, codes: torch.Tensor):
        """``CE(Q(c|x), c)`` from the discriminator features ``h`` of generated rows and their codes, and
        the share of codes Q recovers."""
        q = self.code_head(h).float()
        return F.cross_entropy(q, codes), (q.argmax(1) == codes).float().mean().detach()

    def forward(self, batch, encoder, player="discriminator"):
        real = batch["all"]["x"].float()
        # drawn for the global batch: the same generated rows at any number of processes
        z, codes = for_my_rows(lambda N: self.latent(N, real.device), len(real))
        if player == "generator":
            f, h = self.discriminate(self.generate(z), encoder, features=True)
            loss = generator_loss(f, self.loss_kind)
            metrics = {"g_loss": loss.detach()}
            if codes is not None:
                info, _ = self.info_loss(h, codes)
                loss = loss + self.info_weight * info
                metrics["info_loss"] = info.detach()
            return Output(loss, metrics)
        with torch.no_grad():
            fake = self.generate(z)
        penalise = self.penalty != "none" and self.discriminator_steps % self.penalty_every == 0
        self.discriminator_steps += 1
        if penalise and self.penalty == "r1":
            real = real.detach().requires_grad_(True)
        # one pass over real and generated rows, so normalisation layers see both
        logits, h = self.discriminate(torch.cat([real, fake]), encoder, features=True)
        r, f = logits[:len(real)], logits[len(real):]
        loss = discriminator_loss(r, f, self.loss_kind)
        metrics = {"d_loss": loss.detach(), "d_real": torch.sigmoid(r).mean().detach(),
                   "d_fake": torch.sigmoid(f).mean().detach()}
        if codes is not None:
            info, metrics["q_accuracy"] = self.info_loss(h[len(real):], codes)
            loss = loss + self.info_weight * info
        if penalise:
            if self.penalty == "r1":
                pen = 0.5 * input_gradient_norms(r, real).pow(2).mean()
            else:
                t = for_my_rows(lambda N: torch.rand(N, *[1] * (real.dim() - 1), device=real.device), len(real))
                mix = (t * real.detach() + (1 - t) * fake).requires_grad_(True)
                pen = (input_gradient_norms(self.discriminate(mix, encoder), mix) - 1).pow(2).mean()
            loss = loss + self.penalty_every * self.penalty_weight * pen
            metrics["penalty"] = pen.detach()
        return Output(loss, metrics)

    # the lazy penalty's step count travels with the checkpoint, so a resumed run penalises the same steps
    def get_extra_state(self):
        return {"discriminator_steps": self.discriminator_steps}

    def set_extra_state(self, state):
        self.discriminator_steps = int(state["discriminator_steps"])

    @torch.no_grad()
    def after_step(self, step, encoder):
        if self.generator_ema is not None:
            ema_update(self.generator_ema, self.generator, self.ema)

    # -- evaluation
    def sample(self, n: int, device, seed: int, codes: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``n`` samples G(t z), ``z ~ N(0, I)``, ``t`` the ``sample_temperature``, drawn with their own
        generator (generator in eval mode); an InfoGAN's codes are ``codes`` or uniform."""
        return self.sample_with_codes(n, device, seed, codes)[0]

    def sample_with_codes(self, n: int, device, seed: int, codes: Optional[torch.Tensor] = None):
        """:meth:`sample` and the codes of the samples (``None`` without a categorical code)."""
        gen = torch.Generator(device=device).manual_seed(seed)
        z, codes = self.latent(n, device, self.sample_temperature, gen, codes)
        return torch.cat([self.generate(z[i:i + 512], averaged=True) for i in range(0, n, 512)]), codes

    @torch.no_grad()
    def evaluate(self, data, encoder, batch_size, device) -> dict:
        """Mean D(x) probability on the test split and on as many samples (the ``sample_balance`` reporter
        adds the samples' predicted-class balance, so a collapse shows up while training)."""
        n = len(data.test)
        if not n:
            return {}
        real = sum(float(torch.sigmoid(self.discriminate(b["x"].float(), encoder)).double().sum())
                   for b in batched(data.test, batch_size, device, ("x",), shard=True))
        fake = self.sample(n, device, self.seed + 1)
        return {"test_d_real": sum_over_ranks(real)[0] / n,
                "test_d_fake": float(torch.sigmoid(self.discriminate(fake, encoder)).mean())}

    # -- what the reporters use
    def draw_samples(self, n: int, encoder, device, seed: int) -> tuple:
        return self.sample_with_codes(n, device, seed)

    @property
    def sample_title(self) -> str:
        if self.sample_temperature == 1:
            return "GAN samples: G(z), z ~ N(0, I)"
        return f"GAN samples: G(t z), z ~ N(0, I), t = {self.sample_temperature:g}"

    def code_grid(self, per_code: int, device, seed: int) -> torch.Tensor:
        """``per_code`` samples for each code, code-major, with the same ``per_code`` noise vectors ``z`` in
        every code's row (InfoGAN's figure: what the code alone changes)."""
        gen = torch.Generator(device=device).manual_seed(seed)
        z = self.sample_temperature * torch.randn(per_code, self.latent_dim, device=device, generator=gen)
        codes = torch.arange(self.code_size, device=device).repeat_interleave(per_code)
        inputs = torch.cat([z.repeat(self.code_size, 1), F.one_hot(codes, self.code_size).to(z.dtype)], 1)
        return self.generate(inputs, averaged=True)
