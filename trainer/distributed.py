"""Process-group helpers that keep gathered losses exact under DDP: differentiable all-gather, reductions.

Gradient convention (why the gather's backward *sums*). DDP averages gradients over the R ranks. Rank r
computes a loss ``loss_r`` from its local embeddings ``z_r`` and, through :func:`gather`, from every rank's
embeddings. The backward of :func:`gather` all-reduces (sums) the gradient of the gathered tensor, so rank r
receives ``d(sum_s loss_s) / d z_r`` for its local slice, and after DDP's averaging the update is the gradient
of ``(1 / R) * sum_s loss_s``. Hence the rule every pretext follows:

    the mean over ranks of the per-rank losses must equal the single-process loss on the global batch.

A loss computed entirely on gathered tensors is identical on every rank (mean = itself); a loss averaged over
the local samples (NT-Xent anchors, BYOL pairs, DINO pairs) averages to the global mean because every rank
holds the same number of samples. Under that rule 2 ranks with B/2 each take the same step as 1 rank with B.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn


def is_distributed() -> bool:
    """True when a default process group is initialised with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """Rank of this process in the default group (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class _GatherWithSummedGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward sums the gradient over ranks and returns the local slice."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, local: Tensor) -> Tensor:  # type: ignore[override]
        pieces = [torch.empty_like(local) for _ in range(dist.get_world_size())]
        dist.all_gather(pieces, local.contiguous())
        ctx.local_size = local.shape[0]  # type: ignore[attr-defined]
        return torch.cat(pieces, dim=0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = dist.get_rank() * ctx.local_size  # type: ignore[attr-defined]
        return grad[start : start + ctx.local_size]  # type: ignore[attr-defined]


_EQUAL_SIZES: set[tuple[int, int]] = set()
"""(world size, batch size) pairs already found equal on every rank: the loaders give every rank the same batch
size, so each size is checked once, not on every call (the check is an all-gather and a host sync)."""


def gather(local: Tensor) -> Tensor:
    """Every rank's ``local`` concatenated along dim 0 in rank order, keeping gradients (see module doc).

    The first gather of each batch size checks that every rank has it (unequal sizes would hang NCCL)."""
    if not is_distributed():
        return local
    key = (world_size(), local.shape[0])
    if key not in _EQUAL_SIZES:
        sizes = _all_gather_sizes(local)
        if len(set(sizes)) != 1:
            raise ValueError(
                f"gather needs the same batch size on every rank, got {sizes}; "
                "drop the last incomplete batch or use a loader that gives every rank equal batches"
            )
        _EQUAL_SIZES.add(key)
    return _GatherWithSummedGrad.apply(local)


def _all_gather_sizes(local: Tensor) -> list[int]:
    """Every rank's batch size (dim 0 of ``local``): unequal sizes would hang NCCL's all-gather."""
    size = torch.tensor([local.shape[0]], device=local.device)
    sizes = [torch.empty_like(size) for _ in range(world_size())]
    dist.all_gather(sizes, size)
    return [int(s.item()) for s in sizes]


@torch.no_grad()
def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum of ``tensor`` over ranks, returned as a new tensor (no gradient)."""
    total = tensor.detach().clone()
    if is_distributed():
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


@torch.no_grad()
def all_reduce_mean(tensor: Tensor) -> Tensor:
    """Mean of ``tensor`` over ranks, returned as a new tensor (no gradient)."""
    return all_reduce_sum(tensor) / world_size()


@torch.no_grad()
def broadcast_from_rank_zero(tensor: Tensor) -> Tensor:
    """Rank 0's ``tensor`` on every rank (in place), so that decisions taken from per-rank values agree."""
    if is_distributed():
        dist.broadcast(tensor, src=0)
    return tensor


def convert_sync_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm by SyncBatchNorm so batch statistics cover the global batch (GPU DDP only)."""
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)
