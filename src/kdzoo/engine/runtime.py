"""Device selection, seeding, determinism and mixed precision."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an unavailable device is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r} is not a device name; use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} asked for CUDA, but PyTorch sees no CUDA GPU here. Use --device cpu "
                          f"(or auto).")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {name}: the MPS backend is not available on this machine. Use --device cpu.")
    return device


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python and torch (all devices); deterministic kernels on in deterministic mode, off otherwise (the
    process's own settings come back when the run ends: :func:`isolated_run`)."""
    random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


#: The environment variable deterministic mode sets (cuBLAS reads it when it starts).
CUBLAS_CONFIG = "CUBLAS_WORKSPACE_CONFIG"


@dataclass(frozen=True)
class ProcessState:
    """The process-wide torch, NumPy and Python settings a run may change: the deterministic switch, cuDNN's
    flags, the default dtype, the thread counts, float32 matmul precision, cuBLAS's workspace variable and the
    global random generators."""

    deterministic: tuple[bool, bool]
    cudnn: tuple[bool, bool]
    dtype: torch.dtype
    threads: tuple[int, int]
    matmul_precision: str
    cublas_config: str | None
    rng: tuple[Any, ...]

    @classmethod
    def now(cls) -> ProcessState:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        return cls(
            deterministic=(torch.are_deterministic_algorithms_enabled(),
                           torch.is_deterministic_algorithms_warn_only_enabled()),
            cudnn=(torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic),
            dtype=torch.get_default_dtype(),
            threads=(torch.get_num_threads(), torch.get_num_interop_threads()),
            matmul_precision=torch.get_float32_matmul_precision(),
            cublas_config=os.environ.get(CUBLAS_CONFIG),
            rng=(torch.get_rng_state(), cuda, np.random.get_state(), random.getstate()))

    def restore(self) -> None:
        torch.use_deterministic_algorithms(self.deterministic[0], warn_only=self.deterministic[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = self.cudnn
        torch.set_default_dtype(self.dtype)
        threads, interop = self.threads
        torch.set_num_threads(threads)
        if torch.get_num_interop_threads() != interop:  # settable once per process: only a run that set it
            torch.set_num_interop_threads(interop)
        torch.set_float32_matmul_precision(self.matmul_precision)
        if self.cublas_config is None:
            os.environ.pop(CUBLAS_CONFIG, None)
        else:
            os.environ[CUBLAS_CONFIG] = self.cublas_config
        cpu, cuda, numpy_state, python = self.rng
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        np.random.set_state(numpy_state)
        random.setstate(python)


@contextlib.contextmanager
def isolated_run() -> Iterator[None]:
    """Around one run in a process that may run others (``kdzoo bench --jobs 1``, a script calling
    :func:`kdzoo.engine.train` twice): whatever :class:`ProcessState` the run sets is put back when it ends, however
    it ends, so the next run starts from the process's own settings, not the last run's."""
    saved = ProcessState.now()
    try:
        yield
    finally:
        saved.restore()


def amp_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """The autocast dtype of ``--amp bf16|fp16`` (None for ``none``); fp16 without CUDA is refused."""
    if amp == "none":
        return None
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError("--amp fp16 needs a CUDA GPU; use --amp bf16 or none on this device.")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def autocast(device: torch.device, amp: str):
    """An autocast context for ``--amp bf16|fp16`` (a no-op context for ``none``)."""
    dtype = amp_dtype(device, amp)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)


def rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
