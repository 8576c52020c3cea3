"""PyTorch's own optimizers, registered by name; their keyword arguments are the recipe keys."""
from __future__ import annotations

import torch

from ..registry import REGISTRIES

for _name, _cls in {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}.items():
    REGISTRIES["optimizers"].add(_name, _cls, injected=("params",))
