"""Splitting work across processes and gathering what they found: the one rule for every command under torchrun.

Each process takes one contiguous block of the work, in rank order (accelerate's ``split_between_processes``), and
``gather`` gives every process the list of all processes' results in rank order, so blocks put back together come
in input order. Without torchrun there is one process and both do nothing. (Ray, ``--engine ray``, is another
engine: it schedules videos itself.)
"""

from __future__ import annotations

import atexit
import functools

import torch
from accelerate import PartialState
from accelerate.utils import gather_object


def process_state() -> PartialState:
    """accelerate's view of the processes, shared with the Trainer's; it joins torchrun's process group."""
    # Without a GPU, accelerate only sees torchrun's processes when told to use the CPU (gloo).
    state = PartialState(cpu=not torch.cuda.is_available())
    if state.num_processes > 1:
        _leave_group_at_exit()
    return state


@functools.cache  # registered once
def _leave_group_at_exit() -> None:
    atexit.register(_leave_group)


def _leave_group() -> None:
    # A process that exits with its gloo group still open can abort in the group's threads ("terminate called
    # without an active exception"), failing a run that did all its work.
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0 and 1 without torchrun)."""
    state = process_state()
    return state.process_index, state.num_processes


def my_share(items: list) -> list:
    """This process's contiguous block of ``items``: sizes differ by at most one, blocks in rank order."""
    state = process_state()
    if state.num_processes == 1:
        return list(items)
    with state.split_between_processes(list(items)) as mine:
        return list(mine)


def gather(result) -> list:
    """Every process's ``result``, in rank order, on every process (``[result]`` without torchrun)."""
    if process_state().num_processes == 1:
        return [result]
    return gather_object([result])


def process_device(device: str) -> str:
    """``auto`` under torchrun: this process's own GPU (LOCAL_RANK) when there are GPUs; any other device as given."""
    state = process_state()
    if device == "auto" and state.num_processes > 1 and torch.cuda.is_available():
        return str(state.device)
    return device
