"""Devices and data parallelism in torch: one process per device under torchrun, gradients
averaged by ``DistributedDataParallel`` (NCCL between GPUs, gloo on CPU)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ...distributed import Parallel
from ...errors import BackendError
from .. import check_device


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """cpu, or the CUDA device of this process (``cuda:LOCAL_RANK`` under torchrun)."""
    check_device(device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendError("device 'cuda' was requested but this PyTorch build sees no CUDA "
                           f"GPU (torch {torch.__version__}); use --device cpu or auto")
    if device == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise BackendError(f"local rank {local_rank} has no GPU of its own (this host has "
                               f"{torch.cuda.device_count()}); start at most that many "
                               f"processes per node")
        return torch.device("cuda", local_rank)
    return torch.device(device)


def free_memory(device: str, local_rank: int = 0) -> tuple[int, str] | None:
    """(free bytes, where from) of the GPU that ``device`` resolves to; None for the CPU."""
    resolved = resolve_device(device, local_rank)
    if resolved.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(resolved)
    return free, f"torch.cuda.mem_get_info of {resolved}"


def join_process_group(device: torch.device, parallel: Parallel) -> None:
    """Join torchrun's process group (env://): NCCL between GPUs, gloo on CPU."""
    import torch.distributed as dist

    if parallel.local_devices != 1:
        raise BackendError("the torch backend runs one device per process; start one "
                           "process per device with torchrun (convspec train --nproc N)")
    if not dist.is_available():
        raise BackendError("this PyTorch build has no torch.distributed; cannot train on "
                           f"{parallel.processes} processes")
    if dist.is_initialized():
        if dist.get_world_size() != parallel.processes:
            raise BackendError(f"a process group of {dist.get_world_size()} is already "
                               f"running, not the {parallel.processes} expected")
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def data_parallel(net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` under DistributedDataParallel (after its weights are loaded: DDP starts every
    rank from rank 0's copy)."""
    from torch.nn.parallel import DistributedDataParallel

    # A kernel with one input channel: its gradient and DDP's bucket view differ only in the
    # stride of a size-1 dimension (same memory order); the copy this warning is about costs a
    # few hundred floats per step.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
    return DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda"
                                   else None, forward_sync_buffers=False,
                                   gradient_as_bucket_view=True)


def all_reduce(values: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """``values`` reduced in place over every rank (``op``: "sum" or "max")."""
    import torch.distributed as dist

    dist.all_reduce(values, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return values


def broadcast(values: torch.Tensor) -> torch.Tensor:
    """``values`` replaced in place by rank 0's."""
    import torch.distributed as dist

    dist.broadcast(values, src=0)
    return values


def leave_process_group() -> None:
    """Leave the process group (after the last collective call). Every rank waits for the
    others first: a rank tearing gloo down while a peer still talks to it aborts the peer
    ("terminate called without an active exception", seen under load)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
