"""Scale Decoupled Distillation: Wei, Luo, Luo, "Scale Decoupled Distillation", CVPR 2024
(shicaiwei123/SDD-CVPR2024).

The map f that a network globally pools into its classifier is average-pooled into cells at several
scales (M = {1, 2, 4}; cells ordered [1x1, 2x2 row-major, 4x4 row-major], R = 21) and every cell goes
through the network's own linear classifier, giving region logits pi(m, n). As the reference's ``SPP``
module, f is first pooled to a 4x4 grid and every scale's cells are pooled from that grid, whatever M
(a scale above 4 gets a grid of its own size). On maps whose side is a multiple of 4 (every CIFAR
map) each cell is the plain mean of its region. On other sides the 4x4 grid's windows overlap
(ImageNet's 7x7 maps: windows of 2-3 rows), so the 2x2 and 1x1 cells are weighted means of the map
(on 7x7 the 1x1 cell weights the map's positions between 0.34x and 2.1x), as in the reference.
Maps smaller than 4x4 are upsampled by the grid: a 2x2 map's cells stay exact means, a 3x3 map's 1x1
cell weights its corners 1.27x and its centre 0.56x. A base logit loss D (KD, DKD or NKD, one value per
sample and region) compares teacher and student region by region:

    L_SDD = 1/(B*R) * sum_{n, m} w(m, n) * D(pi_s(m, n), pi_t(m, n))

with w = 1 where the teacher's region prediction and its global prediction are both right or both
wrong ("consistent"), w = beta (2) where one is right and the other wrong ("complementary"); the
global cell (region 0) always has w = 1. The 1/(B*R) normalisation is the reference code's (the
paper writes a plain sum).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["multiscale_cells", "region_logits", "sdd_loss", "sdd_region_weights"]

GRID = 4  # side of the grid every scale is pooled from (the reference's SPP)


def multiscale_cells(feature_map: Tensor, scales: Sequence[int] = (1, 2, 4)) -> Tensor:
    """B x C x R cell vectors: ``feature_map`` pooled to the reference's 4x4 grid (or the largest scale,
    if above 4), every scale pooled from that grid, concatenated in increasing scale order (cells row-major)."""
    grid = F.adaptive_avg_pool2d(feature_map, max(GRID, *scales))
    return torch.cat([F.adaptive_avg_pool2d(grid, s).flatten(2) for s in sorted(scales)], dim=2)


def region_logits(cells: Tensor, classifier: nn.Linear) -> Tensor:
    """B x R x K: every cell (B x C x R) through the linear ``classifier``."""
    return classifier(cells.transpose(1, 2))


def sdd_region_weights(teacher_regions: Tensor, target: Tensor, complementary_weight: float = 2.0) -> Tensor:
    """B x R weights: 1 where the teacher's region prediction is right exactly when its global
    (region 0) prediction is, ``complementary_weight`` otherwise; region 0 always 1."""
    right = teacher_regions.argmax(dim=2) == target[:, None]
    consistent = right == right[:, :1]
    return torch.where(consistent, 1.0, complementary_weight).to(teacher_regions.dtype)


def sdd_loss(student_regions: Tensor, teacher_regions: Tensor, target: Tensor,
             base_loss: Callable[[Tensor, Tensor, Tensor], Tensor], complementary_weight: float = 2.0) -> Tensor:
    """The weighted mean of ``base_loss(student_logits, teacher_logits, target)`` (one value per row)
    over all samples and regions of B x R x K region logits."""
    b, r, k = student_regions.shape
    per_region = base_loss(student_regions.reshape(b * r, k), teacher_regions.reshape(b * r, k),
                           target.repeat_interleave(r))
    weights = sdd_region_weights(teacher_regions, target, complementary_weight).reshape(b * r)
    return (weights * per_region).sum() / (b * r)
