"""The total distillation loss ``gamma*CE + alpha*KD + beta*method``, as named, weighted terms."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..batch import Batch
from ..losses import kd_loss
from ..models.features import Features
from .base import LossWeights, Method


class Objective(nn.Module):
    """Combines cross-entropy, the KD term and a method's own terms.

    Plain training is the ``vanilla`` method (cross-entropy alone); self-distillation methods run without a
    teacher (``teacher=None``: no KD term). The KD
    term sees the logits through ``method.distill_logits`` (z-scored with ``--logit-std``).
    Terms whose weight is zero are not computed (RepDistiller computes the KD term even with
    alpha = 0). All terms are computed in float32, whatever precision the networks ran in.
    """

    def __init__(self, method: Method, weights: LossWeights, t_student: float = 4.0, t_teacher: float = 4.0):
        super().__init__()
        self.method = method
        self.weights = weights
        self.t_student = t_student
        self.t_teacher = t_teacher

    def forward(self, student: Features, teacher: Features | None, batch: Batch) -> dict[str, Tensor]:
        student = student.float()
        w = self.weights
        terms: dict[str, Tensor] = {}
        if w.gamma:  # summed over the views when the batch has several (MLKD: weak and strong)
            views = student.logits.shape[0] // batch.labels.shape[0]
            terms["ce"] = w.gamma * views * F.cross_entropy(student.logits, batch.labels.repeat(views))
        teacher = teacher.float() if teacher is not None else None
        if w.alpha and teacher is not None:
            logits_s, logits_t = self.method.distill_logits(student, teacher)
            terms["kd"] = w.alpha * kd_loss(logits_s, logits_t, self.t_student, self.t_teacher)
        if w.beta:
            for name, value in self.method(student, teacher, batch).items():
                terms[name] = w.beta * value
        return terms

