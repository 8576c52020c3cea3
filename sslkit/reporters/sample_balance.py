"""The predicted-class balance of a generative objective's samples at each evaluation while training."""
from __future__ import annotations

from ..evaluation.sample_quality import SampleScorer, class_balance
from ..registry import register
from .base import Reporter, ReporterContext, RunContext, Sampler


@register("reporters", "sample_balance")
class SampleBalance(Reporter):
    """At every evaluation, classifies as many samples as the test split has rows (seed ``seed + 1``) with a
    scoring classifier trained once on the real data, and logs ``test_sample_max_class_share`` and
    ``test_sample_classes_covered``: a mode collapse shows up in ``metrics.jsonl`` while it happens.
    Needs class labels."""

    needs = (Sampler, "generates samples (vae, gan)")

    def __init__(self, ctx: ReporterContext):
        super().__init__(ctx)
        self.scorer = None  # trained at the first evaluation, kept for the run

    def during(self, run: RunContext) -> dict:
        data = run.data
        if not data.info.num_classes or not len(data.test):
            return {}
        _, obj = self.objective(run)
        if self.scorer is None:
            self.scorer = SampleScorer(data, seed=run.seed)
        fake, _ = obj.draw_samples(len(data.test), run.encoder, run.device, run.seed + 1)
        bal = class_balance(self.scorer.probs(fake.float().cpu()))
        return {"test_sample_max_class_share": bal["max_class_share"],
                "test_sample_classes_covered": bal["classes_covered"]}
