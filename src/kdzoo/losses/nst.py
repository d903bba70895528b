"""Neuron selectivity transfer: Huang & Wang, "Like What You Like: Knowledge Distill via Neuron
Selectivity Transfer", arXiv 1707.01219, 2017.

For each zipped pair of maps (the larger average-pooled to the smaller one's size), reshaped to
B x C x HW with every channel vector L2-normalised over HW, and the polynomial kernel
k(a, b) = (a . b)^2:

    L = sum_l [ mean k(t_i, t_j) + mean k(s_i, s_j) - 2 mean k(s_i, t_j) ]

(means over B x channels x channels): the biased squared MMD between the student's and the
teacher's sets of channel vectors, as RepDistiller's ``NSTLoss`` (teacher-teacher term detached).
Channel counts may differ.

The kernel means are computed through whichever Gram matrix is smaller: channel x channel, or
HW x HW via ``sum_ij (a_i . b_j)^2 = <A^T A, B^T B>_F`` (same value, far less memory for wide
maps with few positions).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import pool_to_match

__all__ = ["nst_loss"]


def _kernel_mean(a: Tensor, b: Tensor) -> Tensor:
    """Mean over (batch, i, j) of (a_i . b_j)^2 for a: B x C_a x N, b: B x C_b x N."""
    n, ca, cb = a.shape[2], a.shape[1], b.shape[1]
    if 2 * n * n < ca * cb:
        ga = torch.bmm(a.transpose(1, 2), a)
        gb = torch.bmm(b.transpose(1, 2), b)
        return (ga * gb).sum() / (a.shape[0] * ca * cb)
    return torch.bmm(a, b.transpose(1, 2)).pow(2).mean()


def nst_loss(feats_s: list[Tensor], feats_t: list[Tensor]) -> Tensor:
    """Sum over the zipped map pairs of the polynomial-kernel MMD^2 between channel vectors."""
    total = 0
    for f_s, f_t in zip(feats_s, feats_t, strict=False):
        f_s, f_t = pool_to_match(f_s, f_t)
        s = F.normalize(f_s.flatten(2), dim=2)
        t = F.normalize(f_t.flatten(2), dim=2)
        total = total + _kernel_mean(t, t).detach() + _kernel_mean(s, s) - 2 * _kernel_mean(s, t)
    return total
