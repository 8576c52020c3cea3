"""Sample-quality scores: hand computations of the classifier score, the Fréchet distance and the class
balance, the per-class Gaussian baseline, and the scorer on real digits (real >> collapsed)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sslkit import config
from sslkit.evaluation.sample_quality import (SampleScorer, class_balance, class_gaussian_samples, classifier_score,
                                              collapse_report, frechet_distance, frechet_distance_gaussians,
                                              sample_quality_metrics)
from sslkit.runner import build_data


def test_classifier_score_bounds_and_hand_value():
    k = 4
    assert classifier_score(torch.full((8, k), 1 / k)) == pytest.approx(1.0)  # no confidence: 1
    assert classifier_score(torch.eye(k).repeat(3, 1)) == pytest.approx(k, rel=1e-6)  # confident and balanced: K
    assert classifier_score(torch.tensor([[1.0, 0.0]] * 5)) == pytest.approx(1.0, rel=1e-6)  # collapsed: 1
    p = torch.tensor([[0.9, 0.1], [0.3, 0.7]], dtype=torch.float64)
    marg = [0.6, 0.4]
    kl = [sum(pi * math.log(pi / m) for pi, m in zip(row, marg)) for row in p.tolist()]
    assert classifier_score(p) == pytest.approx(math.exp(sum(kl) / 2), rel=1e-9)


def test_frechet_distance_hand_cases():
    mu = torch.tensor([0.5, -1.0, 2.0])
    a = torch.randn(3, 3, dtype=torch.float64)
    cov = a @ a.T + torch.eye(3, dtype=torch.float64)
    assert frechet_distance_gaussians(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)  # identical: 0
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance_gaussians([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    # diagonal: ||dmu||^2 + sum (sqrt(a) - sqrt(b))^2
    d1, d2 = torch.tensor([1.0, 4.0]), torch.tensor([9.0, 1.0])
    want = 2 + (1 - 3) ** 2 + (2 - 1) ** 2
    assert frechet_distance_gaussians([0.0, 0.0], torch.diag(d1), [1.0, 1.0], torch.diag(d2)) == pytest.approx(want)
    # non-commuting full covariances against scipy's matrix square root
    from scipy.linalg import sqrtm

    b = torch.randn(3, 3, dtype=torch.float64)
    cov2 = b @ b.T + 0.5 * torch.eye(3, dtype=torch.float64)
    c1, c2 = cov.numpy(), cov2.numpy()
    ref = float(np.sum((mu.numpy() - 1) ** 2) + np.trace(c1 + c2 - 2 * np.real(sqrtm(c1 @ c2))))
    assert frechet_distance_gaussians(mu, cov, mu * 0 + 1, cov2) == pytest.approx(ref, rel=1e-6)
    # from samples: the same set gives 0, a shifted copy gives the squared shift
    f = torch.randn(200, 5)
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(f, f + 2.0) == pytest.approx(5 * 4.0, rel=1e-6)


def test_class_balance_and_collapse_report():
    probs = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 2]), 4).float()
    bal = class_balance(probs)
    assert bal["max_class_share"] == 0.5 and bal["classes_covered"] == 3
    assert bal["class_entropy"] == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    assert collapse_report(bal, 4, max_share=0.6)["mode_collapse"] == 0.0
    assert collapse_report(bal, 4, max_share=0.4)["mode_collapse"] == 1.0  # one class over the share
    one = class_balance(torch.nn.functional.one_hot(torch.zeros(10, dtype=torch.long), 10).float())
    report = collapse_report(one, 10, max_share=0.5)
    assert report["mode_collapse"] == 1.0 and report["sample_class_entropy"] == 0.0
    assert report["sample_classes_covered"] == 1


def test_class_gaussian_samples_follow_each_class():
    gen = torch.Generator().manual_seed(0)
    y = torch.tensor([0] * 300 + [1] * 100)
    x = torch.cat([torch.randn(300, 2, generator=gen) * 0.1 + 0.2, torch.randn(100, 2, generator=gen) * 0.1 + 0.7])
    s = class_gaussian_samples(x, y, 4000, seed=1)
    assert s.shape == (4000, 2)
    assert float(s.min()) >= float(x.min()) and float(s.max()) <= float(x.max())  # clipped to the data range
    # a 3:1 mixture of the two fitted Gaussians: overall mean 0.75 * 0.2 + 0.25 * 0.7
    assert s.mean(0).tolist() == pytest.approx([0.325, 0.325], abs=0.02)
    near_first = ((s - 0.2).norm(dim=1) < (s - 0.7).norm(dim=1)).float().mean()
    assert float(near_first) == pytest.approx(0.75, abs=0.03)


@pytest.fixture(scope="module")
def digits():
    return build_data(config.resolve({"data": {"name": "digits"}}))


@pytest.mark.slow
def test_scorer_ranks_real_digits_above_noise_and_flags_collapse(digits):
    scorer = SampleScorer(digits)
    assert scorer.classifier_test_accuracy > 0.93  # the instrument itself classifies real digits
    ref = scorer.reference()
    assert ref["real_classifier_score"] > 6.5 and ref["real_frechet_distance"] < 1.5
    noise = scorer.score(torch.rand(len(digits.test), 1, 8, 8))
    assert noise["frechet_distance"] > 10 * ref["real_frechet_distance"]
    assert noise["classifier_score"] < ref["real_classifier_score"]
    # 450 copies of one real "3": a collapsed generator
    x = digits.test.columns["x"]
    three = x[digits.test.columns["y"] == 3][:1].repeat(len(x), 1, 1, 1)
    m = sample_quality_metrics(three, digits)
    assert m["mode_collapse"] == 1.0 and m["sample_max_class_share"] == 1.0
    assert m["classifier_score"] == pytest.approx(1.0, abs=1e-3)
    for key in ("gaussian_classifier_score", "gaussian_frechet_distance", "real_classifier_score"):
        assert key in m
    # the real test split is not flagged
    real = sample_quality_metrics(x, digits)
    assert real["mode_collapse"] == 0.0 and real["sample_classes_covered"] == 10


@pytest.mark.slow
def test_score_splits_averages_disjoint_sets(digits):
    """score_splits scores consecutive sets of num_samples rows and reports their mean and standard deviation;
    reference() draws the Gaussian baselines as that many sets."""
    scorer = SampleScorer(digits, num_samples=150, splits=3)
    x = digits.test.columns["x"][:450].float()
    sets = [scorer.score(x[i:i + 150]) for i in (0, 150, 300)]
    out = scorer.score_splits(x)
    for key in ("classifier_score", "frechet_distance"):
        values = torch.tensor([s[key] for s in sets], dtype=torch.float64)
        assert out[key] == pytest.approx(float(values.mean()), rel=1e-9)
        assert out[f"{key}_std"] == pytest.approx(float(values.std()), rel=1e-9) and out[f"{key}_std"] > 0
    assert out["classes_covered"] == 10
    ref = scorer.reference()
    assert ref["gaussian_classifier_score_std"] > 0 and "gaussian_frechet_distance_std" in ref
    m = sample_quality_metrics(x, digits, scorer=scorer)
    assert m["classifier_score"] == pytest.approx(out["classifier_score"]) and "frechet_distance_std" in m
