"""BatchNorm over the global batch under ``torchrun`` (``trainer.sync_batchnorm: true``).

In training, BatchNorm normalises with the statistics of the batch it sees. Under DDP each rank sees its
own rows, so without synchronisation the statistics (and with them the loss, the gradients and the running
averages) depend on the number of processes; the smaller a rank's share, the noisier they are, which
matters for contrastive projection heads and small per-device batches. Synchronised, every rank normalises
with the mean and variance of the whole global batch, as one process does. torch's ``SyncBatchNorm`` does
this for CUDA inputs only, so on the CPU :class:`GlobalBatchNorm` computes the same with two ``all_reduce``
sums. Off by default (as in torch, lightly and solo-learn): it adds a collective per BatchNorm layer and
forward pass.
"""
from __future__ import annotations

import torch
from torch import nn

from .distributed import active, all_sum, all_sum_with_grad


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm (any input of shape ``[N, C, ...]``) whose training statistics are the mean and the biased
    variance of every rank's rows together (two-pass: the mean first, then the squared deviations from it);
    the running variance takes the unbiased one, as :class:`torch.nn.BatchNorm1d` does. In eval mode, or in
    one process, it is plain BatchNorm."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected an input of at least 2 dimensions, got {x.dim()}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and active()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        # every rank's values per channel (ranks may hold different numbers of rows)
        count = float(all_sum(torch.tensor(float(x.numel() // x.shape[1]), dtype=torch.float64)))
        mean = all_sum_with_grad(x.sum(dims)) / count
        var = all_sum_with_grad(((x - mean.view(shape)) ** 2).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * count / max(count - 1, 1), alpha=m)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` with every BatchNorm layer synchronised over the ranks: torch's ``SyncBatchNorm`` on CUDA,
    :class:`GlobalBatchNorm` elsewhere (the same parameters, buffers and state-dict keys)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
        return out
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device))
    return module
