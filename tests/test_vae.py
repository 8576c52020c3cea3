"""The VAE objective: the ELBO terms and the KL against hand computations, the importance-sampled NLL
against the exact marginal likelihood of a linear-Gaussian model, and the recipe end to end."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import sslkit
from sslkit import config
from sslkit.data import DataInfo
from sslkit.errors import ConfigError
from sslkit.objectives.base import ObjectiveContext
from sslkit.objectives.vae import VAE, gaussian_kl
from sslkit.runner import build_data, build_model

from conftest import RECIPES

RECIPE = RECIPES / "vae_digits.yaml"


def check(recipe: dict):
    """Resolve a recipe dict and build its parts, as ``sslkit validate`` does for files."""
    cfg = config.resolve(recipe)
    build_model(cfg, build_data(cfg))


class Identity(nn.Module):
    """An encoder whose features are its (flattened) input."""

    def __init__(self, dim):
        super().__init__()
        self.out_dim = dim
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x.flatten(1)


def tiny_vae(dim, latent, **kw):
    info = DataInfo("tabular", (dim,), 0)
    return VAE(ObjectiveContext(info, Identity(dim)), latent_dim=latent, **kw)


def test_kl_closed_form():
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]])
    # 1/2 (1 + 1 - 0 - 1) + 1/2 (0 + 4 - log 4 - 1)
    assert float(gaussian_kl(mu, logvar)) == pytest.approx(0.5 + 0.5 * (3 - math.log(4)))
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    assert torch.allclose(gaussian_kl(mu, logvar), torch.distributions.kl_divergence(q, p).sum(1), atol=1e-5)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_elbo_terms_by_hand(likelihood):
    vae = tiny_vae(2, 1, beta=0.5, likelihood=likelihood, gaussian_std=0.5 if likelihood == "gaussian" else None)
    with torch.no_grad():
        vae.mu.weight.copy_(torch.tensor([[1.0, -1.0]]))
        vae.mu.bias.fill_(0.1)
        vae.logvar.weight.zero_()
        vae.logvar.bias.fill_(math.log(0.25))
    vae.decoder = nn.Linear(1, 2)  # a decoder simple enough to follow by hand
    with torch.no_grad():
        vae.decoder.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        vae.decoder.bias.copy_(torch.tensor([0.0, 0.5]))
    x = torch.tensor([[0.8, 0.2], [0.1, 0.6]])
    torch.manual_seed(3)
    out = vae({"all": {"x": x}}, Identity(2))
    torch.manual_seed(3)
    eps = torch.randn(2, 1)
    total = 0.0
    for i in range(2):
        mu = 0.1 + x[i, 0] - x[i, 1]
        z = mu + 0.5 * eps[i, 0]
        o = [2.0 * z, -z + 0.5]
        if likelihood == "bernoulli":
            p = [1 / (1 + math.exp(-float(t))) for t in o]
            recon = -sum(float(xi) * math.log(pi) + (1 - float(xi)) * math.log(1 - pi) for xi, pi in zip(x[i], p))
        else:
            recon = sum(0.5 * math.log(2 * math.pi) + math.log(0.5) + (float(xi) - float(t)) ** 2 / (2 * 0.25)
                        for xi, t in zip(x[i], o))
        kl = 0.5 * (float(mu) ** 2 + 0.25 - math.log(0.25) - 1)
        total += recon + 0.5 * kl
    assert float(out.loss.detach()) == pytest.approx(total / 2, rel=1e-5)
    assert float(out.metrics["neg_elbo"]) > float(out.loss.detach())  # beta = 0.5 weighs the KL less than the ELBO


def test_importance_sampled_nll_matches_exact_marginal():
    """Linear-Gaussian model: x = w z + b + sigma eps. With q set to the exact posterior every importance
    weight equals p(x), so test_nll is exact for any k and the ELBO is tight."""
    w, b, sigma = torch.tensor([1.5, -0.5]), torch.tensor([0.2, 0.1]), 0.5
    vae = tiny_vae(2, 1, likelihood="gaussian", gaussian_std=sigma)
    vae.decoder = nn.Linear(1, 2)
    s2 = 1 / (1 + float(w @ w) / sigma ** 2)  # posterior variance
    with torch.no_grad():
        vae.decoder.weight.copy_(w[:, None])
        vae.decoder.bias.copy_(b)
        vae.mu.weight.copy_((s2 * w / sigma ** 2)[None])
        vae.mu.bias.fill_(float(-s2 * (w @ b) / sigma ** 2))
        vae.logvar.weight.zero_()
        vae.logvar.bias.fill_(math.log(s2))
    x = torch.tensor([[0.5, 0.3], [-1.0, 0.4], [2.0, -0.7]])
    cov = torch.outer(w, w) + sigma ** 2 * torch.eye(2)
    exact = -torch.distributions.MultivariateNormal(b, cov).log_prob(x)
    with torch.no_grad():
        got = vae.bounds(x, Identity(2), k=3)
        assert torch.allclose(got["nll"], exact, atol=1e-4)
        many = vae.bounds(x, Identity(2), k=20000)
        assert torch.allclose(many["neg_elbo"], exact, atol=0.03)
    # a worse posterior: the k-sample bound is above the exact value and tightens with k
    with torch.no_grad():
        vae.logvar.bias.fill_(math.log(4 * s2))
        torch.manual_seed(0)
        one = vae.bounds(x, Identity(2), k=1)["nll"].mean()
        torch.manual_seed(0)
        lots = vae.bounds(x, Identity(2), k=5000)["nll"].mean()
    assert float(exact.mean()) - 1e-3 < float(lots) < float(one)
    assert float(lots) == pytest.approx(float(exact.mean()), abs=0.01)


@pytest.mark.slow
def test_vae_recipe_end_to_end(tmp_path):
    res = sslkit.run(RECIPE, overrides={"trainer.max_steps": 3, "trainer.progress": False,
                                        "objectives[0].nll_samples": 5}, out=tmp_path / "r")
    m = json.loads((res.run_dir / "metrics.json").read_text())
    for key in ("test_neg_elbo", "test_nll", "classifier_score", "frechet_distance", "gaussian_classifier_score",
                "gaussian_frechet_distance", "mode_collapse", "linear_probe_accuracy", "knn_accuracy_5pc",
                "reconstruction_classifier_score", "reconstruction_frechet_distance"):
        assert key in m, key
    assert m["test_nll"] <= m["test_neg_elbo"] + 1e-6 and m["test_nll"] > 0
    for name in ("samples.png", "reconstructions.png", "latent.png"):
        assert (res.run_dir / name).stat().st_size > 1000, name


@pytest.mark.slow
def test_gaussian_vae_on_tabular_data_and_errors(tmp_path):
    recipe = {"data": {"name": "moons"}, "encoder": {"name": "mlp", "hidden": [16]},
              "objectives": [{"name": "vae", "likelihood": "gaussian", "latent_dim": 2, "nll_samples": 3,
                              "decoder_hidden": [16]}],
              "reporters": ["samples"],
              "trainer": {"max_steps": 2, "progress": False}}
    res = sslkit.run(recipe, out=tmp_path / "m")
    assert math.isfinite(res.metrics["test_nll"]) and (res.run_dir / "samples.png").is_file()
    with pytest.raises(ConfigError, match=r"objectives\[0\]\.likelihood.*\[0, 1\]"):
        check({**recipe, "objectives": [{"name": "vae", "likelihood": "bernoulli"}]})
    with pytest.raises(ConfigError, match=r"objectives\[0\]\.decoder_hidden"):
        check({"objectives": [{"name": "vae", "decoder": "deconv", "decoder_hidden": [8, 8, 8, 8]}]})
    with pytest.raises(ConfigError, match=r"objectives\[0\]\.latent_dim"):
        check({"objectives": [{"name": "vae", "latent_dim": 0}]})


# ----------------------------------------------------------------------------- VampPrior
def vamp_vae(dim, latent, K, rows=None, **kw):
    from sslkit.data.base import DataBundle, TensorData

    info = DataInfo("tabular", (dim,), 0)
    rows = TensorData({"x": torch.randn(rows or K, dim)})
    ctx = ObjectiveContext(info, Identity(dim), data=DataBundle(info, rows, rows))
    return VAE(ctx, latent_dim=latent, prior="vamp", prior_components=K, **kw)


def test_vamp_prior_log_prob_and_loss_by_hand():
    vae = vamp_vae(2, 1, K=2, likelihood="gaussian", gaussian_std=0.5)
    with torch.no_grad():
        vae.mu.weight.copy_(torch.tensor([[1.0, -1.0]]))
        vae.mu.bias.fill_(0.0)
        vae.logvar.weight.copy_(torch.tensor([[0.5, 0.0]]))
        vae.logvar.bias.fill_(0.0)
        vae.prior.u.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))  # posteriors N(1, e^0.5) and N(-2, 1)
    vae.decoder = nn.Linear(1, 2)
    with torch.no_grad():
        vae.decoder.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        vae.decoder.bias.zero_()

    def log_n(z, m, var):
        return -0.5 * (math.log(2 * math.pi * var) + (z - m) ** 2 / var)

    def log_prior(z):
        return math.log(0.5 * math.exp(log_n(z, 1.0, math.exp(0.5))) + 0.5 * math.exp(log_n(z, -2.0, 1.0)))

    post = lambda u: vae.posterior(u, Identity(2))  # noqa: E731
    for z in (-3.0, 0.0, 0.7):
        assert float(vae.prior.log_prob(torch.tensor([[z]]), post).detach()) == pytest.approx(log_prior(z), rel=1e-5)
    x = torch.tensor([[0.8, 0.2], [0.1, 0.6]])
    torch.manual_seed(3)
    out = vae({"all": {"x": x}}, Identity(2))
    torch.manual_seed(3)
    eps = torch.randn(2, 1)
    total = 0.0
    for i in range(2):
        mu, var = float(x[i, 0] - x[i, 1]), math.exp(0.5 * float(x[i, 0]))
        z = mu + math.sqrt(var) * float(eps[i, 0])
        recon = sum(0.5 * math.log(2 * math.pi) + math.log(0.5) + (float(xi) - t) ** 2 / (2 * 0.25)
                    for xi, t in zip(x[i], (2 * z, -z)))
        total += recon + log_n(z, mu, var) - log_prior(z)  # the one-sample KL estimate
    assert float(out.loss.detach()) == pytest.approx(total / 2, rel=1e-5)


def test_vamp_prior_of_one_standard_component_gives_the_standard_bounds():
    """With one pseudo-input whose posterior is N(0, I) the VampPrior is N(0, I): the same NLL bound
    for the same noise, and prior samples distributed as N(0, I)."""
    std = tiny_vae(2, 1, likelihood="gaussian", gaussian_std=0.5)
    vamp = vamp_vae(2, 1, K=1, likelihood="gaussian", gaussian_std=0.5)
    with torch.no_grad():
        for v in (std, vamp):
            v.mu.weight.copy_(torch.tensor([[2.0, 0.0]]))
            v.mu.bias.fill_(0.5)
            v.logvar.weight.copy_(torch.tensor([[0.3, -0.2]]))
            v.logvar.bias.zero_()
        vamp.decoder.load_state_dict(std.decoder.state_dict())
        vamp.prior.u.copy_(torch.tensor([[-0.25, 0.0]]))  # mu(u) = 0, logvar(u) = 0.3 * -0.25 ...
        vamp.logvar.weight[0, 0] = 0.0  # ... made exactly 0 in both models
        std.logvar.weight[0, 0] = 0.0
    x = torch.randn(5, 2)
    with torch.no_grad():
        torch.manual_seed(1)
        a = std.bounds(x, Identity(2), k=50)
        torch.manual_seed(1)
        b = vamp.bounds(x, Identity(2), k=50)
        zs = vamp.prior.sample(20000, lambda u: vamp.posterior(u, Identity(2)), "cpu", torch.Generator().manual_seed(0))
    assert torch.allclose(a["nll"], b["nll"], atol=1e-4)
    assert float((a["kl"] - b["kl"]).mean()) == pytest.approx(0.0, abs=0.3)  # closed form vs a 50-sample estimate
    assert float(zs.mean()) == pytest.approx(0.0, abs=0.03) and float(zs.std()) == pytest.approx(1.0, abs=0.03)


def test_vamp_prior_needs_enough_rows():
    with pytest.raises(ConfigError, match="prior_components"):
        vamp_vae(2, 1, K=10, rows=5, likelihood="gaussian")


@pytest.mark.parametrize("prior", ["standard", "vamp"])
def test_sample_temperature_scales_the_prior_noise(prior):
    """z = t eps under N(0, I); under the VampPrior z = mu_k + t sigma_k eps (each component tempered,
    the component choice unchanged), so t -> 0 samples decode the components' means."""
    vae = tiny_vae(2, 1, likelihood="gaussian", gaussian_std=0.5) if prior == "standard" else \
        vamp_vae(2, 1, K=3, likelihood="gaussian", gaussian_std=0.5)
    post = lambda u: vae.posterior(u, Identity(2))  # noqa: E731
    with torch.no_grad():
        z1 = vae.prior.sample(500, post, "cpu", torch.Generator().manual_seed(0))
        zt = vae.prior.sample(500, post, "cpu", torch.Generator().manual_seed(0), 0.25)
        if prior == "standard":
            assert torch.allclose(zt, 0.25 * z1)
        else:
            mu, _ = post(vae.prior.u)
            centre = mu[torch.randint(0, 3, (500,), generator=torch.Generator().manual_seed(0))]
            assert torch.allclose(zt - centre, 0.25 * (z1 - centre), atol=1e-6)
    with pytest.raises(ConfigError, match="sample_temperature"):
        tiny_vae(2, 1, sample_temperature=-1.0)
