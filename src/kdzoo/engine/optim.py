"""Optimiser and learning-rate schedule (torch's own, stepped once per epoch as RepDistiller does)."""

from __future__ import annotations

import torch
from torch import nn, optim

from ..config import RunConfig
from .dot import DOT


def build_optimizer(cfg: RunConfig, modules: list[nn.Module], lr: float,
                    implementation: dict[str, bool] | None = None) -> optim.Optimizer:
    """SGD, AdamW or DOT over the parameters of ``modules`` (the student and the method's extras).
    ``implementation``: torch's ``foreach=True`` or ``fused=True`` for SGD and AdamW (same updates, fewer kernels)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    impl = implementation or {}
    if cfg.optimizer == "dot":
        return DOT(params, lr=lr, momentum=cfg.momentum, delta=cfg.dot_delta, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov,
                         **impl)
    return optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay, **impl)


def build_scheduler(cfg: RunConfig, optimizer: optim.Optimizer) -> optim.lr_scheduler.LRScheduler:
    """Epoch-wise schedule: step (RepDistiller: x``lr_decay`` after each milestone epoch), cosine, or
    constant, optionally preceded by ``warmup_epochs`` epochs of linear warm-up (lr/(w+1), 2lr/(w+1), ...)."""
    sched = optim.lr_scheduler
    main_epochs = cfg.epochs - cfg.warmup_epochs
    if cfg.schedule == "step":
        milestones = [m - cfg.warmup_epochs for m in cfg.resolved_milestones() if m > cfg.warmup_epochs]
        main = sched.MultiStepLR(optimizer, milestones=milestones, gamma=cfg.lr_decay)
    elif cfg.schedule == "cosine":
        main = sched.CosineAnnealingLR(optimizer, T_max=max(main_epochs, 1))
    else:
        main = sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if not cfg.warmup_epochs:
        return main
    warmup = sched.LinearLR(optimizer, start_factor=1.0 / (cfg.warmup_epochs + 1), total_iters=cfg.warmup_epochs)
    return sched.SequentialLR(optimizer, [warmup, main], milestones=[cfg.warmup_epochs])


def hold_lr(optimizer: optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate to ``lr`` (the schedule's last, for an extended run)."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def beyond_schedule_note(schedule_epochs: int, epochs: int, history: list[dict]) -> str:
    """What the epochs after the lr schedule's end get (empty when there are none)."""
    if epochs <= schedule_epochs:
        return ""
    if len(history) < schedule_epochs:
        return (f" Epochs {schedule_epochs + 1}-{epochs} lie beyond the {schedule_epochs}-epoch lr schedule the run "
                f"started with: they keep the lr of its epoch {schedule_epochs}.")
    return (f" Epochs {schedule_epochs + 1}-{epochs} extend its {schedule_epochs}-epoch lr schedule at the lr of its "
            f"last epoch, {history[schedule_epochs - 1]['lr']:.4g}.")


def lr_per_epoch(cfg: RunConfig, lr: float) -> list[float]:
    """The learning rate of each epoch under ``cfg``'s schedule (the real scheduler, on a dummy parameter)."""
    optimizer = optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = build_scheduler(cfg, optimizer)
    rates = []
    for _ in range(cfg.epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def describe_schedule(rates: list[float]) -> str:
    """``lr 0.1 for epochs 1-30, 0.01 for epochs 31-40`` (runs of equal rates)."""
    runs: list[list] = []
    for epoch, rate in enumerate(rates, 1):
        if runs and runs[-1][0] == rate:
            runs[-1][2] = epoch
        else:
            runs.append([rate, epoch, epoch])
    return "lr " + ", ".join(f"{rate:.4g} for epochs {a}-{b}" if a < b else f"{rate:.4g} for epoch {a}"
                             for rate, a, b in runs)


def schedule_warnings(cfg: RunConfig, lr: float) -> list[str]:
    """Milestones that cannot take effect (beyond ``--epochs``, inside the warm-up, or with a schedule other
    than step), with the schedule the run will follow."""
    if cfg.milestones is None:
        return []
    if cfg.schedule != "step":
        return [f"--milestones only apply to --schedule step; with --schedule {cfg.schedule} they are ignored."]
    beyond = [m for m in cfg.milestones if m > cfg.epochs]
    early = [m for m in cfg.milestones if m <= cfg.warmup_epochs]
    notes = []
    if beyond:
        notes.append(f"--milestones {', '.join(map(str, beyond))} lie beyond --epochs {cfg.epochs}: they never "
                     f"decay the lr")
    if early:
        notes.append(f"--milestones {', '.join(map(str, early))} fall inside the {cfg.warmup_epochs}-epoch "
                     f"warm-up: ignored")
    if not notes:
        return []
    return [f"{'; '.join(notes)}. The schedule: {describe_schedule(lr_per_epoch(cfg, lr))}."]
