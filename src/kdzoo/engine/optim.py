"""Optimiser and learning-rate schedule (torch's own, stepped once per epoch as RepDistiller does)."""

from __future__ import annotations

from torch import nn, optim

from ..config import RunConfig
from .dot import DOT


def build_optimizer(cfg: RunConfig, modules: list[nn.Module], lr: float) -> optim.Optimizer:
    """SGD, AdamW or DOT over the parameters of ``modules`` (the student and the method's extras)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    if cfg.optimizer == "dot":
        return DOT(params, lr=lr, momentum=cfg.momentum, delta=cfg.dot_delta, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
    return optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)


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
