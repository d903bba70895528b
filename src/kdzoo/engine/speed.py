"""The fast path: how a run computes on its device (mixed precision, memory format, torch.compile, the
optimiser's implementation, CPU threads), resolved once from the flags and the device, and printed at the
start of the run.

Defaults (flags left unset) follow the measurements of ``benchmarks/speed.py`` (docs/guide/speed.md):

- ``--amp auto``: bf16 autocast on CUDA GPUs that support it (the step in bf16, the losses in float32, no
  loss scaling to tune), full precision elsewhere (CPUs without bf16 matrix units run bf16 slower than fp32).
- ``--channels-last``: on CUDA (tensor-core convolutions want NHWC) for both networks. On CPUs for the frozen
  teacher only: oneDNN's inference convolutions run NHWC without reordering (resnet32x4's forward took 29 %
  less time on a 2-core AVX2 CPU), while the student's backward does not gain (the whole step in NHWC: +4 %,
  inside the noise). ``--channels-last`` / ``--no-channels-last`` set both networks.
- ``--compile``: opt-in everywhere; compiling the student, the teacher and the loss takes minutes on a small CPU
  (5 minutes for resnet8 -> resnet8 on 2 busy cores), more than a short run gains (docs/guide/speed.md).
- the optimiser's step: fused on CUDA (one kernel for all parameters); torch's own for-loop on CPU, where the
  multi-tensor (``foreach``) step was not faster.
- the frozen teacher runs under ``torch.inference_mode`` (no autograd bookkeeping at all).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import RunConfig
from .runtime import amp_dtype


@dataclass(frozen=True)
class SpeedPlan:
    """The resolved choices; ``compile`` is a torch.compile mode or None (eager)."""

    amp: str
    channels_last: bool
    teacher_channels_last: bool
    compile: str | None
    optimizer_impl: str  # "fused", "foreach" or "for-loop"
    threads: int | None  # CPU intra-op threads (None on accelerators)


def default_amp(device: torch.device) -> str:
    """``--amp auto``: bf16 where the device computes it natively (CUDA with bf16 support), else none."""
    return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "none"


def default_teacher_channels_last(device: torch.device) -> bool:
    """A frozen teacher's default layout: channels-last on CUDA and on CPUs (oneDNN's inference convolutions)."""
    return device.type in ("cuda", "cpu")


def plan_speed(cfg: RunConfig, device: torch.device) -> SpeedPlan:
    """The choices for ``cfg`` on ``device``: given flags win, ``auto``/unset ones take the device's default."""
    amp = default_amp(device) if cfg.amp == "auto" else cfg.amp
    amp_dtype(device, amp)  # refuses fp16 without CUDA
    channels_last = device.type == "cuda" if cfg.channels_last is None else cfg.channels_last
    if cfg.channels_last is None:  # the teacher's default, where there is one (none: nothing to lay out)
        teacher_channels_last = cfg.distilling and default_teacher_channels_last(device)
    else:
        teacher_channels_last = cfg.channels_last
    if cfg.optimizer == "dot":
        impl = "for-loop"
    else:
        impl = "fused" if device.type == "cuda" else "for-loop"
    return SpeedPlan(amp=amp, channels_last=channels_last, teacher_channels_last=teacher_channels_last,
                     compile=cfg.compile_mode if cfg.compile else None, optimizer_impl=impl,
                     threads=torch.get_num_threads() if device.type == "cpu" else None)


def optimizer_options(plan: SpeedPlan) -> dict[str, bool]:
    """The keyword that selects ``plan.optimizer_impl`` in torch's SGD/AdamW."""
    return {"fused": {"fused": True}, "foreach": {"foreach": True}}.get(plan.optimizer_impl, {})


def compile_networks(plan: SpeedPlan, *modules: nn.Module | None) -> None:
    """Compile each module's forward in place (``nn.Module.compile``): the backward is compiled with it, and the
    state-dict keys stay as they are (no ``_orig_mod.`` prefix), so checkpoints do not change."""
    if plan.compile is None:
        return
    for module in modules:
        if module is not None:
            module.compile(mode=plan.compile)


def describe_speed(plan: SpeedPlan, cfg: RunConfig) -> str:
    """The header line that says how the run computes, and which choices were the device's defaults; the teacher's
    part only when the run has a teacher."""

    def chosen(value: str, given: bool) -> str:
        return value if given else f"{value} (default)"

    threads = f"{plan.threads} CPU threads, " if plan.threads is not None else ""
    compiled = f"torch.compile mode {plan.compile}" if plan.compile else "eager (no --compile)"
    layouts = {(True, True): "on", (False, False): "off", (False, True): "teacher only", (True, False): "student only"}
    layout = layouts[plan.channels_last, plan.teacher_channels_last]
    teacher = ", teacher under inference_mode" if cfg.distilling else ""
    return (f"speed: {threads}amp {chosen(plan.amp, cfg.amp != 'auto')}, "
            f"channels_last {chosen(layout, cfg.channels_last is not None)}, "
            f"{compiled}, {plan.optimizer_impl} optimizer step{teacher}")
