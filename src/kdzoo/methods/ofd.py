"""OFD: Heo, Kim, Yun, Park, Kwak, Choi, "A Comprehensive Overhaul of Feature Distillation", ICCV
2019 (mdistiller's port of clovaai/overhaul-distillation).

On the pre-ReLU stage maps (``feat[1:-1]``, ``preact=True``; the last n = min(L_s, L_t) of each), a
connector (1x1 conv without bias, N(0, 2/C_t) init, + BN) maps each student map to the teacher's
channels, the teacher map is average-pooled to the student's size, and

    L = sum_i 1/2^(n-i-1) * sum_{c,h,w} mean_b partial_L2(s_i, t_i; mu_i)

with the margins mu_i = E[x | x < 0] of the teacher's BN before each stage's last ReLU, computed
once at construction (see :func:`kdzoo.losses.ofd_loss`). Weights: gamma 1, alpha 0, beta 1e-3
(mdistiller; the original divides the summed distance by B * 1000; ImageNet 1e-4). Teachers without
a BN right before each stage's ReLU (ShuffleNets) are refused.

``variant="reference"`` (default): the teacher runs with batch statistics, as in both references
(clovaai/overhaul-distillation calls ``t_net.train()`` every epoch; mdistiller's ``OFD.train()``
puts the teacher in train mode with the student), so each teacher BN normalises with the statistics
of the batch (its output then has per channel exactly the mean, BN bias, and standard deviation,
|BN weight|, from which the margins are derived). In train mode both references also update the
teacher's running statistics (mdistiller too: ``torch.no_grad`` does not stop that) but never read
them again: the margins come from the BN's affine parameters and the teacher is not evaluated after
distillation starts; kdzoo leaves them untouched, which changes no loss value. The method declares
it in ``reads.teacher_batch_stats`` (:func:`kdzoo.distiller.run_networks` honours it). ``variant="eval"``: the
teacher in eval mode (running statistics), like every other method; named after what it changes rather than "paper",
as the teacher's BN mode is a choice of the code, not of the method's formulas.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated

import torch
from torch import Tensor, nn

from ..errors import KdzooError
from ..losses.ofd import ofd_loss, ofd_margin
from ..models.features import Features
from .base import PREACT_TAPS, LossWeights, Method, Reads
from .options import OneOf
from .registry import register_method

VARIANTS = ("reference", "eval")
VARIANT = OneOf(*VARIANTS, reference="reference: the teacher's BNs use batch statistics, as both reference codes; "
                                     "eval: the teacher in eval mode")


def _connector(c_s: int, c_t: int) -> nn.Sequential:
    conv = nn.Conv2d(c_s, c_t, kernel_size=1, bias=False)
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / c_t))
    return nn.Sequential(conv, nn.BatchNorm2d(c_t))


@register_method("ofd")
class OFD(Method):
    """Overhaul of feature distillation: partial L2 between connected pre-ReLU student maps and teacher maps."""

    paper = "Heo, Kim, Yun, Park, Kwak, Choi. A Comprehensive Overhaul of Feature Distillation. ICCV 2019"
    uses = ("feat[1:-1] pre-ReLU through Conv1x1+BN connectors; margins from the teacher's BNs before the ReLUs; "
            "variant=reference (teacher BNs with batch statistics, default) | eval (running statistics)")
    reads = Reads(student=PREACT_TAPS, teacher=PREACT_TAPS, bn_before_relu=True, teacher_batch_stats=True)
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=1e-3)

    @classmethod
    def reads_for(cls, options):
        return replace(cls.reads, teacher_batch_stats=options["variant"] == "reference")

    def __init__(self, student: Features, teacher: Features, *, variant: Annotated[str, VARIANT] = "reference",
                 teacher_model: nn.Module):
        super().__init__(student, teacher)
        self.variant = variant
        bns = list(teacher_model.get_bn_before_relu())  # ShuffleNets raise a KdzooError here
        t_channels = [t.shape[1] for t in teacher.stages]
        if [bn.num_features for bn in bns] != t_channels:
            raise KdzooError(
                f"OFD needs one BN before the ReLU of each teacher stage, with the stage's channels; the teacher's "
                f"stages have {t_channels} channels but get_bn_before_relu() gives "
                f"{[bn.num_features for bn in bns]}. Pick another teacher or another method.")
        n = min(len(student.stages), len(teacher.stages))
        pairs = list(zip(student.stages[-n:], teacher.stages[-n:], strict=True))
        self.connectors = nn.ModuleList(_connector(s.shape[1], t.shape[1]) for s, t in pairs)
        self.margin_channels = t_channels[-n:]
        self.register_buffer("margins", torch.cat([ofd_margin(bn.weight, bn.bias) for bn in bns[-n:]]))

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        n = len(self.connectors)
        connected = [c(f) for c, f in zip(self.connectors, student.stages[-n:], strict=True)]
        margins = torch.split(self.margins, self.margin_channels)
        return {"ofd": ofd_loss(connected, teacher.stages[-n:], margins)}
