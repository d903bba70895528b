"""Timing of full optimisation steps (forward, loss terms, backward, SGD step), shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from kdzoo.distiller import run_networks
from kdzoo.engine.runtime import amp_dtype
from kdzoo.engine.speed import default_teacher_channels_last
from kdzoo.methods import Objective, Reads


def random_batch(batch_size: int, num_classes: int, device: torch.device, size: int = 32) -> SimpleNamespace:
    """A batch shaped like the engine's (images, labels, index) on ``device``."""
    return SimpleNamespace(images=torch.randn(batch_size, 3, size, size, device=device),
                           labels=torch.randint(0, num_classes, (batch_size,), device=device),
                           index=torch.randperm(batch_size, device=device))


def training_step(student: nn.Module, teacher: nn.Module | None, objective: Objective, batch,
                  amp: str = "none") -> Callable[[], None]:
    """One full optimisation step as the engine runs it (the teacher in the device's default layout: it is moved
    to channels-last where the engine would do so), as a function to call repeatedly."""
    device = batch.images.device
    teacher_channels_last = teacher is not None and default_teacher_channels_last(device)
    if teacher_channels_last:
        teacher.to(memory_format=torch.channels_last)
    reads = objective.method.reads if objective.method is not None else Reads(teacher=None)
    dtype = amp_dtype(device, amp)
    params = list(student.parameters()) + list(objective.parameters())
    optimizer = torch.optim.SGD([p for p in params if p.requires_grad], lr=0.01, momentum=0.9)
    student.train()
    objective.train()

    views = [batch.images, batch.images.flip(-1)] if reads.strong_view else [batch.images]  # MLKD: a second view

    def step() -> None:
        s, t = run_networks(student, teacher, views, reads, dtype, teacher_channels_last=teacher_channels_last)
        loss = sum(objective(s, t, batch).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def images_per_second(student: nn.Module, teacher: nn.Module | None, objective: Objective, batch,
                      steps: int, warmup: int, amp: str = "none") -> float:
    """Images/s of ``steps`` training steps after ``warmup`` untimed ones."""
    device = batch.images.device
    step = training_step(student, teacher, objective, batch, amp)
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * batch.images.shape[0] / (time.perf_counter() - start)


def step_flops(student: nn.Module, teacher: nn.Module | None, objective: Objective, batch, amp: str = "none") -> int:
    """The floating-point operations of one training step that torch's FlopCounterMode counts (matrix products and
    convolutions, forward and backward; not elementwise ops, reductions or decompositions such as SVD)."""
    step = training_step(student, teacher, objective, batch, amp)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()
