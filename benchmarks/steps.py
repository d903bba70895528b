"""Timing of full optimisation steps (forward, loss terms, backward, SGD step), shared by the benchmarks."""

from __future__ import annotations

import time
from types import SimpleNamespace

import torch
from torch import nn

from kdzoo.engine.runtime import autocast
from kdzoo.engine.trainer import forward
from kdzoo.methods import Objective


def random_batch(batch_size: int, num_classes: int, device: torch.device, size: int = 32) -> SimpleNamespace:
    """A batch shaped like the engine's (images, labels, index) on ``device``."""
    return SimpleNamespace(images=torch.randn(batch_size, 3, size, size, device=device),
                           labels=torch.randint(0, num_classes, (batch_size,), device=device),
                           index=torch.randperm(batch_size, device=device))


def images_per_second(student: nn.Module, teacher: nn.Module | None, objective: Objective, batch,
                      steps: int, warmup: int, amp: str = "none") -> float:
    """Images/s of ``steps`` training steps after ``warmup`` untimed ones, as the engine runs them."""
    device = batch.images.device
    method = objective.method
    needs_features = method is not None and method.needs_features
    preact = method is not None and method.preact
    params = list(student.parameters()) + list(objective.parameters())
    optimizer = torch.optim.SGD([p for p in params if p.requires_grad], lr=0.01, momentum=0.9)
    student.train()
    objective.train()

    def step() -> None:
        with autocast(device, amp):
            s = forward(student, batch.images, needs_features, preact)
            t = None
            if teacher is not None:
                with torch.no_grad():
                    t = forward(teacher, batch.images, needs_features, preact)
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
