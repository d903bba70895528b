"""RKD: Park, Kim, Lu, Cho, "Relational Knowledge Distillation", CVPR 2019.

    L = w_d * SmoothL1(d_s, d_t) + w_a * SmoothL1(psi_s, psi_t)

on the pooled vectors ``feat[-1]``: d the pairwise distances divided by their mean, psi the
cosines of the angles between x_j - x_i and x_k - x_i over all triplets. Reference weights
w_d = 25, w_a = 50 (RepDistiller's ``RKDLoss``). The two terms are returned (and logged) apart,
already multiplied by w_d and w_a; a zero weight skips its term.
"""

from __future__ import annotations

from typing import Annotated

from torch import Tensor

from ..errors import ConfigError
from ..losses.rkd import rkd_angle_loss, rkd_distance_loss
from ..models.features import Features
from .base import FEATURE_READS, LossWeights, Method
from .options import Range
from .registry import register_method


@register_method("rkd")
class RKD(Method):
    """Relational KD: distance and angle relations between a batch's pooled vectors."""

    paper = "Park, Kim, Lu, Cho. Relational Knowledge Distillation. CVPR 2019"
    uses = "feat[-1] (pooled vector)"
    reads = FEATURE_READS
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=1.0)

    def __init__(self, student: Features, teacher: Features, *, w_d: Annotated[float, Range(ge=0)] = 25.0,
                 w_a: Annotated[float, Range(ge=0)] = 50.0):
        super().__init__(student, teacher)
        if w_d == 0 and w_a == 0:
            raise ConfigError("RKD with w_d=0 and w_a=0 has no loss term; give at least one a positive weight.")
        self.w_d = float(w_d)
        self.w_a = float(w_a)

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        terms = {}
        if self.w_d:
            terms["rkd_distance"] = self.w_d * rkd_distance_loss(student.pooled, teacher.pooled)
        if self.w_a:
            terms["rkd_angle"] = self.w_a * rkd_angle_loss(student.pooled, teacher.pooled)
        return terms
