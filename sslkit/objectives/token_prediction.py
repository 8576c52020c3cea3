"""The shape shared by the objectives that corrupt a row and predict its tokens (``mlm``, ``span``,
``dae``, ``plm``): the training loss is the mean cross-entropy of the predicted tokens, and ``evaluate``
scores the same predictions on the test split with the corruption drawn from a fixed seed."""
from __future__ import annotations

from abc import abstractmethod

import torch

from ..data.stream import StreamSpec
from ..text.lm_head import token_accuracy, token_loss
from ..text.token_scores import predicted_token_metrics
from .base import Objective, Output


class TokenPrediction(Objective):
    """Base class. Subclasses implement :meth:`predictions` and set ``metric`` (logged as
    ``{metric}_accuracy``; reported as ``test_{metric}_accuracy`` and ``test_{metric}_perplexity``) and
    ``eval_seed`` (the seed of the test split's corruption, the same at every evaluation)."""

    metric: str = "token"
    eval_seed: int = 0

    def streams(self):
        return {"all": StreamSpec("all")}

    @abstractmethod
    def predictions(self, x: torch.Tensor, encoder, generator=None, train: bool = False) -> tuple:
        """``(logits [N, V], targets [N])`` of the predicted tokens of the rows ``x`` (``train``: the
        training-time corruption, where it differs from the evaluated one)."""
        raise NotImplementedError  # pragma: no cover - interface

    def forward(self, batch, encoder, player="model"):
        logits, target = self.predictions(batch["all"]["x"], encoder, train=True)
        loss, _ = token_loss(logits, target)
        return Output(loss, {f"{self.metric}_accuracy": token_accuracy(logits, target)})

    @torch.no_grad()
    def evaluate(self, data, encoder, batch_size, device):
        return predicted_token_metrics(lambda x, g: self.predictions(x, encoder, g), data.test, batch_size, device,
                                       self.eval_seed, self.metric)
