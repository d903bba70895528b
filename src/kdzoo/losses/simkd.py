"""SimKD: Chen, Mei, Zhang, Wang, Feng, Chen, "Knowledge Distillation with the Reused Teacher Classifier",
CVPR 2022 (DefangChen/SimKD).

    L_SimKD = mean over all elements of (P(f_s) - f_t)^2

between the projected student map and the teacher's map, after pooling the larger of the two to the
smaller's size (the projector P and the reused classifier are in :mod:`kdzoo.models.heads`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .common import pool_to_match

__all__ = ["simkd_loss"]


def simkd_loss(projected_s: Tensor, feat_t: Tensor) -> Tensor:
    """MSE (mean over batch, channels and positions) between P(f_s) and f_t, sizes matched by pooling."""
    projected_s, feat_t = pool_to_match(projected_s, feat_t)
    return F.mse_loss(projected_s, feat_t)
