"""The trained module: one shared encoder plus the recipe's objectives (which own their heads).

``SSLModel.forward`` computes ``sum_k w_k * L_k + lambda * Omega`` for one player; it is the
module DDP wraps, so gradient synchronisation uses torch.distributed's own machinery.
"""
from __future__ import annotations

import torch
from torch import nn

from .objectives.base import Output

MAIN_PLAYER = "model"


class SSLModel(nn.Module):
    def __init__(self, encoder: nn.Module, objectives: list, names: list, weights: list,
                 regularizer: nn.Module | None = None, reg_weight: float = 0.0):
        super().__init__()
        self.encoder = encoder
        self.objectives = nn.ModuleList(objectives)
        self.names, self.weights = list(names), list(weights)
        self.regularizer, self.reg_weight = regularizer, reg_weight
        self.players = []  # ordered union of the objectives' players
        for obj in objectives:
            self.players += [p for p in obj.players if p not in self.players]
        self.player_params = self._split_parameters()

    def _split_parameters(self) -> dict:
        claimed, groups = set(), {}
        for player in self.players:
            if player == MAIN_PLAYER:
                continue
            params = []
            for obj in self.objectives:
                if player in obj.players:
                    params += [p for p in obj.player_parameters(player, self.encoder) if id(p) not in claimed]
                    claimed |= {id(p) for p in params}
            groups[player] = params
        if MAIN_PLAYER in self.players:
            groups[MAIN_PLAYER] = [p for p in self.parameters() if id(p) not in claimed and p.requires_grad]
        return {p: groups[p] for p in self.players}

    def forward(self, batches: list, player: str = MAIN_PLAYER):
        """Weighted sum of the losses of every objective that plays ``player`` on its batch, plus the
        regularizer on that player's parameters. Returns ``(total, {name: Output})``."""
        terms, outputs = [], {}
        for name, weight, obj, batch in zip(self.names, self.weights, self.objectives, batches):
            if player in obj.players:
                out = obj(batch, self.encoder, player) if len(obj.players) > 1 else obj(batch, self.encoder)
                outputs[name] = out
                terms.append(out.loss if weight == 1 else weight * out.loss)
        if self.regularizer is not None and self.reg_weight:
            omega = self.regularizer(self.player_params[player])
            outputs["regularizer"] = Output(omega)
            terms.append(self.reg_weight * omega)
        # no `0.0 + ...` start and no multiply by a weight of 1: each is an extra autograd node per step
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total, outputs
