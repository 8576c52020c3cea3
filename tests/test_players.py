"""Multi-player objectives (GAN-style): each player is stepped in turn with its own optimizer."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import sslkit
from sslkit import checkpoint
from sslkit.errors import ConfigError
from sslkit.objectives import Objective, Output
from sslkit.registry import register

from conftest import RECIPES


@register("objectives", "test_two_players")
class TwoPlayers(Objective):
    """Test helper: player ``a`` pulls its scalar to +1, player ``b`` pushes its own to -1."""

    players = ("a", "b")

    def __init__(self, ctx):
        super().__init__()
        self.pa, self.pb = nn.Parameter(torch.zeros(())), nn.Parameter(torch.zeros(()))
        self.order = []

    def player_parameters(self, player, encoder):
        return [self.pa] if player == "a" else [self.pb, *encoder.parameters()]

    def forward(self, batch, encoder, player):
        self.order.append(player)
        feats = encoder(batch["labeled"]["x"]).mean()
        if player == "a":
            return Output((self.pa - 1) ** 2 + 0 * feats, {"pa": self.pa.detach()})
        return Output((self.pb + 1) ** 2 + 0 * feats, {"pb": self.pb.detach()})


@pytest.mark.slow
def test_players_step_in_order_with_their_own_optimizers(tmp_path):
    over = {"objectives": [{"name": "test_two_players",
                            "optimizers": {"b": {"name": "sgd", "lr": 0.5}}}],
            "trainer.optimizer": {"name": "sgd", "lr": 0.1}, "trainer.max_steps": 1,
            "trainer.progress": False, "encoder.hidden": [8]}
    res = sslkit.run(str(RECIPES / "supervised_digits.yaml"), overrides=over, out=tmp_path / "r")
    state = checkpoint.load(res.run_dir / "checkpoints" / "last.pt")
    # one SGD step each: a = 0 - 0.1 * 2 * (0 - 1) = 0.2 ; b = 0 - 0.5 * 2 * (0 + 1) = -1.0
    assert state["model"]["objectives.0.pa"].item() == pytest.approx(0.2)
    assert state["model"]["objectives.0.pb"].item() == pytest.approx(-1.0)
    assert set(state["optimizers"]) == {"a", "b"}
    assert state["optimizers"]["b"]["param_groups"][0]["initial_lr"] == 0.5


def test_unknown_player_in_optimizers_is_named(tmp_path):
    over = {"objectives": [{"name": "test_two_players", "optimizers": {"c": {"lr": 0.1}}}],
            "trainer.max_steps": 1, "trainer.progress": False}
    with pytest.raises(ConfigError) as err:
        sslkit.run(str(RECIPES / "supervised_digits.yaml"), overrides=over, out=tmp_path / "r")
    assert err.value.path == "objectives[0].optimizers.c"


def test_bad_player_optimizer_key_is_named(tmp_path):
    over = {"objectives": [{"name": "test_two_players", "optimizers": {"b": {"lrr": 0.1}}}],
            "trainer.max_steps": 1, "trainer.progress": False}
    with pytest.raises(ConfigError, match="did you mean 'lr'") as err:
        sslkit.run(str(RECIPES / "supervised_digits.yaml"), overrides=over, out=tmp_path / "r")
    assert err.value.path == "objectives[0].optimizers.b.lrr"
