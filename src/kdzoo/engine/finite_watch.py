"""The non-finite-loss check without a host synchronisation per step.

Reading a loss on the host (``bool(torch.isfinite(loss))``) makes the CPU wait for the GPU at every step. The
watch instead records, on the device, the first step whose loss terms were not all finite and their values,
and the host looks at that record only every ``every`` steps (the progress bar's interval) and at the end of
the epoch: a non-finite run still stops within one logging interval, before its epoch is checkpointed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from .. import distributed


class NonFiniteWatch:
    """``record(step, terms)`` after each step (device ops only); ``first_bad()`` syncs and returns
    ``(step, {term: value})`` of the first non-finite step on any rank, or None."""

    def __init__(self, device: torch.device, every: int):
        self.device = device
        self.every = every
        self.first_step = torch.full((), -1, dtype=torch.long, device=device)
        self.values: Tensor | None = None
        self.names: list[str] = []

    def record(self, step: int, terms: dict[str, Tensor]) -> None:
        values = torch.stack([v.detach().float().reshape(()) for v in terms.values()])
        first = (self.first_step < 0) & ~torch.isfinite(values).all()
        self.first_step = torch.where(first, torch.full_like(self.first_step, step), self.first_step)
        if self.values is None or list(terms) != self.names:  # the first step (terms are the same every step)
            self.values, self.names = values, list(terms)
        else:
            self.values = torch.where(first, values, self.values)

    def due(self, step: int) -> bool:
        """Whether the host should look after ``step`` (0-based): every ``every`` steps."""
        return (step + 1) % self.every == 0

    def first_bad(self) -> tuple[int, dict[str, float]] | None:
        """The first non-finite step and its terms (this rank's; step -1 when only another rank's was)."""
        step = int(self.first_step)
        if not distributed.any_rank(step >= 0, self.device):
            return None
        values = self.values.tolist() if self.values is not None else []
        return step, dict(zip(self.names, values, strict=True))


def non_finite_message(epoch: int, step: int, terms: dict[str, float], run_dir: Path, saved_epoch: int,
                       stage: str = "epoch") -> str:
    """``step`` is 0-based; -1 when the non-finite loss was another process's."""
    where = f"{stage} {epoch}, step {step + 1} ({', '.join(f'{k}={v:.4g}' for k, v in terms.items())})" if step >= 0 \
        else f"{stage} {epoch} in another process"
    kept = f"epochs 1-{saved_epoch} are saved in {run_dir}" if saved_epoch else "no main epoch had finished yet"
    return (f"The loss became non-finite at {where}. {kept}. Lower the "
            f"learning rate (--lr) or the loss weights, check the teacher, or avoid --amp fp16; then start "
            f"again, or continue from the last good epoch with --resume {run_dir}.")
