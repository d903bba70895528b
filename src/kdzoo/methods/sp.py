"""SP: Tung & Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019 (RepDistiller's
``similarity``).

    L = || normalize_rows(Q_t Q_t^T) - normalize_rows(Q_s Q_s^T) ||_F^2 / B^2,   Q = feat[-2] as B x CHW

Batch-size dependent (about 1/B): the default weight (beta = 3000) is RepDistiller's for batch 64,
and the short last batch of an epoch weighs more. Kept as the reference computes it.
"""

from __future__ import annotations

from torch import Tensor

from ..losses.sp import sp_loss
from ..models.features import Features
from .base import FEATURE_READS, LossWeights, Method
from .registry import register_method


@register_method("sp")
class SP(Method):
    """Similarity preserving: Frobenius distance between normalised batch similarity matrices."""

    paper = "Tung, Mori. Similarity-Preserving Knowledge Distillation. ICCV 2019"
    uses = "feat[-2] (last stage map)"
    reads = FEATURE_READS
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=3000.0)
    reference_batch_size = 64

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        return {"sp": sp_loss(student.feats[-2], teacher.feats[-2])}
