"""torch.distributed for runs started by ``torchrun`` (gloo on CPU, NCCL on CUDA), and the few collectives
that make a run's answer independent of how many processes compute it.

The global batch of a step is one list of rows; rank ``r`` of ``W`` holds rows ``r, r + W, r + 2W, ...``
(:class:`sslkit.data.stream.Stream`). :func:`gather_rows` puts a tensor of a rank's rows back into that
one list, so a loss or relation that couples the rows of a batch (contrastive negatives, a k-NN graph)
sees exactly what one process sees; :func:`my_rows` takes a rank's rows out of it again. Evaluation
splits the test rows into contiguous shards (:func:`shard`), one per rank, whose sums
:func:`sum_over_ranks` adds up, so every row counts once.
"""
from __future__ import annotations

import gc
import os
from datetime import timedelta

import torch
import torch.distributed as dist

_owned = False  # whether init() created the process group (a user's script may have made its own)


def world() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment; (0, 0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init(device: torch.device) -> None:
    global _owned
    if world()[2] > 1 and not dist.is_initialized():
        if device.type == "cuda":  # this rank's GPU for NCCL's own buffers (object collectives use it)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        _owned = True


def active() -> bool:
    """Whether this process is one of several (an initialised process group of more than one rank)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """The number of processes computing this run (1 without a process group)."""
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if active() else 0


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


class _GatherRows(torch.autograd.Function):
    """All ranks' rows in global-batch order; the backward sums every rank's gradient for the gathered rows
    and keeps this rank's. DDP then averages the ranks' parameter gradients, so with a loss computed on the
    gathered rows the step is the one a single process takes on the global batch."""

    @staticmethod
    def forward(ctx, x):
        W = dist.get_world_size()
        parts = [torch.empty_like(x) for _ in range(W)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.world = dist.get_rank(), W
        # row j of rank r is row j * W + r of the global batch
        return torch.stack(parts, 1).flatten(0, 1)

    @staticmethod
    def backward(ctx, grad):
        return _AllSum.apply(grad)[ctx.rank::ctx.world]  # differentiable again (a gradient penalty's backward)


class _AllSum(torch.autograd.Function):
    """The sum over the ranks, whose gradient is the sum of every rank's gradient (every rank's loss
    depends on the sum)."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        return _AllSum.apply(grad)  # the sum's own adjoint, itself differentiable (double backward)


def all_sum_with_grad(x: torch.Tensor) -> torch.Tensor:
    """``x`` summed over the ranks, differentiable (``x`` itself in one process): for statistics of the
    global batch that a loss depends on, such as :class:`sslkit.sync_batchnorm.GlobalBatchNorm`'s."""
    return _AllSum.apply(x) if active() else x


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """The global batch of which ``x`` holds this rank's rows (``x`` itself in one process). Differentiable:
    gradients reach this rank's rows from the loss on every rank."""
    if not active():
        return x
    if x.requires_grad:
        return _GatherRows.apply(x)
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.stack(parts, 1).flatten(0, 1)


def my_rows(x: torch.Tensor) -> torch.Tensor:
    """This rank's rows of a global-batch tensor (the inverse of :func:`gather_rows`)."""
    if not active():
        return x
    return x[dist.get_rank()::dist.get_world_size()]


def _share(n: int, r: int, W: int) -> tuple[int, int]:
    return r * n // W, (r + 1) * n // W


def for_my_rows(draw, n: int):
    """``draw(N)`` called for the global batch's ``N = n * world_size()`` rows, cut down to this rank's ``n``
    rows (every tensor of a tuple; ``None`` stays): random numbers a row gets in training (latent noise, a
    mask) come from torch's generator in the order one process draws them. Every rank draws the same global
    shapes, so the generators stay together; a draw made for a rank's own rows only (dropout) parts them."""
    W = world_size()
    out = draw(n * W)
    if W == 1:
        return out
    if isinstance(out, tuple):
        return tuple(None if t is None else my_rows(t) for t in out)
    return my_rows(out)


def on_global_rows(fn, *xs: torch.Tensor):
    """``fn(*xs)`` (a random corruption of token rows: a mask, noise, a permutation, a pairing) applied to
    the global batch's rows of each ``x``, every tensor it returns cut down to this rank's rows: the
    corruption a row gets does not depend on the number of processes. The ``xs`` are gathered without
    gradient (token ids)."""
    if not active():
        return fn(*xs)
    out = fn(*(gather_rows(x) for x in xs))
    if isinstance(out, tuple):
        return tuple(None if t is None else my_rows(t) for t in out)
    return my_rows(out)


def shard_range(n: int) -> tuple[int, int]:
    """This rank's contiguous share ``[start, stop)`` of ``n`` items: sizes differ by at most one, none is
    repeated and none left out when ``n`` does not divide."""
    if not active():
        return 0, n
    return _share(n, dist.get_rank(), dist.get_world_size())


def shard(data):
    """This rank's share of the rows of a :class:`~sslkit.data.TensorData` (all of it in one process)."""
    start, stop = shard_range(len(data))
    if (start, stop) == (0, len(data)):
        return data
    return data.subset(torch.arange(start, stop))


def _collective_device(x: torch.Tensor) -> torch.device:
    """Where ``x`` must be for a collective: NCCL reduces CUDA tensors only."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else x.device


def all_sum(x: torch.Tensor) -> torch.Tensor:
    """``x`` summed over the ranks (a new tensor, no gradient; ``x`` itself in one process)."""
    if not active():
        return x
    y = x.detach().to(_collective_device(x), copy=True)
    dist.all_reduce(y)
    return y.to(x.device)


def global_count(n: int) -> float:
    """The divisor of a mean over the global batch, for a rank holding ``n`` of its items (targets, pairs,
    tokens): their global count over the number of ranks (``n`` itself in one process). A loss that sums
    its rank's items and divides by it has the global mean as the ranks' mean, and DDP's averaged gradient
    is the global mean's, however unevenly the items fall on the ranks."""
    if not active():
        return float(n)
    return sum_over_ranks(n)[0] / dist.get_world_size()


def global_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean over the ranks of a per-rank scalar (no gradient; ``x`` in one process): for a logged
    metric that must be a function of the global value, such as a perplexity."""
    return all_sum(x) / world_size() if active() else x


def all_max(x: torch.Tensor) -> torch.Tensor:
    """``x``'s largest value over the ranks (``x`` itself in one process)."""
    if not active():
        return x
    y = x.detach().to(_collective_device(x), copy=True)
    dist.all_reduce(y, op=dist.ReduceOp.MAX)
    return y.to(x.device)


def sum_over_ranks(*values: float) -> list[float]:
    """Each number summed over the ranks, in float64 (unchanged in one process)."""
    if not active():
        return list(values)
    return all_sum(torch.tensor([float(v) for v in values], dtype=torch.float64)).tolist()


def mean_over_ranks(values: dict) -> dict:
    """Each named number averaged over the ranks that have it (a metric a rank's batch leaves undefined,
    such as an accuracy over no row, is missing there; the union of the names comes back)."""
    if not active():
        return values
    names = [None] * dist.get_world_size()
    dist.all_gather_object(names, sorted(values))
    union = sorted(set().union(*names))
    t = torch.tensor([float(values.get(k, 0.0)) for k in union] + [float(k in values) for k in union],
                     dtype=torch.float64)
    t = all_sum(t)
    total, count = t[:len(union)], t[len(union):]
    return {k: float(v / c) for k, v, c in zip(union, total, count)}


def gather_shards(x: torch.Tensor, n: int) -> torch.Tensor:
    """The rows of every rank's :func:`shard` of ``n`` rows, in order, from this rank's ``x``."""
    if not active():
        return x
    W = dist.get_world_size()
    sizes = [b - a for a, b in (_share(n, r, W) for r in range(W))]
    if x.dim() == 2:  # an empty share may come back as [0, 0]: take the features' width from the others
        width = int(all_max(torch.tensor(x.shape[1])))
        x = x if x.shape[1] == width else x.new_zeros(0, width)
    padded = torch.zeros((max(sizes), *x.shape[1:]), dtype=x.dtype, device=_collective_device(x))
    padded[:len(x)] = x
    parts = [torch.empty_like(padded) for _ in range(W)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:k] for p, k in zip(parts, sizes)]).to(x.device)


_FAILED = "sslkit/failed"  # the key under which the first rank to fail leaves its reason
_LOST_PEER = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "Socket Timeout",
              "NCCL communicator was aborted", "Connection refused")


def _store():
    """A client of torchrun's key-value store (``MASTER_ADDR:MASTER_PORT``), or None."""
    addr, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    if not (addr and port):
        return None
    try:
        return dist.TCPStore(addr, int(port), is_master=False, timeout=timedelta(seconds=5))
    except Exception:  # the store went with the launcher: nothing to tell or learn
        return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def lost_peer(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that failed because another process of the run went away."""
    return isinstance(exc, RuntimeError) and any(s in str(exc) for s in _LOST_PEER)


def failed_anywhere(bad: bool) -> bool:
    """Whether ``bad`` holds on any rank (``bad`` in one process): a rank that stops alone would leave the
    others waiting in the next collective."""
    if not active():
        return bad
    return bool(all_sum(torch.tensor(float(bad), dtype=torch.float64)) > 0)


def explain_failure(exc: BaseException) -> BaseException:
    """What a rank raises when its run fails under ``torchrun``. The rank whose own error stopped the run
    leaves a line for the others in torchrun's store and raises ``exc`` unchanged; a rank whose collective
    failed because another process went away raises one line naming that rank and its error (or, when it
    left no word, that it was killed), instead of the communication library's traceback."""
    if world()[2] == 1:
        return exc
    from .errors import TrainingError

    rank = world()[0]
    store = _store()
    if not lost_peer(exc):
        if store is not None:
            try:
                store.compare_set(_FAILED, "", f"rank {rank} failed: {_first_line(exc)}")
            except Exception:
                pass
        return exc
    reason = None
    if store is not None:
        try:
            store.wait([_FAILED], timedelta(seconds=3))
            reason = store.get(_FAILED).decode()
        except Exception:
            reason = None
    if reason is None:
        reason = "another process of this run stopped without an error of its own (killed? e.g. out of memory)"
    return TrainingError(f"{reason}; rank {rank} stopped with it ({_first_line(exc)})")


def shutdown() -> None:
    global _owned
    if dist.is_initialized() and _owned:
        # the finished run's Trainer sits in reference cycles, so without a collection its DDP model (whose
        # reducer holds the process group) outlives the group and is freed at some later collection, possibly
        # at interpreter exit, when gloo's threads can no longer be joined: a likely cause of the rare rank
        # abort "terminate called without an active exception" seen at the end of DDP runs
        gc.collect()
        dist.destroy_process_group()
        _owned = False
