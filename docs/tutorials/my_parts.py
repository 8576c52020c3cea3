"""Parts written outside sslkit (tutorial 10): one of each kind a recipe names, registered when this module is
imported (a recipe's ``imports:``).

- dataset ``spirals``: two interleaved spirals, a classic semi-supervised toy;
- view ``jitter``: Gaussian noise on tabular rows;
- encoder ``residual_mlp``: an MLP with skip connections;
- relation ``margin``: pseudo-labels where the top two classes are far apart;
- objective ``focal``: the focal loss.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sslkit.data import DataInfo, Examples
from sslkit.objectives import Classifier, Output
from sslkit.registry import register
from sslkit.relations.base import Relation, RelationInput, Targets
from sslkit.schema import Count, NonNegative, Positive, Probability


@register("datasets", "spirals")
def spirals(seed: int, *, n_samples: Count = 1000, turns: Positive = 1.0, noise: NonNegative = 0.05) -> Examples:
    """Two interleaved spirals (2 features, 2 classes), ``n_samples`` points in all.

    turns: how many times each arm winds around the centre. noise: std of Gaussian noise on the points.
    """
    g = torch.Generator().manual_seed(seed)
    n = n_samples // 2
    t = torch.sqrt(torch.rand(n, generator=g)) * turns * 2 * math.pi  # more points further out
    arm = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) / (turns * 2 * math.pi)
    x = torch.cat([arm, -arm]) + noise * torch.randn(2 * n, 2, generator=g)
    y = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
    return Examples({"x": x, "y": y}, DataInfo("tabular", (2,), 2, ["left", "right"], name="spirals"))


@register("views", "jitter")
class Jitter:
    """``x + std * noise`` (tabular rows), batched; its noise comes from torch's generator, which the trainer
    seeds for each batch of a stream (the same draws at any number of processes)."""

    def __init__(self, info: DataInfo, *, std: NonNegative = 0.05):
        self.std = std

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.std * torch.randn_like(x)


@register("encoders", "residual_mlp")
class ResidualMLP(nn.Module):
    """``width``-wide layers ``h <- h + relu(W h)``, ``depth`` of them, after a linear map of the flattened input.

    width: feature size (``out_dim``, what the objectives' heads read). depth: residual layers.
    """

    def __init__(self, info: DataInfo, *, width: Count = 64, depth: Count = 3):
        super().__init__()
        self.inp = nn.Linear(math.prod(info.input_shape), width)
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.out_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x.flatten(1))
        for layer in self.layers:
            h = h + F.relu(layer(h))
        return h


@register("relations", "margin")
class Margin(Relation):
    """Target ``p = softmax(f(weak(z)))``; weight ``1[p_(1) - p_(2) >= margin]``, the gap between the two most
    probable classes (a confident runner-up masks the row even when the top class is above a threshold).

    margin: the gap a row needs to be used.
    """

    reads_batch = False  # a row's target is its own prediction's: nothing to gather under torchrun

    def __init__(self, ctx, *, margin: Probability = 0.5):
        super().__init__()
        self.margin = margin

    @torch.no_grad()
    def forward(self, inp: RelationInput) -> Targets:
        probs = torch.softmax(inp.logits.float(), dim=1)
        top2 = probs.topk(2, dim=1).values
        return Targets(probs, (top2[:, 0] - top2[:, 1] >= self.margin).to(probs.dtype))


@register("objectives", "focal")
class Focal(Classifier):
    """The focal loss of a linear head (Lin et al., 2017): ``-(1 - p_y)^gamma log p_y`` averaged over the labeled
    rows, which weighs down the rows the model already gets right; ``test_accuracy`` from :meth:`logits`.

    gamma: the focusing exponent (0: plain cross-entropy).
    """

    def __init__(self, ctx, *, gamma: NonNegative = 2.0):
        super().__init__()
        self.gamma = gamma
        self.head = nn.Linear(ctx.encoder.out_dim, ctx.info.num_classes)

    def logits(self, x, encoder):
        return self.head(encoder(x))

    def forward(self, batch, encoder):
        b = batch["labeled"]
        logits = self.logits(b["x"], encoder)
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, b["y"][:, None]).squeeze(1)
        loss = (-(1 - log_p.exp()) ** self.gamma * log_p).mean()
        return Output(loss, {"accuracy": (logits.argmax(1) == b["y"]).float().mean()})
