"""Small helpers shared by the feature losses."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def pool_to_match(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """RepDistiller's pool-to-match: if the heights differ, adaptive-average-pool the larger map to
    the smaller one's (h, h) size (square maps). Used by AT, VID, FT, NST, FSP."""
    ha, hb = a.shape[2], b.shape[2]
    if ha > hb:
        a = F.adaptive_avg_pool2d(a, (hb, hb))
    elif hb > ha:
        b = F.adaptive_avg_pool2d(b, (ha, ha))
    return a, b
