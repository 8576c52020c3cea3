"""The GAN objective: its losses and penalties by hand, the two players inside the normal trainer (each with
its own optimizer settings and parameters), collapse detection, and the recipe end to end."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import sslkit
from sslkit import config
from sslkit.data import DataInfo
from sslkit.objectives.base import ObjectiveContext
from sslkit.objectives.gan import GAN, discriminator_loss, generator_loss
from sslkit.reporters import ReporterContext
from sslkit.runner import build_data, build_model
from sslkit.schema import build
from sslkit.trainer import Trainer

from conftest import RECIPES

RECIPE = RECIPES / "gan_digits.yaml"


def softplus(t):
    return math.log1p(math.exp(t))


def test_losses_by_hand():
    r, f = torch.tensor([0.5, -1.0]), torch.tensor([0.2, 2.0, -0.3])
    d_ns = (softplus(-0.5) + softplus(1.0)) / 2 + (softplus(0.2) + softplus(2.0) + softplus(-0.3)) / 3
    assert float(discriminator_loss(r, f, "non_saturating")) == pytest.approx(d_ns, rel=1e-6)
    assert float(generator_loss(f, "non_saturating")) == pytest.approx(
        (softplus(-0.2) + softplus(-2.0) + softplus(0.3)) / 3, rel=1e-6)
    d_hinge = (max(0, 1 - 0.5) + max(0, 1 + 1.0)) / 2 + (max(0, 1.2) + max(0, 3.0) + max(0, 0.7)) / 3
    assert float(discriminator_loss(r, f, "hinge")) == pytest.approx(d_hinge, rel=1e-6)
    assert float(generator_loss(f, "hinge")) == pytest.approx(-(0.2 + 2.0 - 0.3) / 3, rel=1e-6)


class LinearEncoder(nn.Module):
    def __init__(self, dim, out):
        super().__init__()
        self.lin, self.out_dim = nn.Linear(dim, out), out

    def forward(self, x):
        return self.lin(x.flatten(1))


def tiny_gan(**kw):
    torch.manual_seed(0)
    enc = LinearEncoder(3, 4)
    gan = GAN(ObjectiveContext(DataInfo("tabular", (3,), 0), enc), latent_dim=2, generator_hidden=[8], **kw)
    return gan, enc


@pytest.mark.parametrize("penalty", ["r1", "gp"])
def test_penalties_on_a_linear_discriminator(penalty):
    """D(x) = v . (W x + c) + e has input gradient W^T v everywhere, so R1 = gamma/2 |W^T v|^2 and
    GP = lambda (|W^T v| - 1)^2 exactly."""
    gan, enc = tiny_gan(penalty=penalty, penalty_weight=3.0)
    plain, _ = tiny_gan()
    plain.load_state_dict(gan.state_dict())
    x = torch.randn(5, 3)
    torch.manual_seed(1)
    with_pen = gan({"all": {"x": x}}, enc, "discriminator")
    torch.manual_seed(1)
    without = plain({"all": {"x": x}}, enc, "discriminator")
    g = (enc.lin.weight.T @ gan.head.weight.T).norm().detach()
    want = 0.5 * g ** 2 if penalty == "r1" else (g - 1) ** 2
    assert float(with_pen.metrics["penalty"]) == pytest.approx(float(want), rel=1e-5)
    assert float((with_pen.loss - without.loss).detach()) == pytest.approx(3.0 * float(want), rel=1e-5)
    with_pen.loss.backward()  # the penalty trains the discriminator: its weights get its gradient
    assert enc.lin.weight.grad is not None


def test_lazy_penalty_every_kth_discriminator_step_weighted_k():
    """penalty_every=3: the R1 term is in steps 0 and 3 only, at 3x its weight; the step count is checkpointed."""
    lazy, enc = tiny_gan(penalty="r1", penalty_weight=2.0, penalty_every=3)
    plain, _ = tiny_gan()
    plain.load_state_dict(lazy.state_dict(), strict=False)
    x = torch.randn(5, 3)
    g = float((enc.lin.weight.T @ lazy.head.weight.T).norm().detach())
    added = []
    for step in range(5):
        torch.manual_seed(step)
        out = lazy({"all": {"x": x}}, enc, "discriminator")
        torch.manual_seed(step)
        added.append(float((out.loss - plain({"all": {"x": x}}, enc, "discriminator").loss).detach()))
        assert ("penalty" in out.metrics) == (step % 3 == 0)
    want = 3 * 2.0 * 0.5 * g ** 2
    assert added == pytest.approx([want, 0, 0, want, 0], abs=1e-5)
    resumed, _ = tiny_gan(penalty="r1", penalty_every=3)
    resumed.load_state_dict(lazy.state_dict())
    assert resumed.discriminator_steps == 5
    with pytest.raises(config.ConfigError, match=r"^objectives\[0\]\.penalty_every: must be >= 1, got 0$"):
        config.load_recipe(RECIPES / "gan_digits.yaml", ["objectives[0].penalty_every=0"])  # declared range


def test_each_player_steps_only_its_own_parameters():
    gan, enc = tiny_gan()
    x = torch.randn(6, 3)
    d_params = {id(p) for p in gan.player_parameters("discriminator", enc)}
    g_params = {id(p) for p in gan.player_parameters("generator", enc)}
    assert d_params.isdisjoint(g_params)
    assert {id(p) for p in enc.parameters()} <= d_params  # the encoder is the discriminator's body
    assert d_params | g_params == {id(p) for p in list(gan.parameters()) + list(enc.parameters())}
    gan({"all": {"x": x}}, enc, "discriminator").loss.backward()
    assert all(p.grad is None for p in gan.generator.parameters())  # generated rows are detached for D
    gan({"all": {"x": x}}, enc, "generator").loss.backward()
    assert all(p.grad is not None for p in gan.generator.parameters())


@pytest.fixture(scope="module")
def trainer():
    cfg = config.load_recipe(RECIPE, ["trainer.max_steps=4", "trainer.progress=false",
                                      "objectives[0].optimizers.discriminator.lr=0.0008"])
    data = build_data(cfg)
    return Trainer(cfg, data, build_model(cfg, data), torch.device("cpu"), None)


def test_players_get_their_own_optimizers(trainer):
    opt = trainer.optimizers
    assert list(trainer.model.players) == ["discriminator", "generator"]
    assert opt["generator"].param_groups[0]["lr"] == pytest.approx(4e-4)
    assert opt["discriminator"].param_groups[0]["lr"] == pytest.approx(8e-4)
    assert tuple(opt["generator"].param_groups[0]["betas"]) == (0.5, 0.999)
    gan, enc = trainer.model.objectives[0], trainer.model.encoder
    assert {id(p) for p in opt["discriminator"].param_groups[0]["params"]} == \
        {id(p) for p in list(enc.parameters()) + list(gan.head.parameters()) + list(gan.code_head.parameters())}
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer._train_step(trainer._next_batches())
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
    assert any(n.startswith("encoder.") for n in changed) and any(".generator." in n for n in changed)


@pytest.mark.slow
def test_collapsed_generator_is_detected(trainer):
    gan, enc, data = trainer.model.objectives[0], trainer.model.encoder, trainer.data
    one = data.train.columns["x"][data.train.columns["y_true"] == 1][0].flatten().clamp(0.01, 0.99)
    for net in (gan.generator, gan.generator_ema):  # samples come from the moving average
        last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
        with torch.no_grad():  # every z (and code) maps to the same real "1"
            last.weight.zero_()
            last.bias.copy_(torch.log(one / (1 - one)))
    m = build("reporters", "sample_quality", ReporterContext()).report(trainer.run_context())
    assert m["mode_collapse"] == 1.0 and m["sample_max_class_share"] == 1.0 and m["sample_classes_covered"] == 1
    assert m["classifier_score"] < 1.01 and m["frechet_distance"] > m["gaussian_frechet_distance"]


@pytest.mark.slow
def test_gan_recipe_end_to_end(tmp_path):
    res = sslkit.run(RECIPE, overrides={"trainer.max_steps": 3, "trainer.progress": False, "trainer.log_every": 1},
                     out=tmp_path / "r")
    m = json.loads((res.run_dir / "metrics.json").read_text())
    for key in ("classifier_score", "frechet_distance", "gaussian_classifier_score", "gaussian_frechet_distance",
                "mode_collapse", "sample_max_class_share", "linear_probe_accuracy", "test_d_real"):
        assert key in m, key
    assert (res.run_dir / "samples.png").stat().st_size > 1000
    rec = json.loads((res.run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert {"gan/d_loss", "gan/g_loss", "gan/d_real", "lr/generator", "lr/discriminator"} <= set(rec)


@pytest.mark.slow
def test_hinge_with_gradient_penalty_trains(tmp_path):
    res = sslkit.run(RECIPE, overrides={"trainer.max_steps": 2, "trainer.progress": False, "objectives[0].loss": "hinge",
                                        "objectives[0].penalty": "gp", "reporters": ["sample_quality"],
                                        "objectives[0].generator": "deconv", "objectives[0].generator_hidden": [32, 16]},
                     out=tmp_path / "h")
    assert math.isfinite(res.metrics["train_loss"]) and "classifier_score" in res.metrics


def test_generator_moving_average():
    gan, enc = tiny_gan(ema=0.75)
    start = [p.detach().clone() for p in gan.generator_ema.parameters()]
    with torch.no_grad():
        for p in gan.generator.parameters():
            p.add_(1.0)
    gan.after_step(0, enc)
    for avg, s, p in zip(gan.generator_ema.parameters(), start, gan.generator.parameters()):
        assert torch.allclose(avg, 0.75 * s + 0.25 * p)  # avg <- ema * avg + (1 - ema) * current
    assert not any(p.requires_grad for p in gan.generator_ema.parameters())
    z = torch.randn(4, 2)
    gan.eval()
    assert not torch.allclose(gan.generate(z, averaged=True), gan.generate(z))


def test_bad_settings_name_their_recipe_key():
    from sslkit.errors import ConfigError

    enc = LinearEncoder(3, 4)
    ctx = ObjectiveContext(DataInfo("tabular", (3,), 0), enc, path="objectives[1]")
    with pytest.raises(ConfigError, match=r"^objectives\[0\]\.ema: must be in \[0, 1\), got 1.0$"):
        config.load_recipe(RECIPE, ["objectives[0].ema=1.0"])  # the declared range, checked with the recipe
    with pytest.raises(ConfigError, match=r"objectives\[1\]\.generator_hidden"):
        GAN(ctx, generator="deconv")  # tabular rows are not images
    with pytest.raises(ConfigError, match=r"objectives\[1\]\.name.*text"):
        GAN(ObjectiveContext(DataInfo("text", (16,), 2), enc, path="objectives[1]"))


def test_sample_temperature_scales_the_latent_noise():
    """Samples at temperature t are G(t z) for the same z ~ N(0, I); t must be positive."""
    from sslkit.errors import ConfigError

    gan, _ = tiny_gan(sample_temperature=0.5)
    gan.eval()
    z = torch.randn(6, 2, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(gan.sample(6, "cpu", seed=7), gan.generate(0.5 * z, averaged=True))
    with pytest.raises(ConfigError, match="sample_temperature"):
        tiny_gan(sample_temperature=0.0)


def test_infogan_adds_the_code_term_to_both_players():
    """With categorical_code K the generator reads [z, one_hot(c)] and both players add
    info_weight * CE(Q(G(z, c)), c), recomputed here by hand from the same random draws."""
    import torch.nn.functional as F

    gan, enc = tiny_gan(categorical_code=3, info_weight=0.5)
    assert gan.generator(torch.randn(2, 2 + 3)).shape == (2, 3)  # latent_dim 2 + a 3-way code
    x = torch.randn(5, 3)
    for player in ("generator", "discriminator"):
        torch.manual_seed(3)
        out = gan({"all": {"x": x}}, enc, player)
        torch.manual_seed(3)
        z = torch.randn(5, 2)
        c = torch.randint(3, (5,))
        fake = torch.sigmoid(gan.generator(torch.cat([z, F.one_hot(c, 3).float()], 1))) \
            if gan.output == "sigmoid" else gan.generator(torch.cat([z, F.one_hot(c, 3).float()], 1))
        info = F.cross_entropy(gan.code_head(enc(fake)), c)
        if player == "generator":
            want = generator_loss(gan.head(enc(fake)).squeeze(1), "non_saturating") + 0.5 * info
            assert float(out.metrics["info_loss"]) == pytest.approx(float(info), rel=1e-5)
        else:
            logits = gan.head(enc(torch.cat([x, fake]))).squeeze(1)
            want = discriminator_loss(logits[:5], logits[5:], "non_saturating") + 0.5 * info
            q_acc = (gan.code_head(enc(fake)).argmax(1) == c).float().mean()
            assert float(out.metrics["q_accuracy"]) == pytest.approx(float(q_acc))
        assert float(out.loss) == pytest.approx(float(want), rel=1e-5)
    d_params = {id(p) for p in gan.player_parameters("discriminator", enc)}
    assert {id(p) for p in gan.code_head.parameters()} <= d_params  # Q is trained with the discriminator
    from sslkit.errors import ConfigError
    with pytest.raises(ConfigError, match="categorical_code"):
        tiny_gan(categorical_code=1)


def test_infogan_code_grid_varies_the_code_only():
    gan, _ = tiny_gan(categorical_code=4)
    gan.eval()
    grid = gan.code_grid(5, "cpu", seed=0)
    assert grid.shape == (4 * 5, 3)
    rows = grid.reshape(4, 5, 3)  # one row per code, the same z in each column
    assert not torch.allclose(rows[0], rows[1])
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    inputs = torch.cat([z, torch.nn.functional.one_hot(torch.full((5,), 2), 4).float()], 1)
    assert torch.allclose(rows[2], gan.generate(inputs, averaged=True))


def test_code_class_agreement_by_hand():
    from sslkit.evaluation.sample_quality import code_class_agreement

    codes = torch.tensor([0, 0, 1, 1, 2])
    classes = torch.tensor([3, 3, 1, 2, 1])
    # best one-to-one matching: 0->3 (2 samples), 1->2 (1), 2->1 (1): 4 of 5
    assert code_class_agreement(codes, classes, 3, 4) == pytest.approx(0.8)
    assert code_class_agreement(codes, torch.tensor([5, 5, 5, 5, 5]), 3, 6) == pytest.approx(0.4)


@pytest.mark.slow
def test_infogan_recipe_reports_code_agreement_and_figure(tmp_path):
    res = sslkit.run(RECIPE, overrides={"trainer.max_steps": 3, "trainer.progress": False,
                                        "objectives[0].categorical_code": 10,
                                        "reporters": ["sample_quality", "samples_by_code"]},
                     out=tmp_path / "i")
    assert "code_class_agreement" in res.metrics
    assert (res.run_dir / "samples_by_code.png").stat().st_size > 1000


def test_a_generator_whose_code_draws_its_digit_agrees_with_the_classes(trainer):
    """InfoGAN's code_class_agreement, end to end through the sample_quality reporter: a generator that
    draws the same digit of class c (the mean of five real ones) for code c, whatever z, has its codes
    matched to the classes one to one: the agreement is 1 when the scoring classifier tells the ten
    digits apart (it did when written), and drops by a tenth for each two it confuses."""
    gan, data = trainer.model.objectives[0], trainer.data
    x, y = data.train.columns["x"], data.train.columns["y_true"]
    digits = torch.stack([x[y == c][:5].mean(0).flatten() for c in range(10)]).clamp(0.01, 0.99)
    draw = nn.Linear(gan.latent_dim + gan.code_size, digits.shape[1])
    with torch.no_grad():
        draw.weight.zero_()
        draw.weight[:, gan.latent_dim:] = torch.logit(digits).T  # one-hot code -> that digit's logits
        draw.bias.zero_()
    gan.generator_ema = nn.Sequential(draw, nn.Unflatten(1, tuple(x.shape[1:])))
    m = build("reporters", {"name": "sample_quality", "score_splits": 1}, ReporterContext()).report(
        trainer.run_context())
    assert m["code_class_agreement"] >= 0.9
    assert m["sample_classes_covered"] == 10 and m["mode_collapse"] == 0.0
