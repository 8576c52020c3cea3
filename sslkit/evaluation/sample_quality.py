"""Sample quality without downloads: a classifier score and a Fréchet distance measured with a small
classifier trained on the real training split.

The scores are the Inception Score and the FID with Inception-v3 replaced by a small MLP trained here on
the run's own labeled training split (for digits: the 1,347 real 8x8 training images, ~97 % test
accuracy):

* ``classifier_score`` = exp( E_x KL(p(y|x) || p(y)) ), p(y) the mean of p(y|x) over the scored set.
  It lies in [1, K]: high when every sample is confidently one class and all classes appear.
* ``frechet_distance`` = ||m_s - m_r||^2 + tr(S_s + S_r - 2 (S_r^1/2 S_s S_r^1/2)^1/2 ), between
  Gaussians fitted to the classifier's penultimate features (64-d) of the scored set (s) and of the real
  training split (r). Lower is better; 0 for identical feature distributions.

Every scored set (generated samples, the real test split, the per-class Gaussian baseline) has the same
size (the test split's, by default), because the Fréchet distance of a finite set is biased upwards by an
amount that depends on its size; the real test images give the floor a perfect generator would reach.
Generated samples and the baselines are drawn as several such sets (``score_splits`` of the objectives,
10 by default, the Inception Score's convention) and the scores are their means: one set of 450 draws
varies too much from draw to draw to rank models whose scores lie within a few tenths.

The *per-class Gaussian baseline* fits one full-covariance Gaussian (mean and covariance of the flattened
inputs, plus a small ridge) per class to the training split, draws samples in the class proportions of the
training split, and clips them to the data's range. A generative model worth having beats it on both scores.

Mode collapse is read off the classifier's predicted class histogram of the samples: the largest class
share, its entropy (nats; log K when balanced) and the number of classes holding at least 1 %.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..data import DataBundle


class ScoringClassifier(nn.Module):
    """The scoring network: for images (``input_shape`` of length 3) a small LeNet-like CNN
    ``Conv3x3(16) -> ReLU -> Conv3x3(32) -> ReLU -> MaxPool2 -> Conv3x3(feature_dim) -> ReLU -> global
    average pool``; for other data an MLP ``Linear(hidden) -> ReLU -> Linear(feature_dim) -> ReLU``; then a
    linear layer to the K class logits.

    A convolutional body matters: like Inception features, its features react to local texture, so
    pixel noise (the per-class Gaussian baseline) is scored as unlike real digits, which an MLP on the
    flattened pixels barely notices.
    ``features(x)`` are the ``feature_dim`` penultimate activations used by the Fréchet distance;
    ``forward(x)`` returns the class logits.
    input_shape: shape of one input. num_classes: K. hidden, feature_dim: layer widths.
    """

    def __init__(self, input_shape: tuple, num_classes: int, hidden: int = 256, feature_dim: int = 64):
        super().__init__()
        if len(input_shape) == 3:
            c = input_shape[0]
            self.body = nn.Sequential(nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
                                      nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, feature_dim, 3, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        else:
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(),
                                      nn.Linear(hidden, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


_CLASSIFIERS: dict = {}  # trained once per process and training set (VAE and GAN runs share it)


def train_classifier(x: torch.Tensor, y: torch.Tensor, num_classes: int, *, epochs: int = 30,
                     batch_size: int = 128, seed: int = 0) -> ScoringClassifier:
    """Train a :class:`ScoringClassifier` with Adam on ``(x, y)`` (rows with ``y >= 0``), on the CPU,
    deterministically for a given ``seed`` and without touching the global RNG. Cached per process."""
    x, y = x.detach().float().cpu(), y.detach().long().cpu()
    keep = y >= 0
    x, y = x[keep], y[keep]
    key = (tuple(x.shape), round(float(x.double().sum()), 6), round(float((x.double() ** 2).sum()), 6),
           int(y.sum()), num_classes, epochs, batch_size, seed)
    if key in _CLASSIFIERS:
        return _CLASSIFIERS[key]
    threads = torch.get_num_threads()
    # a network this small trains faster on one thread (and is then independent of the thread count)
    torch.set_num_threads(1)
    try:
        # may be called from an evaluation (no_grad, maybe bf16 autocast): train in float32 with gradients
        with torch.random.fork_rng(devices=[]), torch.enable_grad(), torch.autocast("cpu", enabled=False):
            torch.manual_seed(seed)
            model = ScoringClassifier(tuple(x.shape[1:]), num_classes)
            opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
            for _ in range(epochs):
                order = torch.randperm(len(x))
                for start in range(0, len(x), batch_size):
                    idx = order[start:start + batch_size]
                    loss = F.cross_entropy(model(x[idx]), y[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval().requires_grad_(False)
    _CLASSIFIERS[key] = model
    return model


def classifier_score(probs: torch.Tensor) -> float:
    """exp( mean_i KL(p_i || p_bar) ) of class probabilities ``probs`` [N, K], p_bar = mean_i p_i."""
    probs = probs.double().clamp_min(1e-12)
    marginal = probs.mean(0, keepdim=True)
    kl = (probs * (probs.log() - marginal.log())).sum(1)
    return float(kl.mean().exp())


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance_gaussians(mu1, cov1, mu2, cov2) -> float:
    """Squared 2-Wasserstein (Fréchet) distance between N(mu1, cov1) and N(mu2, cov2):
    ``||mu1 - mu2||^2 + tr(cov1) + tr(cov2) - 2 tr((cov1^1/2 cov2 cov1^1/2)^1/2)``, in float64."""
    mu1, mu2, cov1, cov2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, mu2, cov1, cov2))
    root1 = _sqrtm_psd(cov1)
    cross = torch.linalg.eigvalsh(root1 @ cov2 @ root1).clamp_min(0).sqrt().sum()
    value = (mu1 - mu2).pow(2).sum() + cov1.trace() + cov2.trace() - 2 * cross
    return float(value.clamp_min(0))


def gaussian_stats(feats: torch.Tensor):
    """Mean and (unbiased) covariance of the rows of ``feats`` [N, D], in float64."""
    feats = feats.double()
    return feats.mean(0), torch.cov(feats.T).reshape(feats.shape[1], feats.shape[1])


def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N, D] and [M, D]."""
    return frechet_distance_gaussians(*gaussian_stats(feats_a), *gaussian_stats(feats_b))


def class_balance(probs: torch.Tensor, min_share: float = 0.01) -> dict:
    """Histogram of the argmax classes of ``probs`` [N, K]: the largest class share, the entropy (nats)
    of the histogram, and how many classes hold at least ``min_share`` of the samples."""
    counts = torch.bincount(probs.argmax(1), minlength=probs.shape[1]).double()
    share = counts / counts.sum()
    nz = share[share > 0]
    return {"max_class_share": float(share.max()), "class_entropy": float((nz * nz.log()).sum().neg().clamp_min(0)),
            "classes_covered": int((share >= min_share).sum())}


def class_gaussian_samples(x: torch.Tensor, y: torch.Tensor, n: int, *, seed: int = 0, ridge: float = 1e-3,
                           diagonal: bool = False) -> torch.Tensor:
    """``n`` samples of the per-class Gaussian baseline: per class, N(mean_c, cov_c + ridge I) fitted to the
    flattened rows of ``x`` with label ``y == c`` (``diagonal``: keep only the variances), drawn in the
    class proportions of ``y`` and clipped to ``[x.min(), x.max()]``. Returns ``[n, *x.shape[1:]]``."""
    keep = y >= 0
    x, y = x[keep].double(), y[keep]
    flat = x.flatten(1)
    classes, counts = torch.unique(y, return_counts=True)
    gen = torch.Generator().manual_seed(seed)
    per_class = torch.multinomial(counts.double(), n, replacement=True, generator=gen)
    out = torch.empty(n, flat.shape[1], dtype=torch.float64)
    eye = torch.eye(flat.shape[1], dtype=torch.float64)
    for i, c in enumerate(classes.tolist()):  # one Cholesky factor per class, vectorised draws within it
        rows = flat[y == c]
        mean, cov = gaussian_stats(rows) if len(rows) > 1 else (rows[0], torch.zeros_like(eye))
        if diagonal:
            cov = torch.diag(cov.diagonal())
        chol = torch.linalg.cholesky(cov + ridge * eye)
        where = per_class == i
        eps = torch.randn(int(where.sum()), flat.shape[1], generator=gen, dtype=torch.float64)
        out[where] = mean + eps @ chol.T
    out = out.clamp(float(x.min()), float(x.max()))
    return out.float().reshape(n, *x.shape[1:])


class SampleScorer:
    """Scores sets of inputs with a :class:`ScoringClassifier` trained on ``data.train`` (its labeled rows,
    true labels where the run hides some: the scorer is an evaluation instrument, not part of training).

    ``score(x)`` -> classifier_score, frechet_distance (against the training split's features) and the
    class-balance numbers; ``reference()`` scores the real test split and the per-class Gaussian baseline.
    ``score_splits(x)`` scores ``x`` in disjoint sets of ``num_samples`` rows and reports the mean and the
    standard deviation over the sets (the Inception Score's "splits" convention): one set of a few hundred
    images moves the scores by about 0.1-0.2 (score) and 0.3-0.5 (distance) from one draw to the next.
    num_samples: size of each scored set (default: the size of the test split).
    splits: how many sets of the per-class Gaussian baselines ``reference()`` scores.
    seed: classifier and baseline seed.
    """

    def __init__(self, data: DataBundle, *, num_samples: Optional[int] = None, splits: int = 1, seed: int = 0):
        if not data.info.num_classes:
            raise ValueError("sample quality needs class labels to train its classifier")
        train = data.train.columns
        y = train.get("y_true", train["y"])
        self.data, self.seed = data, seed
        self.x_train, self.y_train = train["x"].float(), y
        self.num_samples = num_samples or len(data.test)
        self.splits = splits
        self.classifier = train_classifier(self.x_train, y, data.info.num_classes, seed=seed)
        self.real_stats = gaussian_stats(self._features(self.x_train))
        test = data.test.columns
        pred = self._logits(test["x"].float()).argmax(1)
        self.classifier_test_accuracy = float((pred == test["y"]).float().mean())

    def _logits(self, x):
        with torch.no_grad(), torch.autocast("cpu", enabled=False):
            return torch.cat([self.classifier(x[i:i + 512].float().cpu()) for i in range(0, len(x), 512)])

    def _features(self, x):
        with torch.no_grad(), torch.autocast("cpu", enabled=False):
            return torch.cat([self.classifier.features(x[i:i + 512].float().cpu()) for i in range(0, len(x), 512)])

    def probs(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities p(y|x) [N, K] of the inputs ``x`` [N, *input_shape]."""
        return self._logits(x.detach().float().cpu().reshape(len(x), *self.x_train.shape[1:])).softmax(1)

    def score(self, x: torch.Tensor) -> dict:
        """classifier_score, frechet_distance and class balance of the inputs ``x`` [N, *input_shape]."""
        x = x.detach().float().cpu().reshape(len(x), *self.x_train.shape[1:])
        probs = self._logits(x).softmax(1)
        fd = frechet_distance_gaussians(*gaussian_stats(self._features(x)), *self.real_stats)
        return {"classifier_score": classifier_score(probs), "frechet_distance": fd, **class_balance(probs)}

    def score_splits(self, x: torch.Tensor) -> dict:
        """:meth:`score` of ``x`` in consecutive sets of ``num_samples`` rows (a shorter tail is dropped
        unless it is the only set): the means of ``classifier_score`` and ``frechet_distance``, their
        standard deviations over the sets (``*_std``, 0 for one set) and the class balance of all rows."""
        n = min(self.num_samples, len(x))
        sets = [self.score(x[i:i + n]) for i in range(0, len(x) - n + 1, n)]
        out = {}
        for key in ("classifier_score", "frechet_distance"):
            values = torch.tensor([s[key] for s in sets], dtype=torch.float64)
            out[key] = float(values.mean())
            out[f"{key}_std"] = float(values.std()) if len(values) > 1 else 0.0
        return {**out, **class_balance(self.probs(x[:len(sets) * n]))}

    def reference(self) -> dict:
        """Scores of the real test split (``real_*``; repeated to ``num_samples`` rows if smaller; one set), of
        the per-class full-covariance Gaussian baseline (``gaussian_*``) and of its independent-pixel variant
        (``gaussian_diagonal_*``: per-class means and variances only, a weaker reference), each baseline
        drawn and scored as ``splits`` sets (means, and ``*_std`` when there are several)."""
        x_test = self.data.test.columns["x"].float()
        idx = torch.arange(self.num_samples) % len(x_test)
        real = self.score(x_test[idx])
        out = {f"real_{k}": real[k] for k in ("classifier_score", "frechet_distance")}
        for name, diagonal in (("gaussian", False), ("gaussian_diagonal", True)):
            base = class_gaussian_samples(self.x_train, self.y_train, self.num_samples * self.splits, seed=self.seed,
                                          diagonal=diagonal)
            scores = self.score_splits(base)
            keys = ("classifier_score", "frechet_distance") + (
                ("classifier_score_std", "frechet_distance_std") if self.splits > 1 else ())
            out.update({f"{name}_{k}": scores[k] for k in keys})
        out["quality_classifier_test_accuracy"] = self.classifier_test_accuracy
        return out


def collapse_report(balance: dict, num_classes: int, max_share: float) -> dict:
    """Mode-collapse metrics from :func:`class_balance`: ``sample_max_class_share``,
    ``sample_class_entropy`` (nats), ``sample_classes_covered`` and ``mode_collapse`` (1.0 when one class
    holds more than ``max_share`` of the samples or fewer than half of the classes appear, else 0.0)."""
    collapsed = balance["max_class_share"] > max_share or balance["classes_covered"] < math.ceil(num_classes / 2)
    return {"sample_max_class_share": balance["max_class_share"], "sample_class_entropy": balance["class_entropy"],
            "sample_classes_covered": balance["classes_covered"], "mode_collapse": float(collapsed)}


def code_class_agreement(codes: torch.Tensor, classes: torch.Tensor, num_codes: int, num_classes: int) -> float:
    """How well unsupervised latent codes name classes: the share of samples whose (predicted) class is the
    one matched to their code by the best one-to-one matching of codes to classes (Hungarian algorithm on
    the code x class counts, as in clustering accuracy). 1 when each code yields one class of its own."""
    from scipy.optimize import linear_sum_assignment

    counts = torch.zeros(num_codes, num_classes, dtype=torch.long)
    counts.index_put_((codes.long(), classes.long()), torch.ones(len(codes), dtype=torch.long), accumulate=True)
    rows, cols = linear_sum_assignment(counts.numpy(), maximize=True)
    return float(counts[rows, cols].sum()) / max(len(codes), 1)


def sample_quality_metrics(samples: torch.Tensor, data: DataBundle, *, seed: int = 0,
                           collapse_share: float = 0.5, scorer: Optional["SampleScorer"] = None) -> dict:
    """Everything a generative run reports about its samples: ``classifier_score``, ``frechet_distance``
    (means over the scorer's sets, with ``*_std`` when there are several), the collapse report, and the
    reference scores of real test images and of the per-class Gaussian baseline (see :class:`SampleScorer`).
    ``samples`` should have ``num_samples * splits`` rows of the scorer; without ``scorer`` the samples are
    scored as one set."""
    scorer = scorer or SampleScorer(data, num_samples=len(samples), seed=seed)
    s = scorer.score_splits(samples)
    out = {"classifier_score": s["classifier_score"], "frechet_distance": s["frechet_distance"]}
    if scorer.splits > 1:
        out.update(classifier_score_std=s["classifier_score_std"], frechet_distance_std=s["frechet_distance_std"])
    out.update(collapse_report(s, data.info.num_classes, collapse_share))
    out.update(scorer.reference())
    return out
