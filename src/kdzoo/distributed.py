"""Distributed training on PyTorch's own engine: ``torchrun`` + ``torch.distributed`` + DDP.

``torchrun --nproc-per-node N -m kdzoo distill ...`` starts N processes with ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` set; :func:`setup` joins the process group (NCCL on CUDA, gloo on
CPU) and picks the process's device (``cuda:LOCAL_RANK``). Without those variables everything here
is a no-op, so single-process code needs no branches.

Conventions: ``--batch-size`` is per process (global batch = batch size x world size); rank r's
j-th sample of a step is sample ``j * world_size + r`` of the global batch (the data layer's strided
sharding), which :func:`gather_batch` restores. Methods with state over the whole dataset (CRD's
memory banks) gather the global batch so that every rank keeps the same state as one process
trained with the global batch would.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from .errors import ConfigError

#: How long a rank waits for the others in a collective before failing (instead of hanging).
TIMEOUT = datetime.timedelta(minutes=10)


def launched() -> bool:
    """True when this process was started by torchrun (or another launcher) with WORLD_SIZE > 1."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes logs, checkpoints and progress."""
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group when launched by torchrun; returns the device this process trains on."""
    if not launched():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ConfigError(f"Distributed training supports CUDA (NCCL) and CPU (gloo) devices, not {device.type}.")
    if not is_distributed():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    return device


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """``tensor`` summed over ranks, in place (unchanged in a single process)."""
    if is_distributed():
        dist.all_reduce(tensor)
    return tensor


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on at least one (e.g. a non-finite loss)."""
    if not is_distributed():
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def average_gradients(parameters) -> None:
    """Average the gradients of ``parameters`` over ranks (for modules trained outside DDP)."""
    if not is_distributed():
        return
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(world_size())


def wrap(module: nn.Module, device: torch.device, find_unused: bool = False,
         broadcast_buffers: bool = True) -> nn.Module:
    """``module`` in :class:`~torch.nn.parallel.DistributedDataParallel` when distributed and it has
    trainable parameters (gradients averaged over ranks); otherwise ``module`` itself."""
    if not is_distributed() or not any(p.requires_grad for p in module.parameters()):
        return module
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=find_unused, broadcast_buffers=broadcast_buffers)


def gather_batch(x: Tensor) -> Tensor:
    """The global batch of ``x`` (no gradient), in the order one process would see it: rank r's j-th
    row is row ``j * world_size + r``. Every rank must pass the same number of rows."""
    if not is_distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    return torch.stack(parts, dim=1).reshape(-1, *x.shape[1:])


def local_rows(x: Tensor) -> Tensor:
    """This rank's rows of a global batch laid out as :func:`gather_batch` returns it."""
    if not is_distributed():
        return x
    return x.reshape(-1, world_size(), *x.shape[1:])[:, rank()]


#: What gloo and NCCL say when a collective fails because another process of the job is gone.
LOST_PEER = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "NCCL communicator was aborted",
             "ProcessGroupNCCL", "timed out", "Timed out")


def lost_peer(exc: BaseException) -> bool:
    """True when ``exc`` is a collective that failed because another process of the job stopped or hung
    (it then fails on every surviving rank, at the latest after :data:`TIMEOUT`)."""
    return is_distributed() and (isinstance(exc, dist.DistError) or any(s in str(exc) for s in LOST_PEER))


def lost_peer_message(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (f"lost contact with another process of the torchrun job ({first}). A process or a node of the job "
            f"stopped or hung: see its own output. Every finished epoch is saved in the run folder; start the job "
            f"again with --resume RUN_DIR (the folder printed at the start).")


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank (e.g. the run folder name)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
