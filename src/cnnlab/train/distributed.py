"""torch.distributed, from the start: `torchrun --nproc-per-node N -m cnnlab train ...` is the
multi-process path. Rank 0 logs and writes files; every rank computes; metrics are summed."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_from_env(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes in the environment (single process otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_flag(value: bool, info: DistInfo) -> bool:
    """Rank 0 decides (stop, time budget), every rank follows, so no rank waits alone at a collective."""
    if not info.enabled:
        return value
    flag = torch.tensor([1 if value else 0], dtype=torch.int32)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
