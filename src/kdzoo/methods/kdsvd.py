"""KDSVD: Lee, Kim, Song, "Self-supervised Knowledge Distillation Using Singular Value
Decomposition", ECCV 2018.

On the stage maps ``feat[1:-1]``: the leading right singular vectors of each map (as B x HW x C),
the student's aligned to the teacher's, and an RBF kernel between the vectors of consecutive layers;

    L = sum_l sum_{b,i,j,n} (K_s^l - K_t^l)^2 / B,  K^l[b,i,j,n] = exp(-(v_l[b,i,n] - v_{l-1}[b,j,n])^2 / 8)

(see :func:`kdzoo.losses.kdsvd_loss`; ``torch.linalg.svd`` instead of the deprecated ``torch.svd``).
Student and teacher need equal channel counts at every stage. RepDistiller has no script weight
for KDSVD and did not benchmark it: kdzoo's default beta = 1 is a plain choice, not a tuned value.
"""

from __future__ import annotations

from typing import Annotated

from ..errors import KdzooError
from ..losses import kdsvd_loss
from .base import FEATURE_READS, LossWeights, Method
from .fsp import require_equal_channels
from .options import Range
from .registry import register_method


@register_method("kdsvd")
class KDSVD(Method):
    """KD with SVD: RBF kernels between the leading singular vectors of consecutive stage maps."""

    paper = ("Lee, Kim, Song. Self-supervised Knowledge Distillation Using Singular Value Decomposition. "
             "ECCV 2018")
    uses = "feat[1:-1] (stage maps; equal channel counts)"
    reads = FEATURE_READS
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=1.0)  # no reference value; not benchmarked

    def __init__(self, student, teacher, *, k: Annotated[int, Range(ge=1)] = 1):
        super().__init__(student, teacher)
        if min(len(student.stages), len(teacher.stages)) < 2:
            raise KdzooError("KDSVD relates consecutive stage maps and needs at least two of them in each network.")
        require_equal_channels("KDSVD", student.stages, teacher.stages, first=1)
        self.k = k

    def forward(self, student, teacher, batch):
        return {"kdsvd": kdsvd_loss(student.stages, teacher.stages, self.k)}
