"""Sample quality of a generative objective, scored by a classifier trained on the real data."""
from __future__ import annotations

from typing import Optional

from ..errors import ConfigError
from ..evaluation.sample_quality import SampleScorer, code_class_agreement, sample_quality_metrics
from ..registry import register
from .base import Reconstructor, Reporter, ReporterContext, RunContext, Sampler, cached_samples


def scorer_for(run: RunContext, num_samples: int, splits: int) -> SampleScorer:
    """The run's :class:`SampleScorer` for sets of ``num_samples`` rows (trained once per run context)."""
    return run.cached(("scorer", num_samples, splits),
                      lambda: SampleScorer(run.data, num_samples=num_samples, splits=splits, seed=run.seed))


@register("reporters", "sample_quality")
class SampleQuality(Reporter):
    """Scores ``num_samples * score_splits`` samples of the first generative objective (see
    :mod:`sslkit.evaluation.sample_quality`): ``classifier_score`` and ``frechet_distance`` (means over the
    ``score_splits`` disjoint sets, ``*_std`` their spread), the same for a per-class Gaussian baseline and
    the real test split, the predicted-class balance and ``mode_collapse``; for an InfoGAN the
    ``code_class_agreement``; for an autoencoder the scores of its test reconstructions
    (``reconstruction_classifier_score``, ``reconstruction_frechet_distance``). Needs class labels.

    num_samples: size of each scored set (null: as many as the test split has rows, at least 100).
    score_splits: the number of disjoint sets scored.
    collapse_share: the samples count as mode-collapsed when one predicted class holds more than this share.
    """

    needs = (Sampler, "generates samples (vae, gan)")

    def __init__(self, ctx: ReporterContext, *, num_samples: Optional[int] = None, score_splits: int = 10,
                 collapse_share: float = 0.5):
        super().__init__(ctx)
        if score_splits < 1:
            raise ConfigError(f"{ctx.path}.score_splits", f"must be at least 1, got {score_splits}")
        if num_samples is not None and num_samples < 2:
            raise ConfigError(f"{ctx.path}.num_samples", f"must be at least 2, got {num_samples}")
        if not 0 < collapse_share <= 1:
            raise ConfigError(f"{ctx.path}.collapse_share", f"must be in (0, 1], got {collapse_share}")
        self.num_samples, self.splits, self.collapse_share = num_samples, score_splits, collapse_share

    def report(self, run: RunContext) -> dict:
        data = run.data
        if not data.info.num_classes or not len(data.test):
            return {}
        _, obj = self.objective(run)
        n = self.num_samples or max(len(data.test), 100)
        samples, codes = cached_samples(run, obj, n * self.splits)
        scorer = scorer_for(run, n, self.splits)
        metrics = sample_quality_metrics(samples, data, seed=run.seed, collapse_share=self.collapse_share,
                                         scorer=scorer)
        if codes is not None:
            metrics["code_class_agreement"] = code_class_agreement(codes, scorer.probs(samples).argmax(1),
                                                                   obj.code_size, data.info.num_classes)
        if isinstance(obj, Reconstructor):
            from .reconstructions import reconstructions

            rec = scorer.score(reconstructions(run, obj))
            metrics["reconstruction_classifier_score"] = rec["classifier_score"]
            metrics["reconstruction_frechet_distance"] = rec["frechet_distance"]
        return metrics
