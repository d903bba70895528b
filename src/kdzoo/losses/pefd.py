"""Projector-ensemble feature distillation: Chen, Wang, Liu, Xu, de Hoog, Huang, "Improved Feature
Distillation via Projector Ensemble", NeurIPS 2022 (chenyd7/PEFD, ``--distill ours``).

On the pooled vectors (student f_s, teacher f_t), with q linear projectors g_k (C_s -> C_t):

    f_bar = 1/q * sum_k ReLU(g_k(f_s))
    L_PE = 1/B * sum_b (1 - cos(f_bar_b, f_t_b))

The reference divides by the norms without a guard (NaN when a projection is all zero); here the
norms are clamped at 1e-8 (``F.cosine_similarity``), which changes nothing otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["pefd_loss"]


def pefd_loss(feat_s: Tensor, feat_t: Tensor, projectors: Sequence[Callable[[Tensor], Tensor]]) -> Tensor:
    """Batch mean of 1 - cos between the ensemble mean of ReLU(projector(f_s)) and f_t (B x C each)."""
    ensemble = torch.stack([F.relu(project(feat_s)) for project in projectors]).mean(0)
    return (1 - F.cosine_similarity(ensemble, feat_t, dim=1)).mean()
