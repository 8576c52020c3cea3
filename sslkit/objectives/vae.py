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

This file also holds the decoder heads (:class:`MLPDecoder`, :class:`DeconvDecoder`) and the figure
helpers that the GAN objective reuses.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..data.base import LazyColumn
from ..data.stream import StreamSpec
from ..errors import ConfigError
from ..registry import register
from ..schema import Count, NonNegative, Positive, PositiveProbability
from .base import Objective, ObjectiveContext, Output, batched

LOG_2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------------------- decoder heads
class MLPDecoder(nn.Module):
    """``z -> [Linear -> (BatchNorm) -> ReLU] per hidden width -> Linear -> reshape to out_shape``.

    latent_dim: size of ``z``. out_shape: shape of one output. hidden: widths of the hidden layers.
    batch_norm: BatchNorm1d before each ReLU (helps GAN generators).
    """

    def __init__(self, latent_dim: int, out_shape: tuple, hidden=(256, 256), batch_norm: bool = False):
        super().__init__()
        layers, width = [], latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h)] + ([nn.BatchNorm1d(h)] if batch_norm else []) + [nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, math.prod(out_shape)))
        self.net = nn.Sequential(*layers)
        self.out_shape = tuple(out_shape)

    def forward(self, z):
        return self.net(z).reshape(len(z), *self.out_shape)


class DeconvDecoder(nn.Module):
    """A small transposed-convolution decoder for ``C x H x W`` images (H, W divisible by ``2^len(channels)``):
    ``Linear(z) -> channels[0] x H/2^n x W/2^n``, then per stage ``ConvTranspose(4, stride 2) -> (BatchNorm) ->
    ReLU`` through ``channels[1:]``, and a last ``ConvTranspose(4, stride 2)`` to ``C`` channels.

    latent_dim: size of ``z``. out_shape: ``(C, H, W)``. channels: widths, one per 2x upsampling.
    batch_norm: BatchNorm2d before each ReLU.
    """

    def __init__(self, latent_dim: int, out_shape: tuple, channels=(64, 32), batch_norm: bool = False):
        super().__init__()
        c, h, w = out_shape
        n = len(channels)
        self.start = (channels[0], h // 2 ** n, w // 2 ** n)
        self.fc = nn.Sequential(nn.Linear(latent_dim, math.prod(self.start)), nn.ReLU())
        layers = []
        for a, b in zip(channels, channels[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1)] + ([nn.BatchNorm2d(b)] if batch_norm else []) + [nn.ReLU()]
        layers.append(nn.ConvTranspose2d(channels[-1], c, 4, 2, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(self.fc(z).reshape(len(z), *self.start))


def make_decoder(kind: str, latent_dim: int, info, hidden, batch_norm: bool, path: str,
                 key: str = "decoder_hidden") -> nn.Module:
    """The decoder/generator head ``kind`` (``mlp`` or ``deconv``) from ``latent_dim`` to one input of
    ``info.input_shape``; ``path`` is the objective's recipe path and ``key`` the name of its widths key."""
    if info.modality not in ("image", "tabular"):
        raise ConfigError(f"{path}.name", f"generative objectives decode image or tabular data, not {info.modality}")
    if not hidden or any(h < 1 for h in hidden):
        raise ConfigError(f"{path}.{key}", f"needs at least one positive width, got {list(hidden)}")
    if kind == "deconv":
        shape = tuple(info.input_shape)
        step = 2 ** len(hidden)
        if len(shape) != 3 or shape[1] % step or shape[2] % step:
            raise ConfigError(f"{path}.{key}", f"a deconv decoder with {len(hidden)} stages needs C x H x W images "
                                               f"with H and W divisible by {step}, got input shape {shape}")
        return DeconvDecoder(latent_dim, shape, tuple(hidden), batch_norm)
    return MLPDecoder(latent_dim, tuple(info.input_shape), tuple(hidden), batch_norm)


def check_sampling(path: str, sample_temperature: float, collapse_share: float, score_splits: int) -> None:
    """Validate the sampling options shared by the generative objectives."""
    if score_splits < 1:
        raise ConfigError(f"{path}.score_splits", f"must be at least 1, got {score_splits}")
    if sample_temperature <= 0:
        raise ConfigError(f"{path}.sample_temperature", f"must be > 0, got {sample_temperature}")
    if not 0 < collapse_share <= 1:
        raise ConfigError(f"{path}.collapse_share", f"must be in (0, 1], got {collapse_share}")


def data_range(data) -> tuple:
    """(min, max) of the training inputs ``x`` (floats), or ``None`` when there is no data."""
    if data is None or len(data.train) == 0:
        return None
    x = data.train.columns["x"]
    return float(x.min()), float(x.max())


# ----------------------------------------------------------------------------- figures
def save_image_grid(images: torch.Tensor, path: Path, title: str = "", ncol: int = 10,
                    row_labels: Optional[list] = None) -> None:
    """Draw ``images`` [N, C, H, W] (values clipped to [0, 1]; first channel, or RGB when C == 3) in a
    grid ``ncol`` wide and save it as a PNG."""
    from ..plots import pyplot

    plt = pyplot()
    images = images.detach().float().cpu().clamp(0, 1)
    n = len(images)
    nrow = max(1, math.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(ncol * 0.8, nrow * 0.8 + (0.4 if title else 0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
        else:
            img = images[i].permute(1, 2, 0).numpy() if images.shape[1] == 3 else images[i, 0].numpy()
            ax.imshow(img, cmap=None if images.shape[1] == 3 else "gray_r", vmin=0, vmax=1)
    if row_labels:
        for r, label in enumerate(row_labels[:nrow]):
            axes[r, 0].set_ylabel(label, fontsize=7)  # ticks are off, the frame stays like the other cells'
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_scatter(real: torch.Tensor, fake: torch.Tensor, path: Path, title: str = "") -> None:
    """Scatter the first two columns of real and generated tabular rows and save as a PNG."""
    from ..plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    real, fake = real.flatten(1).cpu(), fake.detach().flatten(1).cpu()
    ax.scatter(real[:, 0], real[:, 1 % real.shape[1]], s=5, c="lightgrey", label="data")
    ax.scatter(fake[:, 0], fake[:, 1 % fake.shape[1]], s=5, c="tab:red", label="samples")
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_samples(samples: torch.Tensor, data, path: Path, title: str) -> None:
    """``samples.png``: an image grid for images, a scatter over the training data for tabular rows."""
    if data.info.modality == "image":
        save_image_grid(samples[:100], path, title)
    else:
        save_scatter(data.train.columns["x"], samples, path, title)


class eval_mode:
    """Context manager: put modules in eval mode under ``torch.no_grad`` and restore their modes after."""

    def __init__(self, *modules):
        self.modules = modules

    def __enter__(self):
        self.modes = [m.training for m in self.modules]
        self.grad = torch.no_grad()
        self.grad.__enter__()
        for m in self.modules:
            m.eval()

    def __exit__(self, *exc):
        for m, mode in zip(self.modules, self.modes):
            m.train(mode)
        self.grad.__exit__(*exc)


# ----------------------------------------------------------------------------- the objective
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
    num_samples: size of each scored set of samples (null: as many as the test split has rows).
    score_splits: the samples are scored as this many disjoint sets of ``num_samples``; ``classifier_score``
        and ``frechet_distance`` are the means over the sets, ``*_std`` their standard deviations.
    sample_temperature: multiplies the standard deviation of the prior noise when sampling (Glow's and
        NVAE's temperature; for the VampPrior, of each component): below 1 trades diversity for fidelity.
        Training and the likelihoods are unaffected.
    collapse_share: the samples count as mode-collapsed when one predicted class holds more than this share.
    probe: fit the frozen-feature linear probe / k-NN on the posterior means at the end.
    """

    def __init__(self, ctx: ObjectiveContext, *, latent_dim: Count = 16, beta: NonNegative = 1.0,
                 likelihood: Literal["bernoulli", "gaussian"] = "bernoulli", gaussian_std: Optional[Positive] = None,
                 decoder: Literal["mlp", "deconv"] = "mlp", decoder_hidden: list[Count] = (256, 256),
                 prior: Literal["standard", "vamp"] = "standard", prior_components: Count = 50,
                 nll_samples: Count = 100, num_samples: Optional[Count] = None, score_splits: Count = 10, sample_temperature: Positive = 1.0,
                 collapse_share: PositiveProbability = 0.5, probe: bool = True):
        super().__init__()
        p = ctx.path
        if latent_dim < 1:
            raise ConfigError(f"{p}.latent_dim", f"must be at least 1, got {latent_dim}")
        if beta < 0:
            raise ConfigError(f"{p}.beta", f"must be >= 0, got {beta}")
        if nll_samples < 1:
            raise ConfigError(f"{p}.nll_samples", f"must be at least 1, got {nll_samples}")
        if gaussian_std is not None and gaussian_std <= 0:
            raise ConfigError(f"{p}.gaussian_std", f"must be > 0, got {gaussian_std}")
        check_sampling(p, sample_temperature, collapse_share, score_splits)
        self.score_splits = score_splits
        rng = data_range(ctx.data)
        if likelihood == "bernoulli" and rng is not None and (rng[0] < 0 or rng[1] > 1):
            raise ConfigError(f"{p}.likelihood", f"'bernoulli' needs inputs in [0, 1], but x spans "
                                                 f"[{rng[0]:.3g}, {rng[1]:.3g}]; use likelihood: gaussian")
        self.latent_dim, self.beta, self.likelihood = latent_dim, beta, likelihood
        self.nll_samples, self.num_samples, self.collapse_share = nll_samples, num_samples, collapse_share
        self.probe, self.seed, self.range, self.sample_temperature = probe, ctx.seed, rng, sample_temperature
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
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # reparameterisation
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
    def evaluate(self, test, encoder, batch_size, device) -> dict:
        gen = torch.Generator(device=device).manual_seed(self.seed)  # same noise each time; training RNG untouched
        sums, n = {}, 0
        # log-likelihoods in float32 even under bf16 autocast: logsumexp over k terms needs the precision
        with torch.autocast(torch.device(device).type, enabled=False):
            for b in batched(test, batch_size, device, columns=("x",)):
                for key, v in self.bounds(b["x"].float(), encoder, self.nll_samples, gen).items():
                    sums[key] = sums.get(key, 0.0) + float(v.double().sum())
                n += len(b["x"])
        return {f"test_{k}": v / n for k, v in sums.items()} if n else {}

    def sample(self, n: int, device, seed: int, encoder=None) -> torch.Tensor:
        """``n`` samples ``E[x|z]``, ``z ~ p(z)`` at ``sample_temperature``, drawn with their own generator (the
        VampPrior needs the ``encoder``)."""
        gen = torch.Generator(device=device).manual_seed(seed)
        z = self.prior.sample(n, lambda u: self.posterior(u, encoder), device, gen, self.sample_temperature)
        return torch.cat([self.decode_mean(z[i:i + 512]) for i in range(0, n, 512)])

    def finalize(self, run_dir, data, encoder, device) -> dict:
        from ..evaluation import embedding_figure, extract_features, probe_metrics
        from ..evaluation.sample_quality import SampleScorer, sample_quality_metrics

        metrics = {}
        with eval_mode(self, encoder):
            n = self.num_samples or max(len(data.test), 100)
            samples = self.sample(n * self.score_splits, device, self.seed + 1, encoder).float().cpu()
            mean = lambda x: self.posterior(x.float(), encoder)[0]  # noqa: E731 - the posterior mean
            test_mu = extract_features(mean, data.test, 256, device) if len(data.test) else None
            train_mu = extract_features(mean, data.train, 256, device) if self.probe else None
            # reconstructions E[x|mu(x)] of the whole test split: how sharp the decoder can be at best
            recon = torch.cat([self.decode_mean(self.posterior(b["x"].float(), encoder)[0]).float().cpu()
                               for b in batched(data.test, 256, device, columns=("x",))]) if len(data.test) else None
        if data.info.num_classes and len(data.test):
            scorer = SampleScorer(data, num_samples=n, splits=self.score_splits, seed=self.seed)
            metrics.update(sample_quality_metrics(samples, data, collapse_share=self.collapse_share, scorer=scorer))
            rec = scorer.score(recon)
            metrics["reconstruction_classifier_score"] = rec["classifier_score"]
            metrics["reconstruction_frechet_distance"] = rec["frechet_distance"]
            if self.probe:
                train_y = data.train.columns.get("y_true", data.train.columns["y"])
                metrics.update(probe_metrics(train_mu, train_y, test_mu, data.test.columns["y"], seed=self.seed))
        if run_dir is not None:
            run_dir = Path(run_dir)
            prior_name = "N(0, I)" if isinstance(self.prior, StandardPrior) else "VampPrior"
            temp = "" if self.sample_temperature == 1 else f", temperature {self.sample_temperature:g}"
            save_samples(samples, data, run_dir / "samples.png", f"VAE samples: E[x|z], z ~ {prior_name}{temp}")
            if recon is not None and data.info.modality == "image" and len(recon) >= 50:
                x = data.test.columns["x"][:50].float()
                pairs = torch.stack([x.reshape(5, 10, *x.shape[1:]), recon[:50].reshape(5, 10, *x.shape[1:])], 1)
                save_image_grid(pairs.reshape(100, *x.shape[1:]), run_dir / "reconstructions.png",
                                "test images (odd rows) and their reconstructions E[x|mu(x)] (even rows)")
            if test_mu is not None and len(test_mu) >= 5:
                y = data.test.columns["y"]
                if self.latent_dim == 2:
                    _latent_scatter(test_mu, y, run_dir / "latent.png")
                else:
                    embedding_figure(test_mu, y, run_dir / "latent.png", seed=self.seed,
                                     class_names=data.info.class_names or None,
                                     title="t-SNE of the VAE posterior means (test split)")
        return metrics


def _latent_scatter(mu: torch.Tensor, y: torch.Tensor, path: Path) -> None:
    """A 2-D latent space drawn directly, coloured by class."""
    from ..plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    sc = ax.scatter(mu[:, 0], mu[:, 1], c=y, s=8, cmap="tab10")
    fig.colorbar(sc, ax=ax)
    ax.set_xlabel("mu_1")
    ax.set_ylabel("mu_2")
    ax.set_title("VAE posterior means (test split)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
