"""Flow of solution procedure: Yim, Joo, Bae, Kim, "A Gift from Knowledge Distillation: Fast
Optimization, Network Minimization and Transfer Learning", CVPR 2017.

For consecutive maps a, b of one network (the larger average-pooled to the smaller one's size),
the FSP matrix is

    G(a, b)[n, j, i] = 1/(H*W) * sum_{hw} a[n, i, hw] * b[n, j, hw]        (B x C_b x C_a)

and L = sum_pairs 1/(B*C_b*C_a) * ||G_s - G_t||_F^2, as RepDistiller's ``FSP``. Student and
teacher need the same channel count at every map.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import Tensor

from .common import pool_to_match

__all__ = ["fsp_loss", "fsp_matrices"]


def fsp_matrices(maps: Sequence[Tensor]) -> list[Tensor]:
    """The FSP (Gram) matrices ``B x C_{l+1} x C_l`` between consecutive maps of one network."""
    grams = []
    for bottom, top in pairwise(maps):
        bottom, top = pool_to_match(bottom, top)
        grams.append(torch.bmm(top.flatten(2), bottom.flatten(2).transpose(1, 2)) / bottom[0, 0].numel())
    return grams


def fsp_loss(feats_s: Sequence[Tensor], feats_t: Sequence[Tensor]) -> Tensor:
    """Sum over consecutive-map pairs of the mean squared difference of the FSP matrices."""
    pairs = zip(fsp_matrices(feats_s), fsp_matrices(feats_t), strict=False)
    return sum((g_s - g_t).pow(2).mean() for g_s, g_t in pairs)
