"""Generative self-supervision on digits: VAE test NLL, and sample quality of VAE and GAN samples next to
real test digits and the per-class Gaussian baseline (same classifier, same number of images).

    python benchmarks/generative.py                      # variants at seed 0, then the seed table over 0-9
    python benchmarks/generative.py --seeds 0-2 --no-variants    # only the recipes' seed table
    python benchmarks/generative.py --seeds 0-9 --no-variants --reuse  # table from finished runs in SSLKIT_OUT
    python benchmarks/generative.py --seeds 0-2 --temperatures 0.8,0.85,0.9  # re-sample finished GAN runs there

Trains ``recipes/vae_digits.yaml`` and ``recipes/gan_digits.yaml`` (the InfoGAN recipe, and the same GAN
without the categorical code) at their default size and prints markdown tables. Sample scores are means
over the ``sample_quality`` reporter's ``score_splits`` (10) sets of as many images as the test split has, +- their
standard deviation over the sets. The seed table puts both recipes beside the full-covariance per-class
Gaussian of the same seed (seeds 0-2 tuning, the rest held-out; summary: tuning mean, held-out mean +- std,
wins on the held-out seeds, and the seeds where both scores win). ``SSLKIT_SMOKE=1`` shrinks both runs to a few steps; run folders go under ``SSLKIT_OUT``
(default: a temporary folder). ``--reuse`` reads a seed's metrics from its finished run folders there
(``vae_seed<N>``, ``gan_seed<N>``) instead of training again, so seeds can be run by several processes
(``--seeds 3,4`` and ``--seeds 5,6`` into the same folder) and tabled together; only valid while the
recipes are unchanged since those runs.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeds import TUNING, SeedTable, add_seed_args, setup_threads  # noqa: E402

import sslkit
from sslkit.evaluation import probe_metrics
from sslkit.evaluation.sample_quality import sample_quality_metrics
from sslkit.run_folder import is_finished, read_metrics

ROOT = Path(__file__).resolve().parents[1]
SMOKE = os.environ.get("SSLKIT_SMOKE") == "1"


THREADS = {"trainer.threads": 1}  # set from --threads in main()


def run(recipe: str, out: Path, **overrides) -> tuple:
    overrides = {"trainer.progress": False, **THREADS, **({"trainer.max_steps": 3} if SMOKE else {}), **overrides}
    start = time.perf_counter()
    res = sslkit.run(ROOT / "recipes" / recipe, overrides=overrides, out=out, overwrite=True)
    return res, time.perf_counter() - start


VAE_RUNS = (  # (row name, overrides of recipes/vae_digits.yaml)
    ("VAE, Gaussian sigma=0.1, VampPrior K=500 (recipe)", {}),
    ("VAE, Gaussian sigma=0.1, VampPrior K=50", {"objectives[0].prior_components": 50}),
    ("VAE, Gaussian sigma=0.1, N(0, I) prior", {"objectives[0].prior": "standard"}),
    ("VAE, Bernoulli, VampPrior K=500", {"objectives[0].likelihood": "bernoulli"}),
    ("VAE, Bernoulli, N(0, I) prior", {"objectives[0].likelihood": "bernoulli", "objectives[0].prior": "standard"}),
)


GAN_RUNS = (  # (row name, overrides of recipes/gan_digits.yaml)
    ("GAN + 10-way InfoGAN code (recipe)", {}),
    ("GAN, no code", {"objectives[0].categorical_code": 0, "objectives[0].sample_temperature": 1.0}),
)


def pm(m: dict, key: str) -> str:
    """``mean +- std`` of a split-averaged score (just the value when the key has no std)."""
    std = m.get(f"{key}_std")
    return f"{m[key]:.2f}" + (f" ± {std:.2f}" if std is not None else "")


def beats(m: dict, ref: dict, base: str = "gaussian") -> str:
    """``yes``/``no`` for "the scores of ``m`` beat the ``base`` baseline in ``ref``": score higher / FD lower."""
    return (f"{'yes' if m['classifier_score'] > ref[base + '_classifier_score'] else 'no'} / "
            f"{'yes' if m['frechet_distance'] < ref[base + '_frechet_distance'] else 'no'}")


def main():
    ap = add_seed_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    ap.add_argument("--no-variants", action="store_true",
                    help="skip the variant, likelihood, feature and temperature tables (seed 0); only the seed table")
    ap.add_argument("--reuse", action="store_true",
                    help="seed table: read seeds whose run folders in SSLKIT_OUT finished instead of training them")
    ap.add_argument("--temperatures", type=lambda text: [float(t) for t in text.split(",")],
                    help="only re-sample the finished GAN runs gan_seed<N> in SSLKIT_OUT at these sample "
                         "temperatures (e.g. 0.8,0.85,0.9) and table them per seed against the Gaussian; no training")
    args = ap.parse_args()
    setup_threads(args.threads)
    THREADS["trainer.threads"] = args.threads
    out = Path(os.environ.get("SSLKIT_OUT") or tempfile.mkdtemp(prefix="generative-"))
    print(f"torch threads {args.threads} (trainer.threads={args.threads}); seeds {args.seeds}\n", flush=True)
    if args.temperatures:
        gan_temperature_table(out, args.seeds, args.temperatures)
        return
    if args.no_variants:
        seed_table(out, {}, args.seeds, args.reuse)
        return
    vaes = []
    for i, (name, over) in enumerate(VAE_RUNS[:1] if SMOKE else VAE_RUNS):  # smoke: the recipe row only
        res, wall = run("vae_digits.yaml", out / f"vae{i}", **over)
        vaes.append((name, res.metrics, wall, res.run_dir))
    gans = []
    for i, (name, over) in enumerate(GAN_RUNS):
        res, wall = run("gan_digits.yaml", out / f"gan{i}", **over)
        gans.append((name, res.metrics, wall, res.run_dir))
    v = vaes[0][1]
    # the collapse detector on a known-collapsed set: one real test digit repeated
    from sslkit import config
    from sslkit.runner import build_data

    data = build_data(config.load_recipe(ROOT / "recipes" / "gan_digits.yaml"))
    x = data.test.columns["x"]
    collapsed = sample_quality_metrics(x[:1].repeat(len(x), 1, 1, 1), data)

    def recon(m):
        return {"classifier_score": m["reconstruction_classifier_score"],
                "frechet_distance": m["reconstruction_frechet_distance"]}

    print(f"Sample quality on digits (means ± std over 10 sets of {len(x)} images; real test digits: one set; "
          f"scoring CNN test accuracy {v['quality_classifier_test_accuracy']:.3f})\n")
    print("| images | classifier score (higher better) | Fréchet distance (lower better) | max class share "
          "| classes covered | mode collapse | beats full-cov. Gaussian (score / FD) | beats diagonal Gaussian |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| real test digits | {v['real_classifier_score']:.2f} | {v['real_frechet_distance']:.2f} | - | - | - | - | - |")
    for name, key in (("per-class Gaussian, full covariance", "gaussian"),
                      ("per-class Gaussian, diagonal (independent pixels)", "gaussian_diagonal")):
        print(f"| {name} | {pm(v, key + '_classifier_score')} | {pm(v, key + '_frechet_distance')} | - | - | - | - | - |")
    t = config.load_recipe(ROOT / "recipes" / "vae_digits.yaml")["objectives"][0]["sample_temperature"]
    tg = config.load_recipe(ROOT / "recipes" / "gan_digits.yaml")["objectives"][0]["sample_temperature"]
    rows = [(f"{name}: samples E[x|z], t = {t:g}", m) for name, m, *_ in vaes]
    rows += [(f"{gans[0][0]}: samples G(t z, c), t = {tg:g}", gans[0][1]), (f"{gans[1][0]}: samples G(z)", gans[1][1])]
    rows += [("one digit repeated (collapse check)", collapsed)]
    for name, m in rows:
        print(f"| {name} | {pm(m, 'classifier_score')} | {pm(m, 'frechet_distance')} | "
              f"{m['sample_max_class_share']:.2f} | {m['sample_classes_covered']} | "
              f"{'yes' if m['mode_collapse'] else 'no'} | {beats(m, v)} | {beats(m, v, 'gaussian_diagonal')} |")
    for name, m, *_ in vaes:
        r = recon(m)
        print(f"| {name}: reconstructions of the test digits | {r['classifier_score']:.2f} | "
              f"{r['frechet_distance']:.2f} | - | - | - | {beats(r, v)} | {beats(r, v, 'gaussian_diagonal')} |")
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
    feats += [(f"discriminator's encoder: {name}", m, wall) for name, m, wall, _ in gans]
    for name, m, wall in feats:
        print(f"| {name} | {m['linear_probe_accuracy']:.3f} | {m['knn_accuracy']:.3f} | "
              f"{m['linear_probe_accuracy_5pc']:.3f} | {m['knn_accuracy_5pc']:.3f} | {m['train_time_s']:.0f} | "
              f"{wall:.0f} |")
    raw = probe_metrics(data.train.columns["x"].flatten(1), data.train.columns["y_true"],
                        data.test.columns["x"].flatten(1), data.test.columns["y"])
    print(f"| raw pixels (no training, for scale) | {raw['linear_probe_accuracy']:.3f} | {raw['knn_accuracy']:.3f} | "
          f"{raw['linear_probe_accuracy_5pc']:.3f} | {raw['knn_accuracy_5pc']:.3f} | - | - |")
    info = gans[0][1]
    print(f"\nInfoGAN code vs class: {info['code_class_agreement']:.3f} of the recipe GAN's samples have the "
          "predicted class matched to their code (best one-to-one matching of the 10 codes to the 10 classes)")
    temperature_sweep([("VAE (recipe)", vaes[0][3]), ("InfoGAN (recipe)", gans[0][3]), ("GAN, no code", gans[1][3])])
    seed_table(out, {0: (v, gans[0][1])}, args.seeds, args.reuse)
    print(f"\ntorch threads: {torch.get_num_threads()}; run folders: {out}")


TEMPERATURES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
SCORE_SPLITS = 10  # as the sample_quality reporter's default


def resample(run_dir: Path, temperatures) -> dict:
    """``{t: metrics}``: the trained model of the finished run ``run_dir`` sampled at each sample temperature
    ``t`` with the run's own sample seed, number of samples and scoring classifier, so that the run's own
    temperature reproduces its ``metrics.json`` (training does not depend on the temperature). Metrics:
    ``classifier_score`` and ``frechet_distance`` (means over 10 sets, ``*_std``), the class balance and,
    for an InfoGAN, ``code_class_agreement``."""
    from sslkit.evaluation.sample_quality import SampleScorer, code_class_agreement
    from sslkit.runner import load_run

    cfg, data, model = load_run(run_dir)
    obj, n = model.objectives[0], len(data.test)
    scorer = SampleScorer(data, num_samples=n, seed=cfg["seed"])
    out = {}
    for t in temperatures:
        obj.sample_temperature = t
        with torch.no_grad():
            x, codes = obj.draw_samples(n * SCORE_SPLITS, model.encoder, "cpu", cfg["seed"] + 1)
        m = scorer.score_splits(x.float())
        if codes is not None:
            m["code_class_agreement"] = code_class_agreement(codes, scorer.probs(x).argmax(1), obj.code_size,
                                                             data.info.num_classes)
        out[t] = m
    return out


def temperature_sweep(runs: list) -> None:
    """The trained models of ``runs`` ((name, run folder) pairs) sampled at each ``sample_temperature``: the
    fidelity/diversity trade-off, scored by the same classifier, sets and noise as their recipe rows."""
    print("\nSample temperature sweep (the models above, re-sampled; t = 1 is the plain prior; "
          "classifier score / Fréchet distance, means over 10 sets)\n")
    print("| t | " + " | ".join(name for name, _ in runs) + " |")
    print("|---|" + "---|" * len(runs))
    temperatures = TEMPERATURES[::5] if SMOKE else TEMPERATURES  # smoke: t = 1 and 0.5
    sweeps = [resample(run_dir, temperatures) for _, run_dir in runs]
    for t in temperatures:
        print(f"| {t:g} | " + " | ".join(f"{s[t]['classifier_score']:.2f} / {s[t]['frechet_distance']:.2f}"
                                         for s in sweeps) + " |")


def gan_temperature_table(out: Path, seeds, temperatures) -> None:
    """The finished InfoGAN runs ``out/gan_seed<N>`` re-sampled at each of ``temperatures`` (see
    :func:`resample`), each against its own run's per-class Gaussian: a row per seed, a column per ``t``
    (classifier score / Fréchet distance, "ok" when both beat the Gaussian, and the code-class
    agreement), then how many tuning and held-out seeds each ``t`` wins and its smallest :func:`margin` over
    the seeds and the two scores. No training: a seed whose run
    folder has not finished is an error."""
    runs = {seed: out / f"gan_seed{seed}" for seed in seeds}
    missing = [str(d) for d in runs.values() if not is_finished(d)]
    if missing:
        raise SystemExit(f"--temperatures re-samples finished GAN runs; not finished: {', '.join(missing)}")
    print("InfoGAN (recipe) re-sampled at each sample temperature t, against the same run's per-class Gaussian "
          "(classifier score / Fréchet distance, means over 10 sets; ok: both better; code-class agreement)\n")
    print("| seed | split | per-class Gaussian, full cov. | " + " | ".join(f"t = {t:g}" for t in temperatures) + " |")
    print("|---|---|---|" + "---|" * len(temperatures))
    wins: dict = {t: [] for t in temperatures}
    margins: dict = {t: [] for t in temperatures}
    for seed, run_dir in runs.items():
        ref, sampled = read_metrics(run_dir), resample(run_dir, temperatures)
        cells = []
        for t in temperatures:
            m = sampled[t]
            ok = beats(m, ref) == "yes / yes"
            wins[t].append((seed, ok))
            margins[t] += [margin(m, ref, "classifier_score", 1), margin(m, ref, "frechet_distance", -1)]
            cells.append(f"{m['classifier_score']:.2f} / {m['frechet_distance']:.2f} {'ok' if ok else beats(m, ref)}"
                         f" ({m['code_class_agreement']:.2f})")
        print(f"| {seed} | {'tuning' if seed in TUNING else 'held-out'} | {ref['gaussian_classifier_score']:.2f} / "
              f"{ref['gaussian_frechet_distance']:.2f} | " + " | ".join(cells) + " |", flush=True)
    print()
    for t, flags in wins.items():
        tune = [ok for s, ok in flags if s in TUNING]
        held = [ok for s, ok in flags if s not in TUNING]
        won = [f"{sum(oks)} of {len(oks)} {split} seeds" for split, oks in (("tuning", tune), ("held-out", held)) if oks]
        print(f"t = {t:g}: both scores better than the Gaussian on {' and '.join(won)}; "
              f"smallest margin {min(margins[t]):+.2f} std")


def margin(m: dict, ref: dict, key: str, sign: int) -> float:
    """How far ``m``'s ``key`` beats the Gaussian's in ``ref`` (``sign`` -1: lower is better), in standard
    deviations of one set's difference (the two spreads over the sets combined): comparable across the two
    scores and the seeds, so a temperature can be chosen by its worst margin."""
    spread = math.hypot(m[f"{key}_std"], ref[f"gaussian_{key}_std"]) or 1.0
    return sign * (m[key] - ref[f"gaussian_{key}"]) / spread


def seed_run(recipe: str, run_dir: Path, seed: int, reuse: bool) -> dict:
    """Metrics of ``recipe`` at ``seed`` in ``run_dir``: read from a finished run there when ``reuse``,
    else trained (overwriting the folder)."""
    if reuse and is_finished(run_dir):
        return read_metrics(run_dir)
    return run(recipe, run_dir, seed=seed)[0].metrics


def seed_table(out: Path, done: dict, seeds, reuse: bool = False) -> None:
    """The two recipes at each of ``seeds``: every seed draws its own train/test split, initialisation
    and noise, and trains its own scoring CNN and Gaussian baseline, so each row is compared with its
    own baseline. ``done`` maps seeds already run to their (VAE, GAN) metrics; with ``reuse``, finished
    run folders in ``out`` count as run."""
    vae, gan, base = "VAE (recipe)", "InfoGAN (recipe)", "per-class Gaussian, full cov."
    score = SeedTable("classifier score of samples", ours=[vae, gan], digits=2)
    fd = SeedTable("Fréchet distance of samples", ours=[vae, gan], higher_is_better=False, digits=2)
    both: dict = {vae: [], gan: []}
    for seed in seeds:
        if seed in done:
            v, g = done[seed]
        else:
            v = seed_run("vae_digits.yaml", out / f"vae_seed{seed}", seed, reuse)
            g = seed_run("gan_digits.yaml", out / f"gan_seed{seed}", seed, reuse)
        for table, key in ((score, "classifier_score"), (fd, "frechet_distance")):
            table.add(seed, vae, v[key])
            table.add(seed, gan, g[key])
            table.add(seed, base, v[f"gaussian_{key}"])
            table.add(seed, "real test digits", v[f"real_{key}"])
        for name, m in ((vae, v), (gan, g)):  # each run against its own run's baseline
            both[name].append((seed, beats(m, m) == "yes / yes"))
        print(f"# seed {seed}: VAE {v['classifier_score']:.2f} / {v['frechet_distance']:.2f}, InfoGAN "
              f"{g['classifier_score']:.2f} / {g['frechet_distance']:.2f} (code-class agreement "
              f"{g['code_class_agreement']:.2f}), Gaussian {v['gaussian_classifier_score']:.2f} / "
              f"{v['gaussian_frechet_distance']:.2f}", flush=True)
    # real digits are the ceiling, not a baseline to beat
    real = {t: t.scores.pop("real test digits") for t in (score, fd)}
    print("\nThe recipes per seed against the same seed's per-class Gaussian (means over 10 sets; each seed "
          "scored by its own CNN)\n")
    for table in (score, fd):
        print(table.markdown())
        print("\nreal test digits, for scale: " + ", ".join(f"{s}: {x:.2f}" for s, x in real[table].items()) + "\n")
    for name, flags in both.items():
        held = [ok for s, ok in flags if s not in TUNING]
        tune = [ok for s, ok in flags if s in TUNING]
        print(f"{name}: both scores better than the Gaussian on {sum(tune)} of {len(tune)} tuning seeds and "
              f"{sum(held)} of {len(held)} held-out seeds (target: >= 6 of 7 held-out)")


if __name__ == "__main__":
    main()
