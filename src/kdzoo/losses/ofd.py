"""Overhaul of feature distillation: Heo, Kim, Yun, Park, Kwak, Choi, "A Comprehensive Overhaul of
Feature Distillation", ICCV 2019 (mdistiller's port of clovaai/overhaul-distillation).

On pre-ReLU stage maps (student s after its connector, teacher t average-pooled to s's size), with
a per-channel margin mu from the teacher's BN before the ReLU, the partial L2 distance

    l = (s - mu)^2 1[s > mu, t <= mu] + (s - t)^2 1[s > t, mu < t <= 0] + (s - t)^2 1[t > 0]
    L = sum_i 1/2^(n-i-1) * sum_{c,h,w} mean_b l_i

over the last n = min(#student, #teacher, #margins) maps of each list (weights ..., 1/4, 1/2, 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ofd_loss", "ofd_margin"]


def ofd_margin(bn_weight: Tensor, bn_bias: Tensor) -> Tensor:
    """Per-channel margin E[x | x < 0] for x ~ N(m, s^2), s = |BN weight|, m = BN bias:
    m - s * phi(m/s) / Phi(-m/s) if Phi(-m/s) > 0.001, else -3s (float32, on the CPU: computed
    once, in float64). A zero weight gives the limit min(m, 0) (the reference divides by zero)."""
    s, m = bn_weight.detach().cpu().double().abs(), bn_bias.detach().cpu().double()
    z = m / s
    cdf = torch.special.ndtr(-z)
    pdf = torch.exp(-z.pow(2) / 2) / math.sqrt(2 * math.pi)
    return torch.where(cdf > 0.001, m - s * pdf / cdf, -3 * s).float()


def ofd_loss(feats_s: Sequence[Tensor], feats_t: Sequence[Tensor], margins: Sequence[Tensor]) -> Tensor:
    """Weighted partial L2 over the last n aligned (student, teacher, margin) triples, deepest last."""
    n = min(len(feats_s), len(feats_t), len(margins))
    total = 0
    for i, (s, t, mu) in enumerate(zip(feats_s[-n:], feats_t[-n:], margins[-n:], strict=True)):
        t = F.adaptive_avg_pool2d(t, s.shape[-2:])
        mu = mu.view(1, -1, 1, 1)
        ell = ((s - mu).pow(2) * ((s > mu) & (t <= mu))
               + (s - t).pow(2) * ((s > t) & (t > mu) & (t <= 0))
               + (s - t).pow(2) * (t > 0))
        total = total + ell.mean(0).sum() / 2 ** (n - i - 1)
    return total
