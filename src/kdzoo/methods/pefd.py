"""PEFD: Chen, Wang, Liu, Xu, de Hoog, Huang, "Improved Feature Distillation via Projector Ensemble",
NeurIPS 2022 (chenyd7/PEFD, ``--distill ours``).

    L = 1/B * sum_b (1 - cos(1/q * sum_k ReLU(g_k(f_s)), f_t))

on the pooled vectors ``feat[-1]`` with q = ``num_projectors`` (3) trainable Linear(C_s, C_t)
projectors g_k (see :func:`kdzoo.losses.pefd_loss`). The projectors are discarded after training.
Reference weights: gamma 1, alpha 0 (no KD), beta 25. The reference also builds a 4th projector that
is never used nor trained; kdzoo builds only the ones it uses.
"""

from __future__ import annotations

from typing import Annotated

from torch import Tensor, nn

from ..losses.pefd import pefd_loss
from ..models.features import Features
from .base import FEATURE_READS, LossWeights, Method
from .options import Range
from .registry import register_method


@register_method("pefd")
class PEFD(Method):
    """Projector ensemble: cosine distance between the averaged projections of the student vector and the teacher's."""

    paper = ("Chen, Wang, Liu, Xu, de Hoog, Huang. Improved Feature Distillation via Projector Ensemble. "
             "NeurIPS 2022")
    uses = "feat[-1] (pooled vector) through an ensemble of linear projectors"
    reads = FEATURE_READS
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=25.0)

    def __init__(self, student: Features, teacher: Features, *, num_projectors: Annotated[int, Range(ge=1)] = 3):
        super().__init__(student, teacher)
        c_s, c_t = student.pooled.shape[1], teacher.pooled.shape[1]
        self.projectors = nn.ModuleList(nn.Linear(c_s, c_t) for _ in range(num_projectors))

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        return {"pefd": pefd_loss(student.pooled, teacher.pooled, self.projectors)}
