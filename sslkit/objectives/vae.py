"""Variational autoencoder (Kingma & Welling 2014): generative self-supervision by maximising the ELBO.

For an input ``x`` with approximate posterior ``q(z|x) = N(mu(x), diag(exp(logvar(x))))``, prior
``p(z) = N(0, I)`` and decoder likelihood ``p(x|z)``, the per-example loss is the beta-weighted negative ELBO

    L(x) = -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z)),
    KL   = 1/2 * sum_j (mu_j^2 + exp(logvar_j) - logvar_j - 1),

with the expectation estimated by one reparameterised sample ``z = mu + exp(logvar / 2) * eps``,
``eps ~ N(0, I)``; the loss is the mean of ``L`` over the batch (nats per example). ``beta = 1`` is the
plain ELBO. The test-split ``test_nll`` is the importance-sampled bound with ``k`` posterior samples

    -log p(x) ~= -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x),

which tightens towards ``-log p(x)`` as ``k`` grows (Burda et al. 2016).

``prior: vamp`` replaces ``N(0, I)`` by the VampPrior (Tomczak & Welling 2018), a uniform mixture of the
posteriors of ``K`` learned pseudo-inputs ``u_k``: ``p(z) = (1/K) sum_k q(z|u_k)``. It has no closed-form
KL, so the KL term is the one-sample estimate ``log q(z|x) - log p(z)`` at the same reparameterised ``z``
(its expectation is the KL). Samples then come from the mixture, where the posteriors of real data lie,
instead of from regions of ``N(0, I)`` that no training input maps to ("holes" in the prior).

The decoder heads are in :mod:`sslkit.objectives.decoders`; sample quality, the probe on the posterior
means and the figures are reporters (``sample_quality``, ``probe``, ``samples``, ``reconstructions``,
``latent``), which this objective names as its defaults.
"""
from __future__ import annotations

import math
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..data.base import LazyColumn
from ..data.batches import seeded_batches
from ..data.stream import StreamSpec
from ..distributed import for_my_rows
from ..distributed import sum_over_ranks
from ..errors import ConfigError
from ..registry import register
from ..schema import Count, NonNegative, Positive
from .base import Objective, ObjectiveContext, Output
from .decoders import check_temperature, data_range, make_decoder

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per row: ``1/2 sum_j (mu^2 + exp(logvar) - logvar - 1)``."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


class StandardPrior(nn.Module):
    """p(z) = N(0, I)."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def log_prob(self, z: torch.Tensor, posterior) -> torch.Tensor:
        return log_normal(z, torch.zeros_like(z), torch.zeros_like(z))

    def kl(self, z, mu, logvar, posterior) -> torch.Tensor:
        return gaussian_kl(mu, logvar)  # closed form

    def sample(self, n: int, posterior, device, generator, temperature: float = 1.0) -> torch.Tensor:
        return temperature * torch.randn(n, self.latent_dim, device=device, generator=generator)


class VampPrior(nn.Module):
    """p(z) = (1/K) sum_k q(z | u_k) over ``K`` learned pseudo-inputs ``u_k`` (Tomczak & Welling 2018),
    initialised from random training inputs. ``posterior(x) -> (mu, logvar)`` is the VAE's encoder, passed
    in because the encoder belongs to the run, not to this module.

    pseudo_inputs: initial pseudo-inputs ``[K, *input_shape]``.
    """

    def __init__(self, pseudo_inputs: torch.Tensor):
        super().__init__()
        self.u = nn.Parameter(pseudo_inputs.clone().float())

    def log_prob(self, z: torch.Tensor, posterior) -> torch.Tensor:
        mu, logvar = posterior(self.u)  # [K, d]
        K = mu.shape[0]
        comp = log_normal(z.unsqueeze(-2), mu, logvar)  # [..., K]
        return torch.logsumexp(comp, -1) - math.log(K)

    def kl(self, z, mu, logvar, posterior) -> torch.Tensor:
        return log_normal(z, mu, logvar) - self.log_prob(z, posterior)  # one-sample estimate

    def sample(self, n: int, posterior, device, generator, temperature: float = 1.0) -> torch.Tensor:
        mu, logvar = posterior(self.u)
        k = torch.randint(0, mu.shape[0], (n,), device=device, generator=generator)
        eps = torch.randn(n, mu.shape[1], device=device, generator=generator)
        return mu[k] + temperature * torch.exp(0.5 * logvar[k]) * eps  # tempers each component, not the mixture


@register("objectives", "vae")
class VAE(Objective):
    """Variational autoencoder: mean over the batch of ``-log p(x|z) + beta * KL(q(z|x) || N(0, I))`` with a
    reparameterised ``z ~ q(z|x)`` (nats per example; see the module docstring).

    The encoder is the run's registered encoder followed by two linear heads for ``mu`` and ``logvar``;
    the decoder is a head sized from the data.

    latent_dim: size of ``z``.
    beta: weight of the KL term (1: the ELBO; > 1: beta-VAE).
    likelihood: ``bernoulli`` (decoder outputs logits; inputs must lie in [0, 1]: grey values are used as
        soft targets, the usual practice on digit images) or ``gaussian`` (decoder outputs the mean).
    gaussian_std: fixed standard deviation of the Gaussian likelihood; null learns one log-std per input
        dimension.
    decoder: ``mlp``, or ``deconv`` (transposed convolutions, images only).
    decoder_hidden: hidden widths of the MLP decoder, or channel widths (one per 2x upsampling) of the
        deconv decoder.
    prior: ``standard`` (N(0, I)) or ``vamp`` (the VampPrior mixture; see the module docstring).
    prior_components: K, the pseudo-inputs of the VampPrior.
    nll_samples: k, the importance samples of ``test_nll``.
    sample_temperature: multiplies the standard deviation of the prior noise when sampling (Glow's and
        NVAE's temperature; for the VampPrior, of each component): below 1 trades diversity for fidelity.
        Training and the likelihoods are unaffected.
    """

    reporters = ("sample_quality", "probe", "samples", "reconstructions", "latent")

    def __init__(self, ctx: ObjectiveContext, *, latent_dim: Count = 16, beta: NonNegative = 1.0,
                 likelihood: Literal["bernoulli", "gaussian"] = "bernoulli", gaussian_std: Optional[Positive] = None,
                 decoder: Literal["mlp", "deconv"] = "mlp", decoder_hidden: list[Count] = (256, 256),
                 prior: Literal["standard", "vamp"] = "standard", prior_components: Count = 50,
                 nll_samples: Count = 100, sample_temperature: Positive = 1.0):
        super().__init__()
        p = ctx.path
        check_temperature(p, sample_temperature)
        rng = data_range(ctx.data)
        if likelihood == "bernoulli" and rng is not None and (rng[0] < 0 or rng[1] > 1):
            raise ConfigError(f"{p}.likelihood", f"'bernoulli' needs inputs in [0, 1], but x spans "
                                                 f"[{rng[0]:.3g}, {rng[1]:.3g}]; use likelihood: gaussian")
        self.latent_dim, self.beta, self.likelihood = latent_dim, beta, likelihood
        self.nll_samples, self.seed, self.range, self.sample_temperature = nll_samples, ctx.seed, rng, sample_temperature
        self.mu = nn.Linear(ctx.encoder.out_dim, latent_dim)
        self.logvar = nn.Linear(ctx.encoder.out_dim, latent_dim)
        self.decoder = make_decoder(decoder, latent_dim, ctx.info, decoder_hidden, False, p)
        if prior == "vamp":
            x = ctx.data.train.columns["x"] if ctx.data is not None else None
            if x is None or isinstance(x, LazyColumn) or len(x) < prior_components or prior_components < 1:
                raise ConfigError(f"{p}.prior_components", f"the VampPrior initialises its {prior_components} "
                                                           f"pseudo-inputs from as many in-memory training rows"
                                                           f"{'' if x is None else f' (the data has {len(x)})'}")
            pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(ctx.seed))[:prior_components]
            self.prior = VampPrior(x[pick].float())
        else:
            self.prior = StandardPrior(latent_dim)
        self.gaussian_std = gaussian_std
        if likelihood == "gaussian" and gaussian_std is None:
            self.log_std = nn.Parameter(torch.zeros(*ctx.info.input_shape))

    def streams(self):
        return {"all": StreamSpec("all")}

    # -- the model's pieces
    def posterior(self, x, encoder):
        """``(mu, logvar)`` of q(z|x)."""
        h = encoder(x)
        return self.mu(h), self.logvar(h)

    def log_likelihood(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per example from the decoder output ``out`` (logits or means), summed over dimensions;
        ``out`` may carry leading sample dimensions before those of ``x``."""
        dims = x.dim()
        x = x.expand_as(out)
        if self.likelihood == "bernoulli":
            ll = -F.binary_cross_entropy_with_logits(out, x, reduction="none")
        else:
            log_std = self.log_std if self.gaussian_std is None else out.new_tensor(math.log(self.gaussian_std))
            ll = -0.5 * (LOG_2PI + 2 * log_std + (x - out).pow(2) * torch.exp(-2 * log_std))
        return ll.flatten(out.dim() - dims + 1).sum(-1)

    def decode_mean(self, z):
        """E[x|z]: Bernoulli probabilities or Gaussian means (clipped to the data range)."""
        out = self.decoder(z)
        if self.likelihood == "bernoulli":
            return torch.sigmoid(out)
        return out.clamp(*self.range) if self.range else out

    def forward(self, batch, encoder, player="model"):
        x = batch["all"]["x"].float()
        mu, logvar = self.posterior(x, encoder)
        # reparameterisation; the noise is drawn for the global batch (the same at any number of processes)
        eps = for_my_rows(lambda N: torch.randn((N, *mu.shape[1:]), device=mu.device, dtype=mu.dtype), len(mu))
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = -self.log_likelihood(self.decoder(z), x)
        kl = self.prior.kl(z, mu, logvar, lambda u: self.posterior(u, encoder))
        loss = (recon + self.beta * kl).mean()
        return Output(loss, {"recon": recon.mean().detach(), "kl": kl.mean().detach(),
                             "neg_elbo": (recon + kl).mean().detach()})

    # -- evaluation
    def bounds(self, x, encoder, k: int, generator=None) -> dict:
        """Per example: the negative ELBO (beta = 1; reconstruction term averaged over the ``k`` samples,
        KL in closed form for N(0, I), else averaged over the ``k`` samples) and the importance-sampled
        negative log-likelihood with ``k`` samples."""
        post = lambda u: self.posterior(u, encoder)  # noqa: E731
        mu, logvar = post(x)
        eps = torch.randn((k, *mu.shape), device=mu.device, dtype=mu.dtype, generator=generator)
        z = mu + torch.exp(0.5 * logvar) * eps  # [k, B, d]
        out = self.decoder(z.reshape(-1, mu.shape[1])).reshape(k, *x.shape)
        log_px_z = self.log_likelihood(out, x)  # [k, B]
        log_q = log_normal(z, mu, logvar)
        log_p = self.prior.log_prob(z, post)
        log_w = log_px_z + log_p - log_q
        nll = -(torch.logsumexp(log_w, 0) - math.log(k))
        recon = -log_px_z.mean(0)
        kl = gaussian_kl(mu, logvar) if isinstance(self.prior, StandardPrior) else (log_q - log_p).mean(0)
        return {"neg_elbo": recon + kl, "nll": nll, "recon": recon, "kl": kl}

    @torch.no_grad()
    def evaluate(self, data, encoder, batch_size, device) -> dict:
        # the same noise at every evaluation and any number of processes (each batch's from the seed and its first
        # row); the training RNG is untouched
        sums = {"neg_elbo": 0.0, "nll": 0.0, "recon": 0.0, "kl": 0.0}
        # log-likelihoods in float32 even under bf16 autocast: logsumexp over k terms needs the precision
        with torch.autocast(torch.device(device).type, enabled=False):
            for x, gen in seeded_batches(data.test, batch_size, device, self.seed):
                for key, v in self.bounds(x.float(), encoder, self.nll_samples, gen).items():
                    sums[key] += float(v.double().sum())
        n = len(data.test)
        return {f"test_{k}": v / n for k, v in zip(sums, sum_over_ranks(*sums.values()))} if n else {}

    def sample(self, n: int, device, seed: int, encoder=None) -> torch.Tensor:
        """``n`` samples ``E[x|z]``, ``z ~ p(z)`` at ``sample_temperature``, drawn with their own generator (the
        VampPrior needs the ``encoder``)."""
        gen = torch.Generator(device=device).manual_seed(seed)
        z = self.prior.sample(n, lambda u: self.posterior(u, encoder), device, gen, self.sample_temperature)
        return torch.cat([self.decode_mean(z[i:i + 512]) for i in range(0, n, 512)])

    # -- what the reporters use
    def draw_samples(self, n: int, encoder, device, seed: int) -> tuple:
        return self.sample(n, device, seed, encoder), None

    @property
    def sample_title(self) -> str:
        prior = "N(0, I)" if isinstance(self.prior, StandardPrior) else "VampPrior"
        temp = "" if self.sample_temperature == 1 else f", temperature {self.sample_temperature:g}"
        return f"VAE samples: E[x|z], z ~ {prior}{temp}"

    def latent_features(self, x, encoder):
        """The posterior mean ``mu(x)``."""
        return self.posterior(x, encoder)[0]

    def reconstruct(self, x, encoder):
        """``E[x | mu(x)]``: how sharp the decoder can be at best."""
        return self.decode_mean(self.latent_features(x.float(), encoder))
