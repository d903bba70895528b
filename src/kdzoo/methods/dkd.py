"""DKD: Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge Distillation", CVPR 2022.

    L = CE + w(epoch) * (dkd_alpha * TCKD + dkd_beta * NCKD),   w(epoch) = min(epoch / warmup_epochs, 1)

(losses in :mod:`kdzoo.losses.dkd`) as mdistiller's ``DKD``: T 4, dkd_alpha 1, dkd_beta 8 (2 for the
resnet56/resnet110 teachers, 6 for vgg13 and wrn_40_2 -> wrn_*: the packaged
``cifar100/dkd_<teacher>_<student>`` configs), a linear warm-up over 20 epochs with the 1-based epoch
(w = 0.05 in epoch 1, 1 from epoch 20). ImageNet reference: T 1, dkd_beta 0.5 (ResNet34 -> ResNet18)
or 2 (ResNet50 -> MobileNetV1), warmup_epochs 1. The objective's beta scales the whole DKD term; the
two parts are returned (and logged) apart, already weighted. The warm-up factor is a buffer, so it
is checkpointed; before the first ``on_epoch_start`` it holds epoch 1's value.

With ``--logit-std`` both logit vectors are z-scored before the temperature, with the LS reference
settings: temperature 2 and beta 9 (= dkd_alpha and dkd_beta multiplied by the KD weight 9, i.e. 9
and 72, as the LS code does); the published per-pair values are in its log names.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from ..errors import ConfigError
from ..losses.dkd import nckd_loss, tckd_loss
from ..models.features import Features
from .base import LogitStdDefaults, LossWeights, Method, linear_warmup
from .options import Range
from .registry import register_method


@register_method("dkd")
class DKD(Method):
    """Decoupled KD: target-class (TCKD) and non-target-class (NCKD) terms, weighted apart, warmed up."""

    paper = "Zhao, Cui, Song, Qiu, Liang. Decoupled Knowledge Distillation. CVPR 2022"
    uses = "logits, labels"
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=1.0)
    logit_std_defaults = LogitStdDefaults(LossWeights(gamma=1.0, alpha=0.0, beta=9.0), {"temperature": 2.0})

    def __init__(self, student: Features, teacher: Features, *, dkd_alpha: Annotated[float, Range(ge=0)] = 1.0,
                 dkd_beta: Annotated[float, Range(ge=0, reference="8 on CIFAR-100, 2-8 per pair")] = 8.0,
                 temperature: Annotated[float, Range(gt=0)] = 4.0,
                 warmup_epochs: Annotated[int, Range(ge=0, reference="20; 0 = no warm-up")] = 20):
        super().__init__(student, teacher)
        self.dkd_alpha, self.dkd_beta, self.temperature = dkd_alpha, dkd_beta, temperature
        if self.dkd_alpha == 0 and self.dkd_beta == 0:
            raise ConfigError("DKD with dkd_alpha=0 and dkd_beta=0 has no loss term; give at least one a positive "
                              "weight.")
        self.warmup_epochs = warmup_epochs
        self.register_buffer("warmup_factor", torch.tensor(self.factor(1)))

    def factor(self, epoch: int) -> float:
        """The warm-up weight of the DKD term in (1-based) ``epoch``: min(epoch / warmup_epochs, 1)."""
        return linear_warmup(epoch, self.warmup_epochs)

    def on_epoch_start(self, epoch: int, total_epochs: int) -> None:
        self.warmup_factor.fill_(self.factor(epoch))

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        args = (*self.distill_logits(student, teacher), batch.labels, self.temperature)
        terms = {}
        if self.dkd_alpha:
            terms["dkd_tckd"] = self.warmup_factor * self.dkd_alpha * tckd_loss(*args)
        if self.dkd_beta:
            terms["dkd_nckd"] = self.warmup_factor * self.dkd_beta * nckd_loss(*args)
        return terms
