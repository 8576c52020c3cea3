"""Generative self-supervision on digits: VAE test NLL, and sample quality of VAE and GAN samples next to
real test digits and the per-class Gaussian baseline (same classifier, same number of images).

    python benchmarks/generative.py

Trains ``recipes/vae_digits.yaml`` and ``recipes/gan_digits.yaml`` at their default size and prints
markdown tables. ``SSLKIT_SMOKE=1`` shrinks both runs to a few steps; run folders go under ``SSLKIT_OUT``
(default: a temporary folder).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

import sslkit
from sslkit.evaluation import probe_metrics
from sslkit.evaluation.sample_quality import sample_quality_metrics

ROOT = Path(__file__).resolve().parents[1]
SMOKE = os.environ.get("SSLKIT_SMOKE") == "1"


def run(recipe: str, out: Path, **overrides) -> tuple:
    overrides = {"trainer.progress": False, **({"trainer.max_steps": 3} if SMOKE else {}), **overrides}
    start = time.perf_counter()
    res = sslkit.run(ROOT / "recipes" / recipe, overrides=overrides, out=out)
    return res, time.perf_counter() - start


VAE_RUNS = (  # (row name, overrides of recipes/vae_digits.yaml)
    ("VAE, Gaussian sigma=0.1, VampPrior (recipe)", {}),
    ("VAE, Gaussian sigma=0.1, N(0, I) prior", {"objectives[0].prior": "standard"}),
    ("VAE, Bernoulli, VampPrior", {"objectives[0].likelihood": "bernoulli"}),
    ("VAE, Bernoulli, N(0, I) prior", {"objectives[0].likelihood": "bernoulli", "objectives[0].prior": "standard"}),
)


def main():
    out = Path(os.environ.get("SSLKIT_OUT") or tempfile.mkdtemp(prefix="generative-"))
    vaes = []
    for i, (name, over) in enumerate(VAE_RUNS):
        res, wall = run("vae_digits.yaml", out / f"vae{i}", **over)
        vaes.append((name, res.metrics, wall, res.run_dir))
    gan, gan_wall = run("gan_digits.yaml", out / "gan")
    v, g = vaes[0][1], gan.metrics
    # the collapse detector on a known-collapsed set: one real test digit repeated
    from sslkit import config
    from sslkit.runner import build_data

    data = build_data(config.load_recipe(ROOT / "recipes" / "gan_digits.yaml"))
    x = data.test.columns["x"]
    collapsed = sample_quality_metrics(x[:1].repeat(len(x), 1, 1, 1), data)

    def beats(m, base):
        return (f"{'yes' if m['classifier_score'] > v[base + '_classifier_score'] else 'no'} / "
                f"{'yes' if m['frechet_distance'] < v[base + '_frechet_distance'] else 'no'}")

    def recon(m):
        return {"classifier_score": m["reconstruction_classifier_score"],
                "frechet_distance": m["reconstruction_frechet_distance"]}

    print(f"Sample quality on digits ({len(x)} images per row; scoring CNN test accuracy "
          f"{v['quality_classifier_test_accuracy']:.3f})\n")
    print("| images | classifier score (higher better) | Fréchet distance (lower better) | max class share "
          "| classes covered | mode collapse | beats full-cov. Gaussian (score / FD) | beats diagonal Gaussian |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| real test digits | {v['real_classifier_score']:.2f} | {v['real_frechet_distance']:.2f} | - | - | - | - | - |")
    print(f"| per-class Gaussian, full covariance | {v['gaussian_classifier_score']:.2f} | "
          f"{v['gaussian_frechet_distance']:.2f} | - | - | - | - | - |")
    print(f"| per-class Gaussian, diagonal (independent pixels) | {v['gaussian_diagonal_classifier_score']:.2f} | "
          f"{v['gaussian_diagonal_frechet_distance']:.2f} | - | - | - | - | - |")
    t = config.load_recipe(ROOT / "recipes" / "vae_digits.yaml")["objectives"][0]["sample_temperature"]
    rows = [(f"{name}: samples E[x|z], t = {t:g}", m) for name, m, *_ in vaes]
    rows += [("GAN (recipe): samples G(z)", g), ("one digit repeated (collapse check)", collapsed)]
    for name, m in rows:
        print(f"| {name} | {m['classifier_score']:.2f} | {m['frechet_distance']:.2f} | "
              f"{m['sample_max_class_share']:.2f} | {m['sample_classes_covered']} | "
              f"{'yes' if m['mode_collapse'] else 'no'} | {beats(m, 'gaussian')} | {beats(m, 'gaussian_diagonal')} |")
    for name, m, *_ in vaes:
        r = recon(m)
        print(f"| {name}: reconstructions of the test digits | {r['classifier_score']:.2f} | "
              f"{r['frechet_distance']:.2f} | - | - | - | {beats(r, 'gaussian')} | {beats(r, 'gaussian_diagonal')} |")
    print("\nVAE likelihood on the test split (nats per image; k = 100 importance samples for the NLL; "
          "Gaussian rows are densities on grey values, Bernoulli rows soft-target scores: compare within a kind)\n")
    print("| VAE | test negative ELBO | test NLL | test KL |")
    print("|---|---|---|---|")
    for name, m, *_ in vaes:
        print(f"| {name} | {m['test_neg_elbo']:.2f} | {m['test_nll']:.2f} | {m['test_kl']:.2f} |")
    print("\nFrozen features (linear probe / k-NN on the test split; all training labels and 5 per class)\n")
    print("| features | linear probe | k-NN | linear probe, 5/class | k-NN, 5/class | train time (s) | run wall (s) |")
    print("|---|---|---|---|---|---|---|")
    feats = [(f"posterior mean: {name}", m, wall) for name, m, wall, _ in vaes]
    for name, m, wall in feats + [("GAN discriminator's encoder (recipe)", g, gan_wall)]:
        print(f"| {name} | {m['linear_probe_accuracy']:.3f} | {m['knn_accuracy']:.3f} | "
              f"{m['linear_probe_accuracy_5pc']:.3f} | {m['knn_accuracy_5pc']:.3f} | {m['train_time_s']:.0f} | "
              f"{wall:.0f} |")
    raw = probe_metrics(data.train.columns["x"].flatten(1), data.train.columns["y_true"],
                        data.test.columns["x"].flatten(1), data.test.columns["y"])
    print(f"| raw pixels (no training, for scale) | {raw['linear_probe_accuracy']:.3f} | {raw['knn_accuracy']:.3f} | "
          f"{raw['linear_probe_accuracy_5pc']:.3f} | {raw['knn_accuracy_5pc']:.3f} | - | - |")
    temperature_sweep(vaes[0][3], gan.run_dir)
    print(f"\ntorch threads: {torch.get_num_threads()}; run folders: {out}")


TEMPERATURES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)


def temperature_sweep(vae_dir: Path, gan_dir: Path) -> None:
    """The trained recipe models sampled at each ``sample_temperature``: the fidelity/diversity trade-off,
    scored by the same classifier and with the same noise as their recipe rows."""
    from sslkit.evaluation.sample_quality import SampleScorer
    from sslkit.runner import load_run

    print("\nSample temperature sweep (the recipe models above, re-sampled; t = 1 is the plain prior)\n")
    print("| t | VAE classifier score | VAE Fréchet distance | GAN classifier score | GAN Fréchet distance |")
    print("|---|---|---|---|---|")
    rows = {}
    for kind, run_dir in (("vae", vae_dir), ("gan", gan_dir)):
        cfg, data, model = load_run(run_dir)
        obj, n = model.objectives[0], len(data.test)
        scorer = SampleScorer(data, num_samples=n, seed=cfg["seed"])
        for t in TEMPERATURES:
            obj.sample_temperature = t
            with torch.no_grad():
                x = obj.sample(n, "cpu", cfg["seed"] + 1, *((model.encoder,) if kind == "vae" else ()))
            m = scorer.score(x.float())
            rows.setdefault(t, []).extend((m["classifier_score"], m["frechet_distance"]))
    for t, (vs, vf, gs, gf) in rows.items():
        print(f"| {t:g} | {vs:.2f} | {vf:.2f} | {gs:.2f} | {gf:.2f} |")


if __name__ == "__main__":
    main()
