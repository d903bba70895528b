"""DKD: Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge Distillation", CVPR 2022.

    L = CE + w(epoch) * (dkd_alpha * TCKD + dkd_beta * NCKD),   w(epoch) = min(epoch / warmup_epochs, 1)

(losses in :mod:`kdzoo.losses.dkd`) as mdistiller's ``DKD``: T 4, dkd_alpha 1, dkd_beta 8 (2 for the
resnet56/resnet110 teachers, 6 for vgg13 and wrn_40_2 -> wrn_*: the packaged
``cifar100/dkd_<teacher>_<student>`` configs), a linear warm-up over 20 epochs with the 1-based epoch
(w = 0.05 in epoch 1, 1 from epoch 20). ImageNet reference: T 1, dkd_beta 0.5 (ResNet34 -> ResNet18)
or 2 (ResNet50 -> MobileNetV1), warmup_epochs 1. The objective's beta scales the whole DKD term; the
two parts are returned (and logged) apart, already weighted. The warm-up factor is a buffer, so it
is checkpointed; before the first ``on_epoch_start`` it holds epoch 1's value.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError
from ..losses.dkd import nckd_loss, tckd_loss
from ..models.features import Features
from .base import LossWeights, Method
from .registry import register_method


def check_number(method: str, name: str, value, reference: str, positive: bool = False) -> float:
    """``value`` as a float if it is a number >= 0 (> 0 with ``positive``), else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"{method}'s {name} must be a number {bound} (reference: {reference}), got {value!r}.")
    return float(value)


@register_method("dkd")
class DKD(Method):
    paper = "Zhao, Cui, Song, Qiu, Liang. Decoupled Knowledge Distillation. CVPR 2022"
    uses = "logits, labels"
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=1.0)

    def __init__(self, student: Features, teacher: Features, *, dkd_alpha: float = 1.0, dkd_beta: float = 8.0,
                 temperature: float = 4.0, warmup_epochs: int = 20):
        super().__init__(student, teacher)
        self.dkd_alpha = check_number("DKD", "dkd_alpha", dkd_alpha, "1")
        self.dkd_beta = check_number("DKD", "dkd_beta", dkd_beta, "8 on CIFAR-100, 2-8 per pair")
        self.temperature = check_number("DKD", "temperature", temperature, "4", positive=True)
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ConfigError(f"DKD's warmup_epochs must be a whole number >= 0 (reference: 20; 0 = no warm-up), "
                              f"got {warmup_epochs!r}.")
        if self.dkd_alpha == 0 and self.dkd_beta == 0:
            raise ConfigError("DKD with dkd_alpha=0 and dkd_beta=0 has no loss term; give at least one a positive weight.")
        self.warmup_epochs = warmup_epochs
        self.register_buffer("warmup_factor", torch.tensor(self.factor(1)))

    def factor(self, epoch: int) -> float:
        """The warm-up weight of the DKD term in (1-based) ``epoch``: min(epoch / warmup_epochs, 1)."""
        return min(epoch / self.warmup_epochs, 1.0) if self.warmup_epochs else 1.0

    def on_epoch_start(self, epoch: int, total_epochs: int) -> None:
        self.warmup_factor.fill_(self.factor(epoch))

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        args = (student.logits, teacher.logits, batch.labels, self.temperature)
        terms = {}
        if self.dkd_alpha:
            terms["dkd_tckd"] = self.warmup_factor * self.dkd_alpha * tckd_loss(*args)
        if self.dkd_beta:
            terms["dkd_nckd"] = self.warmup_factor * self.dkd_beta * nckd_loss(*args)
        return terms
