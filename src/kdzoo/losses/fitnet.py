"""FitNet hint loss: Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015.

    L = 1/(B*C*H*W) * sum_{b,c,h,w} (r(F_s) - F_t)^2

``F_t`` is the teacher's hint-layer map and ``r(F_s)`` the student's map after a trainable
regressor of the teacher map's shape (RepDistiller's ``ConvReg``,
:class:`kdzoo.methods.connectors.ConvReg`). RepDistiller's ``HintLoss`` is ``nn.MSELoss()``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["fitnet_loss"]


def fitnet_loss(f_s: Tensor, f_t: Tensor) -> Tensor:
    """Mean squared error between the regressed student map ``f_s`` and the teacher map ``f_t``
    (same shape)."""
    if f_s.shape != f_t.shape:
        raise ValueError(f"fitnet_loss needs maps of one shape, got {tuple(f_s.shape)} and {tuple(f_t.shape)}; "
                         f"regress the student map onto the teacher's first (e.g. with ConvReg).")
    return F.mse_loss(f_s, f_t)
