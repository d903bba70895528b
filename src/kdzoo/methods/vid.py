"""VID: Ahn et al., "Variational Information Distillation for Knowledge Transfer", CVPR 2019.

For every zipped pair of stage maps (``feat[1:-1]``), a regressor R (1x1 convs C_s -> C_t -> C_t
-> C_t, no bias, ReLU between) predicts the mean of a Gaussian over the teacher map, with a
learned per-channel variance softplus(alpha) + eps (alpha initialised so that the variance is
``init_pred_var``):

    L = sum_l mean_{b,c,h,w} 1/2 [ (R_l(F_s^l) - F_t^l)^2 / sigma_c^2 + log sigma_c^2 ]

See :func:`kdzoo.losses.vid_loss`. RepDistiller weights: gamma 1, alpha 0, beta 1.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from torch import nn

from ..errors import KdzooError
from ..losses import vid_loss
from .base import FEATURE_READS, LossWeights, Method
from .options import Range
from .registry import register_method


class VIDRegressor(nn.Module):
    """One pair's mean regressor and per-channel log-scale (RepDistiller's ``VIDLoss`` parameters)."""

    def __init__(self, c_in: int, c_mid: int, c_out: int, init_pred_var: float, eps: float):
        super().__init__()
        self.regressor = nn.Sequential(
            nn.Conv2d(c_in, c_mid, 1, bias=False), nn.ReLU(),
            nn.Conv2d(c_mid, c_mid, 1, bias=False), nn.ReLU(),
            nn.Conv2d(c_mid, c_out, 1, bias=False),
        )
        self.log_scale = nn.Parameter(torch.full((c_out,), math.log(math.expm1(init_pred_var - eps))))


@register_method("vid")
class VID(Method):
    """Variational information distillation: Gaussian likelihood of teacher maps given regressed student maps."""

    paper = ("Ahn, Hu, Damianou, Lawrence, Dai. Variational Information Distillation for Knowledge "
             "Transfer. CVPR 2019")
    uses = "feat[1:-1] (stage maps), one trainable regressor + log-variance per pair"
    reads = FEATURE_READS
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=1.0)

    def __init__(self, student, teacher, *, init_pred_var: Annotated[float, Range(gt=0)] = 5.0,
                 eps: Annotated[float, Range(gt=0)] = 1e-5):
        super().__init__(student, teacher)
        if not init_pred_var > eps > 0:
            raise KdzooError(f"VID needs init_pred_var > eps > 0, got init_pred_var={init_pred_var}, eps={eps}.")
        self.eps = eps
        self.pairs = nn.ModuleList(
            VIDRegressor(s.shape[1], t.shape[1], t.shape[1], init_pred_var, eps)
            for s, t in zip(student.stages, teacher.stages, strict=False)
        )

    def forward(self, student, teacher, batch):
        regressors = [p.regressor for p in self.pairs]
        log_scales = [p.log_scale for p in self.pairs]
        return {"vid": vid_loss(student.stages, teacher.stages, regressors, log_scales, self.eps)}
