"""NKD: Yang, Zeng, Li, Zhang, Yuan, Li, "From Knowledge Distillation to Self-Knowledge
Distillation: A Unified Approach with Normalized Loss and Customized Soft Labels", ICCV 2023.

    L = CE + (-T_t log S_t) + gamma * tau^2 * (-sum_{i!=t} T^_i log S^_i)

(losses in :mod:`kdzoo.losses.nkd`): the target term at temperature 1, the non-target term over
the distributions renormalised without the target class at temperature tau, as the paper defines
it. The official code's non-target mask was all ones from 2023-07-17 to 2023-10-10 (all classes
counted as non-target); kdzoo implements the paper's definition, i.e. the fixed code. Defaults: the
CIFAR-100 config (tau 3, gamma 3.5); ImageNet CNN pairs use tau 1, gamma 1.5, DeiT pairs tau 1,
gamma 1.0. This ``gamma`` (``--method-opt gamma=...``) weighs the non-target term; the objective's
``--gamma`` weighs the cross-entropy. The two parts are returned (and logged) apart.
"""

from __future__ import annotations

from typing import Annotated

from torch import Tensor

from ..losses.nkd import nkd_non_target_loss, nkd_target_loss
from ..models.features import Features
from .base import LogitStdDefaults, LossWeights, Method
from .options import Range
from .registry import register_method


@register_method("nkd")
class NKD(Method):
    """Normalized KD: the target term and the renormalised non-target term apart."""

    paper = ("Yang, Zeng, Li, Zhang, Yuan, Li. From Knowledge Distillation to Self-Knowledge Distillation: "
             "A Unified Approach with Normalized Loss and Customized Soft Labels. ICCV 2023")
    uses = "logits, labels"
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=1.0)
    logit_std_defaults = LogitStdDefaults(default_weights)

    def __init__(self, student: Features, teacher: Features, *,
                 temperature: Annotated[float, Range(gt=0, reference="3 on CIFAR-100, 1 on ImageNet")] = 3.0,
                 gamma: Annotated[float, Range(ge=0, reference="3.5 on CIFAR-100, 1.5 on ImageNet")] = 3.5):
        super().__init__(student, teacher)
        self.temperature, self.gamma = temperature, gamma

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        logits_s, logits_t = self.distill_logits(student, teacher)
        terms = {"nkd_target": nkd_target_loss(logits_s, logits_t, batch.labels)}
        if self.gamma:
            non_target = nkd_non_target_loss(logits_s, logits_t, batch.labels, self.temperature)
            terms["nkd_non_target"] = self.gamma * non_target
        return terms
