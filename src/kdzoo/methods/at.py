"""AT: Zagoruyko & Komodakis, "Paying More Attention to Attention", ICLR 2017 (RepDistiller's
``attention``).

    L = sum_l mean_{b,hw} ( a(F_s^l) - a(F_t^l) )^2,   a(F) = normalize_2(vec(mean_c F_c^p))

over the stage maps ``feat[1:-1]`` paired with ``zip`` (extra stages of the deeper list are
ignored), the larger map of each pair average-pooled to the smaller one's size. No extra modules.
"""

from __future__ import annotations

from typing import Annotated

from torch import Tensor

from ..losses.at import at_loss
from ..models.features import Features
from .base import FEATURE_READS, LossWeights, Method
from .options import Range
from .registry import register_method


@register_method("at")
class AT(Method):
    """Attention transfer: distance between normalised spatial attention maps of paired stages."""

    paper = ("Zagoruyko, Komodakis. Paying More Attention to Attention: Improving the Performance of "
             "Convolutional Neural Networks via Attention Transfer. ICLR 2017")
    uses = "feat[1:-1] (stage maps, zip-paired, pooled to match)"
    reads = FEATURE_READS
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=1000.0)

    def __init__(self, student: Features, teacher: Features, *,
                 p: Annotated[float, Range(gt=0, reference="2 (the paper and RepDistiller)")] = 2):
        super().__init__(student, teacher)
        self.p = p

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        return {"at": at_loss(student.stages, teacher.stages, self.p)}
