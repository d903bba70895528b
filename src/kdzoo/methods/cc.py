"""CC: Peng et al., "Correlation Congruence for Knowledge Distillation", ICCV 2019 (RepDistiller's
``correlation``, the CC authors' simplified code rather than the paper's kernel formulation).

    e_s = W_s f_s + b_s,  e_t = W_t f_t + b_t,  delta = |e_s - e_t|
    L = 1/(B-1) * sum_i sum_d delta_{i,d} delta_{i+1,d}

on the pooled vectors ``feat[-1]``, with two trainable linear heads (RepDistiller's ``LinearEmbed``,
no normalisation) to ``feat_dim`` = 128. Both heads train, so the loss is 0 whenever they agree.
"""

from __future__ import annotations

from typing import Annotated

from torch import Tensor, nn

from ..losses.cc import cc_loss
from ..models.features import Features
from .base import FEATURE_READS, LossWeights, Method
from .options import Range
from .registry import register_method


@register_method("cc")
class CC(Method):
    """Correlation congruence: matches Gaussian-kernel correlations between embedded pooled vectors of a batch."""

    paper = "Peng, Jin, Liu, Li, Wu, Liu, Zhou, Zhang. Correlation Congruence for Knowledge Distillation. ICCV 2019"
    uses = "feat[-1] (pooled vector) through two linear heads"
    reads = FEATURE_READS
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=0.02)

    def __init__(self, student: Features, teacher: Features, *, feat_dim: Annotated[int, Range(ge=1)] = 128):
        super().__init__(student, teacher)
        self.embed_s = nn.Linear(student.pooled.flatten(1).shape[1], feat_dim)
        self.embed_t = nn.Linear(teacher.pooled.flatten(1).shape[1], feat_dim)

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        return {"cc": cc_loss(self.embed_s(student.pooled.flatten(1)), self.embed_t(teacher.pooled.flatten(1)))}
