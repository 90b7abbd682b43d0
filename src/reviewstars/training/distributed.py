"""Several processes: what every process must agree on.

Under `torchrun` / `accelerate launch` every process runs this same code, one per
device, and the Trainer averages their gradients (DDP). Whatever ends or shapes a run
from outside the data (the clock, Ctrl-C, the budget plan) must then be agreed on by
all processes, or one would stop while the others wait for it forever.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import Any

import torch


def distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def several_processes() -> bool:
    """Launched as one of several (torchrun / accelerate set WORLD_SIZE), even before the process group exists."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def shared_max(value: float, device: torch.device | str = "cpu") -> float:
    """The largest `value` over all processes (just `value` in one process)."""
    if not distributed():
        return value
    if torch.distributed.get_backend() == "nccl" and torch.device(device).type == "cpu":
        device = torch.device("cuda", torch.cuda.current_device())
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
    return float(tensor.item())


def main_process_first():
    """A block the first process runs before the others (to make what they then read)."""
    if several_processes():
        from accelerate import PartialState

        return PartialState().main_process_first()
    return nullcontext()


def from_main_process(obj: Any) -> Any:
    """Rank 0's `obj` on every process."""
    if not distributed():
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]
