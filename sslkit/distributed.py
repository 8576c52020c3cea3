"""torch.distributed set-up for runs started by ``torchrun`` (gloo on CPU, NCCL on CUDA)."""
from __future__ import annotations

import gc
import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment; (0, 0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init(device: torch.device) -> None:
    if world()[2] > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def is_main() -> bool:
    return world()[0] == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def broadcast(obj):
    """Rank 0's value of ``obj`` on every rank."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shutdown() -> None:
    if dist.is_initialized():
        # the finished run's Trainer sits in reference cycles, so without a collection its DDP model (whose
        # reducer holds the process group) outlives the group and is freed at some later collection, possibly
        # at interpreter exit, when gloo's threads can no longer be joined: a likely cause of the rare rank
        # abort "terminate called without an active exception" seen at the end of DDP runs (fifth session)
        gc.collect()
        dist.destroy_process_group()
