"""NST: Huang & Wang, "Like What You Like: Knowledge Distill via Neuron Selectivity Transfer",
arXiv 1707.01219, 2017.

    L = sum_l MMD^2_poly(channels of F_s^l, channels of F_t^l),  k(a, b) = (a . b)^2

over the stage maps ``feat[1:-1]`` paired with ``zip``, pooled to match, each channel vector
L2-normalised over the positions (RepDistiller's ``NSTLoss``). No extra modules.
"""

from __future__ import annotations

from torch import Tensor

from ..losses.nst import nst_loss
from ..models.features import Features
from .base import FEATURE_READS, LossWeights, Method
from .registry import register_method


@register_method("nst")
class NST(Method):
    """Neuron selectivity transfer: polynomial-kernel MMD between the channel distributions of paired stages."""

    paper = "Huang, Wang. Like What You Like: Knowledge Distill via Neuron Selectivity Transfer. arXiv 2017"
    uses = "feat[1:-1] (stage maps, zip-paired, pooled to match)"
    reads = FEATURE_READS
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=50.0)

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        return {"nst": nst_loss(student.stages, teacher.stages)}
