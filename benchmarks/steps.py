"""Timing of full optimisation steps (forward, loss terms, backward, SGD step), shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from kdzoo import Distiller
from kdzoo.batch import Batch
from kdzoo.distiller import Runtime
from kdzoo.engine.runtime import amp_dtype
from kdzoo.engine.speed import default_teacher_channels_last


def random_batch(batch_size: int, num_classes: int, device: torch.device, size: int = 32) -> Batch:
    """A batch shaped like the engine's (images, labels, index) on ``device``."""
    return Batch(torch.randn(batch_size, 3, size, size, device=device),
                 torch.randint(0, num_classes, (batch_size,), device=device), torch.randperm(batch_size, device=device))


def training_step(distiller: Distiller, batch: Batch, amp: str = "none") -> Callable[[], None]:
    """One full optimisation step of ``distiller`` as the engine runs it (the teacher in the device's default
    layout: it is moved to channels-last where the engine would do so), as a function to call repeatedly. MLKD
    gets the flipped images as its second view."""
    device = batch.images.device
    teacher_channels_last = distiller.teacher is not None and default_teacher_channels_last(device)
    if teacher_channels_last:
        distiller.teacher.to(memory_format=torch.channels_last)
    distiller.runtime = Runtime(amp_dtype(device, amp), teacher_channels_last=teacher_channels_last)
    if distiller.reads.strong_view:
        batch = Batch(batch.images, batch.labels, batch.index, batch.images.flip(-1))
    optimizer = torch.optim.SGD([p for p in distiller.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    distiller.train()

    def step() -> None:
        loss = sum(distiller.step(batch)[0].values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def images_per_second(distiller: Distiller, batch: Batch, steps: int, warmup: int, amp: str = "none") -> float:
    """Images/s of ``steps`` training steps after ``warmup`` untimed ones."""
    device = batch.images.device
    step = training_step(distiller, batch, amp)
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


def step_flops(distiller: Distiller, batch: Batch, amp: str = "none") -> int:
    """The floating-point operations of one training step that torch's FlopCounterMode counts (matrix products and
    convolutions, forward and backward; not elementwise ops, reductions or decompositions such as SVD)."""
    step = training_step(distiller, batch, amp)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()
