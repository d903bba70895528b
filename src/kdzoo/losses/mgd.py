"""Masked generative distillation: Yang, Li, Shao, Shi, Yuan, Yuan, "Masked Generative
Distillation", ECCV 2022 (classification variant, yzd-v/MGD ``cls/``).

With the student map f_s (already aligned to the teacher's channels), a random channel mask
M in {0, 1}^{N x C x 1 x 1} (M = 0 where U(0, 1) < lambda_mgd, drawn anew each call from torch's
global RNG) and a generator G:

    L_MGD = alpha_mgd / N * sum_{n,c,h,w} (G(f_s * M) - f_t)^2

If the maps' sizes differ, the larger is first average-pooled to the smaller's (pool-to-match; the
reference requires equal sizes). alpha_mgd multiplies a sum over C*H*W, so it has to be rescaled
when the feature size changes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .common import pool_to_match

__all__ = ["channel_mask", "mgd_loss"]


def channel_mask(like: Tensor, ratio: float) -> Tensor:
    """An N x C x 1 x 1 mask of ``like``'s dtype/device: 0 with probability ``ratio``, else 1."""
    n, c = like.shape[:2]
    return (torch.rand(n, c, 1, 1, device=like.device) >= ratio).to(like.dtype)


def mgd_loss(feat_s: Tensor, feat_t: Tensor, generator: Callable[[Tensor], Tensor], lambda_mgd: float = 0.15,
             alpha_mgd: float = 7e-5) -> Tensor:
    """alpha_mgd times the per-sample summed squared error between G(masked f_s) and f_t."""
    feat_s, feat_t = pool_to_match(feat_s, feat_t)
    generated = generator(feat_s * channel_mask(feat_s, lambda_mgd))
    return alpha_mgd * (generated - feat_t).pow(2).sum() / feat_s.shape[0]
