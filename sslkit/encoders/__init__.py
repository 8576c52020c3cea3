"""Encoders map an input batch ``x`` to features ``[B, out_dim]``; heads live with objectives.
Each module registers its encoder under ``encoders``."""
from .base import Encoder

__all__ = ["Encoder"]
