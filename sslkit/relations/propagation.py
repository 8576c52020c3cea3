"""Label propagation on a k-NN graph over the labeled and unlabeled batch (Zhou et al. 2004;
Iscen et al. 2019)."""
from __future__ import annotations

import math
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..ema import ema_copy, ema_update
from ..errors import ConfigError
from ..registry import register
from ..schema import Count, NonNegative, OpenProbability, Positive, Probability, Rate
from .base import Relation, RelationContext, RelationInput, Targets, class_prior, confidence_mask


def affinity(points: torch.Tensor, kernel: str, gamma: float = 3.0, k: int = 10,
             bandwidth: Optional[float] = None) -> torch.Tensor:
    """Dense pairwise affinities of the rows of ``points`` (diagonal excluded).

    ``cosine``: ``max(cos(v_i, v_j), 0)^gamma`` (Iscen et al.; for learned features).
    ``gaussian``: ``exp(-||v_i - v_j||^2 / (2 sigma^2))`` with ``sigma = bandwidth``, or by default
    the median distance of a point to its ``k``-th nearest neighbour (for raw low-dimensional inputs,
    where the direction of a vector means little).
    """
    v = points.flatten(1).float()
    if kernel == "cosine":
        v = F.normalize(v, dim=1)
        sim = (v @ v.T).clamp_min(0).pow(gamma)
    else:
        d2 = torch.cdist(v, v).pow(2)
        if bandwidth is None:
            kth = d2.masked_fill(torch.eye(len(v), dtype=torch.bool, device=v.device), float("inf"))
            kth = kth.kthvalue(min(k, len(v) - 1), dim=1).values
            sigma2 = kth.median().clamp_min(1e-12)
        else:
            sigma2 = torch.tensor(bandwidth ** 2, device=v.device)
        sim = torch.exp(-d2 / (2 * sigma2))
    return sim.fill_diagonal_(0.0)


def knn_graph(sim: torch.Tensor, k: int) -> torch.Tensor:
    """Symmetric k-NN graph ``W = A + A^T``: ``A_ij = sim_ij`` for the ``k`` most similar ``j != i``
    of each node ``i``, 0 otherwise."""
    masked = sim.clone().fill_diagonal_(float("-inf"))  # never one's own neighbour
    idx = masked.topk(min(k, len(sim) - 1), dim=1).indices
    A = torch.zeros_like(sim).scatter_(1, idx, sim.gather(1, idx).clamp_min(0))
    return A + A.T


def propagate(W: torch.Tensor, Y: torch.Tensor, alpha: float) -> torch.Tensor:
    """Closed-form label spreading ``F = (I - alpha D^-1/2 W D^-1/2)^-1 Y`` (rows of ``Y``: one-hot
    for labeled nodes, zeros for unlabeled ones; ``D`` the degrees of ``W``)."""
    d = W.sum(1).clamp_min(1e-12).rsqrt()
    S = d[:, None] * W * d[None, :]
    eye = torch.eye(len(W), device=W.device, dtype=W.dtype)
    return torch.linalg.solve(eye - alpha * S, Y)


@register("relations", "propagation")
class Propagation(Relation):
    """Targets from label propagation over the labeled batch ``X`` and the unlabeled batch ``z``
    (the literal ``R(z, X)``): a k-NN graph (:func:`affinity`, :func:`knn_graph`) is built over both —
    in the student's current feature space (``space: features``) or on the inputs themselves
    (``space: input``, the weak views of ``z`` and ``X`` as fed to the student) — the labels of
    ``X`` are spread with :func:`propagate`, and each unlabeled node's non-negative scores are
    normalised into ``p``. With ``class_mass``, each class's column of scores is first rescaled so
    that its total over the unlabeled nodes is the class's share of the labeled training rows (Zhu,
    Ghahramani & Lafferty 2003's class mass normalisation): a class whose seeds happen to carry more
    mass in a batch (one labeled row drawn more often than another, or seeds deep inside a dense
    region) no longer swallows the nodes between the classes. Weight ``1 - H(p) / log C`` (Iscen
    et al.'s certainty) when ``certainty_weight``, else 1; times ``1[max_c p_c >= threshold]``. A node the labels never reach
    gets a uniform ``p`` and weight 0.

    With ``teacher_decay``, the graph of ``space: features`` is built on the features of a teacher
    instead of the student's: an exponential moving average of the encoder, ``theta_g <- decay *
    theta_g + (1 - decay) * theta_f`` after every optimizer step (BatchNorm statistics copied),
    starting from the encoder's weights when the objective is built (a pretrained stage's, under
    ``from:``), run in eval mode on the labeled rows ``X`` and the weak views ``z`` (CoMatch and
    SimMatch build their graph and memory from the EMA model). The student's pseudo-label training
    reshapes its features around the pseudo-labels' own mistakes; a slow teacher keeps the graph near
    the features it started from while still following the student's gains.

    space: ``features`` or ``input``. kernel: ``cosine`` or ``gaussian`` (default: cosine on
    features, gaussian on inputs). k: neighbours per node. alpha: propagation strength in (0, 1).
    gamma: cosine affinity exponent. bandwidth: gaussian sigma (default: median k-th neighbour
    distance). certainty_weight: entropy-based weights. threshold: confidence of ``p`` needed to
    use a sample. class_mass: class mass normalisation of the scores. teacher_decay: EMA decay of the
    teacher whose features the graph is built on (default: none, the student's current features;
    0 is the student's weights seen in eval mode).
    """

    def __init__(self, ctx: RelationContext, *, space: Literal["features", "input"] = "features",
                 kernel: Optional[Literal["cosine", "gaussian"]] = None, k: Count = 10, alpha: OpenProbability = 0.99,
                 gamma: NonNegative = 3.0, bandwidth: Optional[Positive] = None, certainty_weight: bool = True,
                 threshold: Probability = 0.0, class_mass: bool = False, teacher_decay: Optional[Rate] = None):
        super().__init__()
        if space == "input" and ctx.info.modality == "text":
            raise ConfigError(f"{ctx.path}.space", "token ids have no geometry; use space: features for text, "
                                                   "or the label_spreading relation (a TF-IDF graph of the words)")
        if space == "input" and teacher_decay is not None:
            raise ConfigError(f"{ctx.path}.teacher_decay", "a teacher gives features; space: input uses none")
        # the teacher's weights are its own state (checkpointed with the objective)
        self.teacher_decay = teacher_decay
        self.teacher = ema_copy(ctx.encoder) if teacher_decay is not None else None
        self.space, self.k, self.alpha, self.gamma, self.bandwidth = space, k, alpha, gamma, bandwidth
        self.kernel = kernel or ("cosine" if space == "features" else "gaussian")
        self.certainty_weight, self.threshold = certainty_weight, threshold
        self.num_classes, self.class_mass = ctx.info.num_classes, class_mass
        # derived from the data at build time, so not checkpointed (older checkpoints load unchanged)
        self.register_buffer("prior", class_prior(ctx), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # deterministic features: running BatchNorm statistics, no dropout
        return self

    @torch.no_grad()
    def forward(self, inp: RelationInput) -> Targets:
        n, C = len(inp.labeled_y), self.num_classes
        if self.teacher is not None:
            points = self.teacher(torch.cat([inp.labeled_x, inp.x])).flatten(1).float()
        elif self.space == "features":
            points = torch.cat([inp.labeled_features, inp.features])
        else:
            points = torch.cat([inp.labeled_x.flatten(1), inp.x.flatten(1)])
        sim = affinity(points, self.kernel, self.gamma, self.k, self.bandwidth)
        Y = torch.zeros(len(points), C, device=sim.device)
        Y[torch.arange(n, device=sim.device), inp.labeled_y] = 1.0
        scores = propagate(knn_graph(sim, self.k), Y, self.alpha)[n:].clamp_min(0)
        if self.class_mass:
            scores = scores * (self.prior / scores.sum(0).clamp_min(1e-12))
        total = scores.sum(1, keepdim=True)
        reached = total > 1e-12
        probs = torch.where(reached, scores / total.clamp_min(1e-12), torch.full_like(scores, 1.0 / C))
        weight = reached.squeeze(1).float() * confidence_mask(probs, self.threshold)
        if self.certainty_weight and C > 1:
            entropy = -(probs * probs.clamp_min(1e-12).log()).sum(1)
            weight = weight * (1 - entropy / math.log(C)).clamp(0, 1)
        return Targets(probs, weight)

    @torch.no_grad()
    def after_step(self, encoder: nn.Module, head: nn.Module) -> None:
        if self.teacher is not None:
            ema_update(self.teacher, encoder, self.teacher_decay)
