"""Small helpers shared by the losses."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def reduce_batch(per_sample: Tensor, reduction: str) -> Tensor:
    """``per_sample`` (one value per sample) averaged over the batch (``"mean"``) or as is (``"none"``,
    for callers that weight samples, e.g. SDD's regions)."""
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "none":
        return per_sample
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def pool_to_match(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """RepDistiller's pool-to-match: if the heights differ, adaptive-average-pool the larger map to
    the smaller one's (h, h) size (square maps). Used by AT, VID, FT, NST, FSP."""
    ha, hb = a.shape[2], b.shape[2]
    if ha > hb:
        a = F.adaptive_avg_pool2d(a, (hb, hb))
    elif hb > ha:
        b = F.adaptive_avg_pool2d(b, (ha, ha))
    return a, b
