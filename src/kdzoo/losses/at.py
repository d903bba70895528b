"""Attention transfer: Zagoruyko & Komodakis, "Paying More Attention to Attention: Improving the
Performance of Convolutional Neural Networks via Attention Transfer", ICLR 2017.

For each student/teacher map pair (paired with ``zip``, the larger map average-pooled to the
smaller one's size):

    a(F) = normalize_2( vec_{HW}( 1/C * sum_c F_c^p ) )          (one unit row per sample)
    L = sum_l 1/(B*H_l*W_l) * || a(F_s^l) - a(F_t^l) ||_F^2

as RepDistiller's ``Attention(p=2)``. Channel counts need not match.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .common import pool_to_match

__all__ = ["at_loss", "attention_map"]


def attention_map(f: Tensor, p: float = 2) -> Tensor:
    """The B x HW attention map of a B x C x H x W map: channel mean of ``f**p``, L2-normalised per sample."""
    return F.normalize(f.pow(p).mean(1).flatten(1), dim=1)


def at_loss(feats_s: list[Tensor], feats_t: list[Tensor], p: float = 2) -> Tensor:
    """Sum over the zipped map pairs of the mean squared difference of their attention maps."""
    total = 0
    for f_s, f_t in zip(feats_s, feats_t, strict=False):
        f_s, f_t = pool_to_match(f_s, f_t)
        total = total + (attention_map(f_s, p) - attention_map(f_t, p)).pow(2).mean()
    return total
