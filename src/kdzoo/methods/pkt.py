"""PKT: Passalis & Tefas, "Learning Deep Representations with Probabilistic Knowledge Transfer",
ECCV 2018.

    L = 1/B^2 * sum_ij P_t[i,j] log((P_t[i,j] + eps) / (P_s[i,j] + eps)),   eps = 1e-7

on the pooled vectors ``feat[-1]``, with P the row-normalised cosine similarities mapped to [0, 1].
Batch-size dependent (about 1/B): the default weight (beta = 30000) is RepDistiller's for batch 64.
"""

from __future__ import annotations

from torch import Tensor

from ..losses.pkt import pkt_loss
from ..models.features import Features
from .base import FEATURE_READS, LossWeights, Method
from .registry import register_method


@register_method("pkt")
class PKT(Method):
    """Probabilistic knowledge transfer: KL between the cosine-similarity distributions of pooled vectors."""

    paper = "Passalis, Tefas. Learning Deep Representations with Probabilistic Knowledge Transfer. ECCV 2018"
    uses = "feat[-1] (pooled vector)"
    reads = FEATURE_READS
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=30000.0)
    reference_batch_size = 64

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        return {"pkt": pkt_loss(student.pooled, teacher.pooled)}
