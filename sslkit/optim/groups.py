"""Optimizer parameter groups at scaled learning rates, offered by an encoder (layer-wise decay)."""
from __future__ import annotations

from ..encoders.capabilities import ParameterGroups
from ..registry import registry


def parameter_groups(encoder, params: list, opt_cfg: dict):
    """``params`` as optimizer groups when ``encoder`` scales some of them (capability ``ParameterGroups``):
    each group ``{"params": [...], "lr": lr * scale}``, the unscaled parameters (objective heads ...)
    first at ``lr``; otherwise ``params`` unchanged. ``lr`` is ``opt_cfg``'s, or the optimizer's default."""
    offered = encoder.parameter_groups() if isinstance(encoder, ParameterGroups) else []
    if not offered:
        return params
    lr = opt_cfg.get("lr", registry("optimizers").get(opt_cfg["name"], "trainer.optimizer.name").params["lr"].default)
    scale = {id(p): s for ps, s in offered for p in ps}
    groups = {}
    for p in params:
        groups.setdefault(scale.get(id(p), 1.0), []).append(p)
    order = sorted(groups, key=lambda s: (s != 1.0, -s))
    return [{"params": groups[s], "lr": lr * s} for s in order]
