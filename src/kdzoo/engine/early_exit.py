"""Early-exit inference of a multi-exit network (:class:`~kdzoo.models.MultiExitNet`): the test top-1
of every exit, and of confidence-thresholded early exit, against the average cost in FLOPs.

Early exit at threshold tau: exits are evaluated in order and a sample leaves at the first exit whose
maximum softmax probability is >= tau (the deepest exit answers the rest). tau = 0 always leaves at
the first exit; tau >= 1 always at the deepest (no earlier exit is evaluated).

Costs are FLOPs per image as :class:`torch.utils.flop_counter.FlopCounterMode` counts them (2 per
multiply-accumulate of convolutions and linear layers; BatchNorm, activations and pooling are not
counted), measured on one image of the test size:

- backbone up to stage i: the FLOPs counted until stage i's output is produced (the forward runs in
  order, so this is what an early-exiting implementation must have computed);
- exit i alone (the per-exit table): backbone up to stage i + exit i's head; the deepest exit: the
  whole backbone, i.e. the plain network;
- leaving at exit i under early exit: backbone up to stage i + the heads of exits 1..i, all of which
  were evaluated; leaving at the deepest exit adds the whole backbone and every earlier head.

Relative costs are fractions of the plain network (the backbone without exits).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from ..models import MultiExitNet, extract
from ..plots import plot_lines

DEFAULT_THRESHOLDS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


@dataclass
class ExitCosts:
    """FLOPs per image: ``stages[i]`` the backbone up to exit i's stage (the last: the whole backbone),
    ``heads[i]`` exit i's head (the last: 0, the classifier is part of the backbone)."""

    stages: list[float]
    heads: list[float]

    @property
    def full(self) -> float:
        """The plain network (the backbone alone)."""
        return self.stages[-1]

    def alone(self, i: int) -> float:
        """Exit i used on its own."""
        return self.stages[i] + self.heads[i]

    def leaving_at(self, i: int) -> float:
        """A sample that leaves at exit i under early exit (exits 1..i evaluated)."""
        return self.stages[i] + sum(self.heads[: i + 1])


class _OpTimeline(TorchDispatchMode):
    """Records, for every tensor an operator returns, the FLOPs ``counter`` had counted by then."""

    def __init__(self, counter: FlopCounterMode):
        super().__init__()
        self.counter = counter
        self.records: list[tuple[weakref.ref, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        total = self.counter.get_total_flops()
        outputs = out if isinstance(out, (tuple, list)) else (out,)
        self.records.extend((weakref.ref(t), total) for t in outputs if isinstance(t, Tensor))
        return out

    def flops_until(self, tensor: Tensor) -> int:
        """FLOPs counted when ``tensor`` was last returned by an operator (i.e. was complete)."""
        return next(total for ref, total in reversed(self.records) if ref() is tensor)


@torch.no_grad()
def count_exit_costs(model: MultiExitNet, input_shape: tuple[int, ...]) -> ExitCosts:
    """FLOPs per image of every exit path of ``model`` for inputs of ``input_shape`` (C, H, W)."""
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(1, *input_shape, device=next(model.parameters()).device)
        with FlopCounterMode(display=False) as counter, _OpTimeline(counter) as timeline:
            stage_maps = model.backbone.forward_taps(x).stages[:-1]
            full = counter.get_total_flops()
            stages = [timeline.flops_until(stage) for stage in stage_maps]
        heads = []
        for head, stage in zip(model.exit_heads, stage_maps, strict=True):
            with FlopCounterMode(display=False) as counter:
                head(stage)
            heads.append(counter.get_total_flops())
    finally:
        model.train(was_training)
    return ExitCosts([*stages, full], [*heads, 0])


@torch.no_grad()
def exit_predictions(model: MultiExitNet, loader) -> tuple[Tensor, Tensor]:
    """Every exit's confidence (maximum softmax probability) and correctness on ``loader``: two (N, exits) tensors."""
    was_training = model.training
    model.eval()
    confidence, correct = [], []
    for batch in loader.epoch(0):
        outputs = extract(model, batch.images, exits=True).exits
        probs = torch.stack([e.logits.softmax(dim=1) for e in outputs], dim=1)  # (B, exits, C)
        top, predicted = probs.max(dim=2)
        confidence.append(top.cpu())
        correct.append((predicted == batch.labels[:, None]).cpu())
    model.train(was_training)
    return torch.cat(confidence), torch.cat(correct)


def chosen_exits(confidence: Tensor, threshold: float) -> Tensor:
    """The exit each sample leaves at: the first whose confidence is >= ``threshold``, else the deepest;
    ``threshold >= 1`` means always the deepest."""
    last = confidence.shape[1] - 1
    if threshold >= 1:
        return torch.full((confidence.shape[0],), last, dtype=torch.long)
    confident = confidence[:, :-1] >= threshold
    first = confident.float().argmax(dim=1)
    return torch.where(confident.any(dim=1), first, torch.full_like(first, last))


@dataclass
class EarlyExitRow:
    """One line of a report: top-1 (%), average FLOPs per image and, for early exit, the share of
    samples that left at each exit."""

    label: str
    top1: float
    flops: float
    shares: list[float] = field(default_factory=list)


@dataclass
class EarlyExitReport:
    """Every exit alone, early exit per threshold, and the plain network's FLOPs per image."""

    exits: list[EarlyExitRow]
    thresholds: list[EarlyExitRow]
    full_flops: float


def early_exit_report(model: MultiExitNet, loader, input_shape: tuple[int, ...],
                      thresholds=DEFAULT_THRESHOLDS) -> EarlyExitReport:
    """Top-1 and cost of every exit alone and of early exit at each threshold on ``loader``."""
    costs = count_exit_costs(model, input_shape)
    confidence, correct = exit_predictions(model, loader)
    n, count = correct.shape
    exits = [EarlyExitRow(f"{i + 1}" + (" (deepest)" if i == count - 1 else ""),
                          100.0 * correct[:, i].float().mean().item(), costs.alone(i)) for i in range(count)]
    rows = []
    for tau in thresholds:
        chosen = chosen_exits(confidence, tau)
        shares = torch.bincount(chosen, minlength=count).div(n).tolist()
        flops = costs.full if tau >= 1 else sum(share * costs.leaving_at(i) for i, share in enumerate(shares))
        top1 = 100.0 * correct[torch.arange(n), chosen].float().mean().item()
        rows.append(EarlyExitRow(f"{tau:g}", top1, flops, shares))
    return EarlyExitReport(exits, rows, costs.full)


def format_report(report: EarlyExitReport) -> str:
    """The report as two plain-text tables (per exit; early exit per threshold)."""
    def table(title: str, first: str, rows: list[EarlyExitRow]) -> list[str]:
        shares = "  left at exit 1/2/... %" if rows[0].shares else ""
        lines = [title, f"{first:<12} {'top-1 %':>8} {'MFLOPs':>9} {'of full':>8}{shares}"]
        for r in rows:
            used = "  " + " / ".join(f"{100 * s:.0f}" for s in r.shares) if r.shares else ""
            lines.append(f"{r.label:<12} {r.top1:>8.2f} {r.flops / 1e6:>9.3f} "
                         f"{100 * r.flops / report.full_flops:>7.1f}%{used}")
        return lines

    return "\n".join(table("Every exit alone:", "exit", report.exits) + [""]
                     + table("Early exit (leave at the first exit whose max softmax probability >= threshold):",
                             "threshold", report.thresholds))


def plot_report(report: EarlyExitReport, path: Path, title: str) -> Path:
    """Top-1 against average MFLOPs: early exit over the thresholds (in order of cost), and every exit alone."""
    def points(rows: list[EarlyExitRow]):
        rows = sorted(rows, key=lambda r: r.flops)
        return [r.flops / 1e6 for r in rows], [r.top1 for r in rows], None

    series = {"early exit (thresholds)": points(report.thresholds), "each exit alone": points(report.exits)}
    return plot_lines(series, path, "average MFLOPs per image", "test top-1 (%)", title)
