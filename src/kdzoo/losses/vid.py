"""Variational information distillation: Ahn, Hu, Damianou, Lawrence, Dai, "Variational Information
Distillation for Knowledge Transfer", CVPR 2019.

For each zipped student/teacher map pair (the larger map average-pooled to the smaller one's size),
a regressor R gives the mean of a Gaussian over the teacher map with a learned per-channel variance:

    sigma_c^2 = softplus(alpha_c) + eps
    L = sum_l 1/(B*C*H*W) * sum_{b,c,h,w} 1/2 * [ (R(F_s)_{bchw} - F_t_{bchw})^2 / sigma_c^2 + log sigma_c^2 ]

as RepDistiller's ``VIDLoss`` (which writes softplus as ``log(1 + exp(alpha))``; same value, no
overflow). The loss can be negative once sigma^2 < 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch.nn.functional as F
from torch import Tensor

from .common import pool_to_match

__all__ = ["vid_loss"]


def vid_loss(
    feats_s: Sequence[Tensor],
    feats_t: Sequence[Tensor],
    regressors: Sequence[Callable[[Tensor], Tensor]],
    log_scales: Sequence[Tensor],
    eps: float = 1e-5,
) -> Tensor:
    """Sum over the zipped pairs of the mean Gaussian negative log-likelihood (without log 2 pi)
    of the teacher map under mean ``regressor(F_s)`` and per-channel variance ``softplus(log_scale) + eps``."""
    total = 0
    for f_s, f_t, regress, log_scale in zip(feats_s, feats_t, regressors, log_scales, strict=False):
        f_s, f_t = pool_to_match(f_s, f_t)
        var = (F.softplus(log_scale) + eps).view(1, -1, 1, 1)
        total = total + (0.5 * ((regress(f_s) - f_t).pow(2) / var + var.log())).mean()
    return total
