"""Device-specific speed-ups of the model that change no result beyond float rounding: image encoders
in ``channels_last`` memory layout on CUDA (what cuDNN's fastest convolutions and bf16 tensor cores
want), and ``torch.compile`` on request (``trainer.compile: true``)."""
from __future__ import annotations

import torch

from .encoders.capabilities import ImageEncoder


def accelerate(model, device: torch.device, compile_: bool = False) -> None:
    """Convert ``model.encoder`` in place: ``channels_last`` when it is an image encoder on CUDA, and
    compiled with ``nn.Module.compile`` (in place, so parameter names and checkpoints are unchanged)."""
    encoder = model.encoder
    if device.type == "cuda" and isinstance(encoder, ImageEncoder):
        encoder.to(memory_format=torch.channels_last)
    if compile_:
        encoder.compile()
