"""Hierarchical context loss of knowledge review: Chen, Liu, Zhao, Jia, "Distilling Knowledge via
Knowledge Review", CVPR 2021 (``hcl`` of dvlab-research/ReviewKD and mdistiller).

For each zipped pair of equally shaped maps (A, B) of height H:

    HCL(A, B) = [MSE(A, B) + sum_k w_k MSE(pool_{l_k}(A), pool_{l_k}(B))] / (1 + sum_k w_k)

with l_k the sizes 4, 2, 1 smaller than H (adaptive average pooling to l x l), w = 1/2, 1/4, 1/8
for the first, second and third size used, MSE the mean squared error; summed over the pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

__all__ = ["reviewkd_loss"]

POOL_SIZES = (4, 2, 1)


def reviewkd_loss(feats_s: Sequence[Tensor], feats_t: Sequence[Tensor]) -> Tensor:
    """Sum over the zipped map pairs of the hierarchical (multi-scale pooled) mean squared error."""
    total = 0
    for a, b in zip(feats_s, feats_t, strict=True):
        loss, weight, norm = F.mse_loss(a, b), 1.0, 1.0
        for size in (s for s in POOL_SIZES if s < a.shape[2]):
            weight /= 2
            loss = loss + weight * F.mse_loss(F.adaptive_avg_pool2d(a, size), F.adaptive_avg_pool2d(b, size))
            norm += weight
        total = total + loss / norm
    return total
