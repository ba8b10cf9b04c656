"""The few collective steps the training loop needs, on torch.distributed's default group.

Without a process group (one process) each is the trivial single-process answer, so the
loop has one code path for one process and for DDP.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def barrier() -> None:
    if active():
        dist.barrier()


def broadcast(value: T, source: int = 0) -> T:
    """Rank `source`'s value on every rank (any picklable object)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=source)
    return box[0]


def gather(value: Any, destination: int = 0) -> list[Any] | None:
    """Every rank's value, in rank order, on rank `destination`; None elsewhere."""
    if not active():
        return [value]
    gathered = [None] * world_size() if rank() == destination else None
    dist.gather_object(value, gathered, dst=destination)
    return gathered


def broadcast_module(module: torch.nn.Module, source: int = 0) -> None:
    """Rank `source`'s parameters and buffers on every rank (before the first self-play,
    when unseeded ranks may have initialised differently). Sent as one object, so it works
    whatever device the backend wants its tensors on."""
    if not active():
        return
    state = broadcast(module.state_dict() if rank() == source else None, source)
    module.load_state_dict(state)


def share(count: int, parts: int, index: int) -> int:
    """Part `index` of `count` things split as evenly as possible into `parts`."""
    return count // parts + (index < count % parts)
