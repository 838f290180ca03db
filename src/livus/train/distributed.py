"""Data-parallel training with ``torch.distributed`` (``livus train detector --ddp`` under
``torchrun``): gloo on CPU, NCCL on GPUs.

Every rank draws the same epoch order (same sampler seed, same per-image losses, gathered from
all ranks), splits each global batch into contiguous shares, one per rank, and scales its loss
by its share of the batch, so the averaged gradient is that of the whole global batch — the
same step as one process, except for batch-norm statistics, which are per rank on CPU
(``SyncBatchNorm`` needs a GPU) and global with NCCL (:func:`wrap_model`). Rank 0 validates,
logs and saves; the others only train.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class DistContext:
    """This process's place in a ``torch.distributed`` job (``rank`` of ``world``)."""

    rank: int
    world: int
    local_rank: int
    backend: str  # gloo | nccl

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, chunk: np.ndarray) -> tuple[np.ndarray, float]:
        """This rank's contiguous part of a global batch and its loss scale
        ``world · len(part) / len(chunk)`` (1 when the batch divides evenly): with DDP's gradient
        average, the step is the gradient of the mean loss over the whole batch."""
        part = np.array_split(chunk, self.world)[self.rank]
        return part, self.world * len(part) / len(chunk)

    def barrier(self) -> None:
        torch.distributed.barrier()

    def all_gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (picklable objects)."""
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Element-wise sum over ranks of a float vector."""
        t = torch.as_tensor(np.asarray(values, dtype=np.float64))
        if self.backend == "nccl":
            t = t.cuda()
        torch.distributed.all_reduce(t)
        return t.cpu().numpy()


def is_main(ctx: DistContext | None) -> bool:
    """True in a single process and on rank 0 (the one that writes files)."""
    return ctx is None or ctx.is_main


def init_from_env(device: str) -> DistContext:
    """Join the process group that ``torchrun`` describes (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``): NCCL for ``device = cuda`` (this rank's GPU
    = ``LOCAL_RANK``), gloo otherwise."""
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ValueError(f"--ddp: start with torchrun (missing {', '.join(missing)}), e.g. "
                           "torchrun --nproc-per-node 2 -m livus.cli train detector --ddp ...")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    backend = "nccl" if device == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend)
    return DistContext(torch.distributed.get_rank(), torch.distributed.get_world_size(), local_rank, backend)


def wrap_model(model: nn.Module, ctx: DistContext) -> nn.Module:
    """``model`` (already on its device) in ``DistributedDataParallel``; with NCCL its batch
    norms become ``SyncBatchNorm`` (statistics over the global batch)."""
    from torch.nn.parallel import DistributedDataParallel

    if ctx.backend == "nccl":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[ctx.local_rank])
    return DistributedDataParallel(model)


def close() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def main_first(ctx: DistContext | None, fn: Any) -> Any:
    """``fn()`` on rank 0 first, then on the others (e.g. a cache that rank 0 builds and saves
    and the others then load); simply ``fn()`` in a single process."""
    if ctx is None:
        return fn()
    if ctx.is_main:
        out = fn()
        ctx.barrier()
        return out
    ctx.barrier()
    return fn()
