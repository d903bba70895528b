"""ReviewKD: Chen, Liu, Zhao, Jia, "Distilling Knowledge via Knowledge Review", CVPR 2021 (mdistiller's
port of dvlab-research/ReviewKD).

Levels: the student's stage maps ``feat[1:-1]`` (post-ReLU; pre-ReLU with ``student_preact=True``)
plus its pooled vector as a 1x1 map; the teacher's pre-ReLU stage maps plus its pooled vector. The
deepest n = min(#student levels, #teacher levels) of each are paired (the reference configures the
lists per pair; they always pair the deepest levels). Deepest first, an attention-based fusion
(ABF) per level turns the student level, fused with the residual of the deeper level, into a map
of the teacher level's channels and size; then

    L = min(epoch / warmup_epochs, 1) * sum_levels HCL(ABF output, teacher level)

(1-based epoch; HCL in :func:`kdzoo.losses.reviewkd_loss`). Weights: gamma 1, alpha 0, beta 5
(mdistiller's resnet32x4 -> resnet8x4 config; the original uses 0.6-8 per pair). The warm-up
factor is a buffer, so it is checkpointed; before the first ``on_epoch_start`` it holds epoch 1's
value. The teacher's features are taken pre-ReLU (``teacher_preact``) while the student's are not.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses.reviewkd import reviewkd_loss
from ..models.features import Features
from .base import PREACT_TAPS, TAPS, LossWeights, Method, Reads, linear_warmup
from .options import Range
from .registry import register_method

MAX_MID_CHANNELS = 512  # mdistiller hard-codes 512 (its MAX_MID_CHANNEL option is ignored)


class ABF(nn.Module):
    """Attention-based fusion: 1x1 conv + BN to ``c_mid``, fused with the deeper level's residual by
    two sigmoid attention maps (``fuse``), resized to the teacher level's size, 3x3 conv + BN to ``c_out``."""

    def __init__(self, c_in: int, c_mid: int, c_out: int, fuse: bool):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(c_in, c_mid, kernel_size=1, bias=False), nn.BatchNorm2d(c_mid))
        self.conv2 = nn.Sequential(nn.Conv2d(c_mid, c_out, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(c_out))
        self.att_conv = nn.Sequential(nn.Conv2d(2 * c_mid, 2, kernel_size=1), nn.Sigmoid()) if fuse else None
        nn.init.kaiming_uniform_(self.conv1[0].weight, a=1)
        nn.init.kaiming_uniform_(self.conv2[0].weight, a=1)

    def forward(self, x: Tensor, residual: Tensor | None, out_size: torch.Size) -> tuple[Tensor, Tensor]:
        """(output for the loss, residual for the next shallower level)."""
        x = self.conv1(x)
        if self.att_conv is not None:
            residual = F.interpolate(residual, size=x.shape[-2:], mode="nearest")
            att = self.att_conv(torch.cat([x, residual], dim=1))
            x = x * att[:, :1] + residual * att[:, 1:]
        if x.shape[-2:] != out_size:
            x = F.interpolate(x, size=out_size, mode="nearest")
        return self.conv2(x), x


def levels(features: Features) -> list[Tensor]:
    """The stage maps and the pooled vector as a 1x1 map, shallowest first."""
    return [*features.stages, features.pooled[:, :, None, None]]


@register_method("reviewkd")
class ReviewKD(Method):
    """Knowledge review: fused student levels (ABF, deepest first) matched to teacher levels by HCL."""

    paper = "Chen, Liu, Zhao, Jia. Distilling Knowledge via Knowledge Review. CVPR 2021"
    uses = ("feat[1:-1] + feat[-1] as a 1x1 map, fused deepest first by ABFs; teacher's pre-ReLU feat[1:-1] "
            "+ feat[-1]; 20-epoch warm-up")
    reads = Reads(student=TAPS, teacher=PREACT_TAPS)
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=5.0)

    @classmethod
    def reads_for(cls, options):
        return replace(cls.reads, student=PREACT_TAPS) if options["student_preact"] else cls.reads

    def __init__(self, student: Features, teacher: Features, *,
                 warmup_epochs: Annotated[float, Range(ge=0, reference="20; 0 = no warm-up")] = 20,
                 student_preact: bool = False):
        super().__init__(student, teacher)
        self.warmup_epochs = warmup_epochs
        s_levels, t_levels = levels(student), levels(teacher)
        self.num_levels = n = min(len(s_levels), len(t_levels))
        mid = min(MAX_MID_CHANNELS, student.pooled.shape[1])
        deepest_first = zip(s_levels[::-1][:n], t_levels[::-1][:n], strict=True)
        self.abfs = nn.ModuleList(ABF(s.shape[1], mid, t.shape[1], fuse=k > 0)
                                  for k, (s, t) in enumerate(deepest_first))
        self.register_buffer("warmup_factor", torch.tensor(linear_warmup(1, self.warmup_epochs)))

    def on_epoch_start(self, epoch: int, total_epochs: int) -> None:
        self.warmup_factor.fill_(linear_warmup(epoch, self.warmup_epochs))

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        n = self.num_levels
        t_levels = levels(teacher)[-n:]
        outputs, residual = [], None
        for abf, x, t in zip(self.abfs, levels(student)[::-1], t_levels[::-1], strict=False):
            out, residual = abf(x, residual, t.shape[-2:])
            outputs.append(out)
        return {"reviewkd": self.warmup_factor * reviewkd_loss(outputs[::-1], t_levels)}
