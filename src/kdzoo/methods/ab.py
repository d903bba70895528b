"""AB: Heo et al., "Knowledge Transfer via Distillation of Activation Boundaries Formed by Hidden
Neurons", AAAI 2019.

On the pre-activation stage maps (``feat[1:-1]``, ``preact=True``), with a connector per pair
(identity when channels and size agree, else ``ConvReg(use_relu=False)``):

    L = sum_l 2^(l-L+1) * sum[(s+m)^2 1[s>-m, t<=0] + (s-m)^2 1[s<=m, t>0]] / B * 3/1000

(see :func:`kdzoo.losses.ab_loss`). As in RepDistiller, AB is an init-stage method: for
``init_epochs`` epochs the connectors and the student's feature modules (``get_feat_modules()``)
are trained on L alone, at the run's lr; the main stage is then plain CE training, so beta has no
effect (RepDistiller's weights: gamma 1, alpha 0, beta 1). ``main_loss=True`` keeps beta * L in the
main stage too (a kdzoo variant, not RepDistiller's). The connectors stay in eval mode during the
main stage, as in the reference.
"""

from __future__ import annotations

from typing import Annotated

from torch import nn

from ..errors import KdzooError
from ..losses import ab_loss
from .base import LOGIT_READS, PREACT_TAPS, InitStage, LossWeights, Method, Reads
from .connectors import ConvReg
from .options import Range
from .registry import register_method


@register_method("ab")
class AB(Method):
    """Activation boundaries: a margin loss on where pre-activation stage maps cross zero, trained in an init stage."""

    paper = ("Heo, Lee, Yun, Choi. Knowledge Transfer via Distillation of Activation Boundaries Formed "
             "by Hidden Neurons. AAAI 2019")
    uses = "feat[1:-1] pre-activation (init stage; main stage only with main_loss=True)"
    reads = LOGIT_READS  # the main stage adds no loss (RepDistiller's), unless main_loss
    init_reads = Reads(student=PREACT_TAPS, teacher=PREACT_TAPS)
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=1.0)

    def __init__(self, student, teacher, *, margin: Annotated[float, Range(ge=0)] = 1.0, main_loss: bool = False,
                 init_epochs: Annotated[int, Range(ge=0)] = 30):
        super().__init__(student, teacher)
        s_maps, t_maps = student.stages, teacher.stages
        if len(s_maps) != len(t_maps):
            raise KdzooError(
                f"AB pairs the stage maps one to one, but the student has {len(s_maps)} "
                f"({_shapes(s_maps)}) and the teacher {len(t_maps)} ({_shapes(t_maps)}). "
                f"Pick a student and teacher with the same number of stages, or another method (e.g. vid, at).")
        self.margin = margin
        self.main_loss = main_loss
        self.has_main_term = main_loss
        self.init_epochs = init_epochs
        self.connectors = nn.ModuleList(
            nn.Sequential() if s.shape[1:3] == t.shape[1:3] else ConvReg(s.shape, t.shape, use_relu=False)
            for s, t in zip(s_maps, t_maps, strict=False)
        )

    @classmethod
    def reads_for(cls, options):
        return cls.init_reads if options["main_loss"] else cls.reads

    def _loss(self, student, teacher):
        connected = [c(f) for c, f in zip(self.connectors, student.stages, strict=False)]
        return ab_loss(connected, teacher.stages, self.margin)

    def forward(self, student, teacher, batch):
        return {"ab": self._loss(student, teacher)} if self.main_loss else {}

    def init_stage(self, student, lr):
        return InitStage(modules=[self.connectors, student.get_feat_modules()], epochs=self.init_epochs, lr=lr,
                         reads=self.init_reads)

    def init_loss(self, student, teacher, batch):
        return self._loss(student, teacher)

    def train(self, mode: bool = True):
        super().train(mode)
        self.connectors.eval()  # RepDistiller keeps the Connector in eval mode in the main stage
        return self


def _shapes(maps) -> str:
    return ", ".join("x".join(map(str, m.shape[1:])) for m in maps)
