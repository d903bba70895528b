"""USKD: Yang, Zeng, Li, Zhang, Yuan, Li, "From Knowledge Distillation to Self-Knowledge Distillation:
A Unified Approach with Normalized Loss and Customized Soft Labels", ICCV 2023 (the NKD paper's
self-distillation; no teacher).

    L = CE + alpha * L_t + beta * L_non + mu * L_weak

(losses in :mod:`kdzoo.losses.uskd`): a weak head, Linear(channels, C) on the globally pooled map
of the stage before the last (ResNet18: stage 3 of 4, 256 channels; CIFAR ResNets: stage 2 of 3),
is trained with label-smoothed CE, and its predictions and the network's own rank the non-target
classes for Zipf soft labels. The weak head belongs to the method (trained with the student,
discarded at deployment); its gradient also reaches the backbone's stages, as in the official code
(yzd-v/cls_KD). Defaults: the CIFAR-100 config, alpha 0.1, beta 0.1, mu 0.1 (ImageNet ResNet18:
alpha 1, beta 0.1, mu 0.005). ``rank_by``: ``log_prob`` (the code's ranking, default) or ``prob``
(the paper's). These alpha/beta (``--method-opt``) weigh USKD's terms, which are returned with their
weights inside (``uskd_target``, ``uskd_non_target``, ``uskd_weak``); the objective's
``--gamma``/``--beta`` stay 1.
"""

from __future__ import annotations

from typing import Annotated

from torch import Tensor, nn

from ..errors import ConfigError
from ..losses.uskd import RANK_BY, uskd_non_target_loss, uskd_target_loss, uskd_weak_loss
from ..models.features import Features
from ..models.layers import global_pool
from .base import TAPS, LossWeights, Method, Reads
from .options import OneOf, Range
from .registry import register_method

RANK = OneOf(*RANK_BY, reference="log_prob: the official code's ranking; prob: the paper's")


@register_method("uskd")
class USKD(Method):
    """Self-distillation with customized soft labels from a weak head and the network itself (no teacher)."""

    paper = ("Yang, Zeng, Li, Zhang, Yuan, Li. From Knowledge Distillation to Self-Knowledge Distillation: "
             "A Unified Approach with Normalized Loss and Customized Soft Labels. ICCV 2023")
    uses = "logits, the pooled map of the stage before the last (weak head), labels"
    reads = Reads(student=TAPS, teacher=None)
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=1.0)

    def __init__(self, student: Features, teacher: Features | None, *,
                 alpha: Annotated[float, Range(ge=0, reference="0.1 on CIFAR-100, 1 on ImageNet")] = 0.1,
                 beta: Annotated[float, Range(ge=0)] = 0.1,
                 mu: Annotated[float, Range(ge=0, reference="0.1 on CIFAR-100, 0.005 on ImageNet")] = 0.1,
                 rank_by: Annotated[str, RANK] = "log_prob"):
        super().__init__(student, teacher)
        self.alpha, self.beta, self.mu = alpha, beta, mu
        self.rank_by = rank_by
        if len(student.stages) < 2:
            raise ConfigError(f"USKD's weak head reads the stage before the last, and this student has "
                              f"{len(student.stages)} stage(s).")
        self.weak_head = nn.Linear(student.stages[-2].shape[1], student.logits.shape[1])

    def forward(self, student: Features, teacher: Features | None, batch) -> dict[str, Tensor]:
        weak_logits = self.weak_head(global_pool(student.stages[-2]))
        terms = {}
        if self.alpha:
            terms["uskd_target"] = self.alpha * uskd_target_loss(student.logits, batch.labels)
        if self.beta:
            non_target = uskd_non_target_loss(student.logits, weak_logits, batch.labels, self.rank_by)
            terms["uskd_non_target"] = self.beta * non_target
        if self.mu:
            terms["uskd_weak"] = self.mu * uskd_weak_loss(weak_logits, batch.labels)
        return terms
