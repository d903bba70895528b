"""Timing of full optimisation steps (forward, loss terms, backward, SGD step), shared by the benchmarks."""

from __future__ import annotations

import time
from types import SimpleNamespace

import torch
from torch import nn

from kdzoo.distiller import run_networks
from kdzoo.engine.runtime import amp_dtype
from kdzoo.methods import Objective, Reads


def random_batch(batch_size: int, num_classes: int, device: torch.device, size: int = 32) -> SimpleNamespace:
    """A batch shaped like the engine's (images, labels, index) on ``device``."""
    return SimpleNamespace(images=torch.randn(batch_size, 3, size, size, device=device),
                           labels=torch.randint(0, num_classes, (batch_size,), device=device),
                           index=torch.randperm(batch_size, device=device))


def images_per_second(student: nn.Module, teacher: nn.Module | None, objective: Objective, batch,
                      steps: int, warmup: int, amp: str = "none") -> float:
    """Images/s of ``steps`` training steps after ``warmup`` untimed ones, as the engine runs them."""
    device = batch.images.device
    reads = objective.method.reads if objective.method is not None else Reads(teacher=None)
    dtype = amp_dtype(device, amp)
    params = list(student.parameters()) + list(objective.parameters())
    optimizer = torch.optim.SGD([p for p in params if p.requires_grad], lr=0.01, momentum=0.9)
    student.train()
    objective.train()

    def step() -> None:
        s, t = run_networks(student, teacher, [batch.images], reads, dtype)
        loss = sum(objective(s, t, batch).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

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
