"""PyTorch's own optimizers, registered by name; their keyword arguments are the recipe keys."""
from __future__ import annotations

import torch

from ..registry import REGISTRIES
from ..schema import Range

NON_NEGATIVE = Range(0)
# torch checks these only when the optimizer is built (a traceback); declared here, a recipe is checked first
# lr 0 is legal in torch (it freezes the weights: a warm-start check)
RANGES = {"lr": NON_NEGATIVE, "weight_decay": NON_NEGATIVE, "momentum": NON_NEGATIVE, "dampening": NON_NEGATIVE,
          "eps": NON_NEGATIVE, "alpha": NON_NEGATIVE, "lr_decay": NON_NEGATIVE}

for _name, _cls in {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}.items():
    REGISTRIES["optimizers"].add(_name, _cls, injected=("params",), ranges=RANGES)
