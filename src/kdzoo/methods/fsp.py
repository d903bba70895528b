"""FSP: Yim et al., "A Gift from Knowledge Distillation: Fast Optimization, Network Minimization
and Transfer Learning", CVPR 2017.

FSP (Gram) matrices between consecutive maps of ``feat[:-1]`` (stem and stages) of each network,

    G(a, b) = 1/(HW) * b a^T  (B x C_b x C_a, after pool-to-match),   L = sum_pairs mean (G_s - G_t)^2

(see :func:`kdzoo.losses.fsp_loss`). As in RepDistiller, FSP is an init-stage method: the student's
feature modules (``get_feat_modules()``) are trained on L for ``init_epochs`` epochs at the run's lr,
then the main stage is plain CE training, so beta has no effect (RepDistiller's weights: gamma 1,
alpha 0, beta 50). ``main_loss=True`` keeps beta * L in the main stage (a kdzoo variant). Student
and teacher must have the same channel count at every tapped map.
"""

from __future__ import annotations

from typing import Annotated

from ..errors import KdzooError
from ..losses import fsp_loss
from .base import FEATURE_READS, LOGIT_READS, InitStage, LossWeights, Method
from .options import Range
from .registry import register_method


def require_equal_channels(method: str, s_maps, t_maps, first: int) -> None:
    """Refuse a pair whose zipped maps (``feat[first + i]``) differ in channel count."""
    bad = [f"feat[{first + i}] (student {s.shape[1]}, teacher {t.shape[1]} channels)"
           for i, (s, t) in enumerate(zip(s_maps, t_maps, strict=False)) if s.shape[1] != t.shape[1]]
    if bad:
        raise KdzooError(
            f"{method} needs equal student and teacher channel counts at every tapped layer, but they differ at "
            f"{', '.join(bad)}. Use a student as wide as the teacher (e.g. wrn_40_2 -> wrn_16_2, resnet32x4 -> "
            f"resnet8x4), or a method that handles different widths (e.g. at, nst, vid).")


@register_method("fsp")
class FSP(Method):
    """Flow of solution procedure: MSE between Gram matrices of consecutive maps, trained in an init stage."""

    paper = ("Yim, Joo, Bae, Kim. A Gift from Knowledge Distillation: Fast Optimization, Network "
             "Minimization and Transfer Learning. CVPR 2017")
    uses = "feat[:-1] (stem + stage maps; init stage; main stage only with main_loss=True)"
    reads = LOGIT_READS  # the main stage adds no loss (RepDistiller's), unless main_loss
    init_reads = FEATURE_READS
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=50.0)

    def __init__(self, student, teacher, *, main_loss: bool = False, init_epochs: Annotated[int, Range(ge=0)] = 30):
        super().__init__(student, teacher)
        s_maps, t_maps = student.feats[:-1], teacher.feats[:-1]
        if len(s_maps) != len(t_maps):
            raise KdzooError(
                f"FSP compares the maps feat[:-1] one to one, but the student has {len(s_maps)} and the teacher "
                f"{len(t_maps)}. Pick a student and teacher with the same number of stages (same family).")
        require_equal_channels("FSP", s_maps, t_maps, first=0)
        self.main_loss = main_loss
        self.has_main_term = main_loss
        self.init_epochs = init_epochs

    def forward(self, student, teacher, batch):
        return {"fsp": fsp_loss(student.feats[:-1], teacher.feats[:-1])} if self.main_loss else {}

    def init_stage(self, student, lr):
        return InitStage(modules=[student.get_feat_modules()], epochs=self.init_epochs, lr=lr, reads=self.init_reads)

    @classmethod
    def reads_for(cls, options):
        return cls.init_reads if options["main_loss"] else cls.reads

    def init_loss(self, student, teacher, batch):
        return fsp_loss(student.feats[:-1], teacher.feats[:-1])
