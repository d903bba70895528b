"""Relational KD: Park, Kim, Lu, Cho, "Relational Knowledge Distillation", CVPR 2019.

On flattened features x_i (one row per sample), as RepDistiller's ``RKDLoss(w_d=25, w_a=50)``:

- distance: d_ij = sqrt(max(|x_i|^2 + |x_j|^2 - 2 x_i.x_j, 1e-12)), d_ii = 0, divided by the mean
  of the positive d_ij; ``L_D = SmoothL1(d_s, d_t)`` (threshold 1, mean over B^2 entries);
- angle: e_ij = normalize_2(x_j - x_i) (zero for j = i), psi_ijk = e_ij . e_ik;
  ``L_A = SmoothL1(psi_s, psi_t)`` (mean over B^3 entries);
- ``L = w_d * L_D + w_a * L_A``.

The teacher's relations are computed without gradients. The angle term holds a B x B x D tensor.
A 1-sample batch has no distance to normalise by and gives L_D = 0 (RepDistiller: NaN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["rkd_angle_loss", "rkd_distance_loss", "rkd_loss"]


def _distances(x: Tensor) -> Tensor:
    x = x.flatten(1)
    sq = x.pow(2).sum(1)
    d = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * x @ x.t()).clamp(min=1e-12).sqrt()
    d = d * (1 - torch.eye(len(x), dtype=d.dtype, device=d.device))
    return d / (d.sum() / (d > 0).sum())  # mean of the positive distances (d >= 0), without a sync


def _angles(x: Tensor) -> Tensor:
    x = x.flatten(1)
    e = F.normalize(x.unsqueeze(0) - x.unsqueeze(1), p=2, dim=2)  # e[i, j] = unit(x_j - x_i)
    return torch.bmm(e, e.transpose(1, 2)).flatten()


def rkd_distance_loss(f_s: Tensor, f_t: Tensor) -> Tensor:
    """Smooth-L1 distance between the mean-normalised pairwise-distance matrices."""
    if f_s.shape[0] < 2:
        return (f_s * 0).sum()
    with torch.no_grad():
        d_t = _distances(f_t)
    return F.smooth_l1_loss(_distances(f_s), d_t)


def rkd_angle_loss(f_s: Tensor, f_t: Tensor) -> Tensor:
    """Smooth-L1 distance between the B^3 cosines of the angles x_j - x_i, x_k - x_i."""
    with torch.no_grad():
        a_t = _angles(f_t)
    return F.smooth_l1_loss(_angles(f_s), a_t)


def rkd_loss(f_s: Tensor, f_t: Tensor, w_d: float = 25.0, w_a: float = 50.0) -> Tensor:
    """``w_d * rkd_distance_loss + w_a * rkd_angle_loss``."""
    return w_d * rkd_distance_loss(f_s, f_t) + w_a * rkd_angle_loss(f_s, f_t)
