"""Device selection, seeding, determinism and mixed precision."""

from __future__ import annotations

import contextlib
import os
import random

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
    """Seed Python and torch (all devices); in deterministic mode also force deterministic kernels."""
    random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


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
