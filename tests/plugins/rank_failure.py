"""A part for tests/test_distributed.py: supervised cross-entropy that fails on rank 1 at its second step."""
from __future__ import annotations

import os

from sslkit.errors import TrainingError
from sslkit.objectives.supervised import Supervised
from sslkit.registry import register


@register("objectives", "fails_on_rank_1")
class FailsOnRank1(Supervised):
    """Supervised cross-entropy that raises a TrainingError on rank 1 (under torchrun) at its second step."""

    calls = 0

    def forward(self, batch, encoder, player="model"):
        self.calls += 1
        if self.calls == 2 and os.environ.get("RANK") == "1":
            raise TrainingError("the disk holding this rank's rows went away")
        return super().forward(batch, encoder)
