"""Normalized KD: Yang, Zeng, Li, Zhang, Yuan, Li, "From Knowledge Distillation to
Self-Knowledge Distillation: A Unified Approach with Normalized Loss and Customized Soft Labels",
ICCV 2023.

With t the label, S = softmax(z_s), T = softmax(z_t) (temperature 1) and the non-target
distributions at temperature tau renormalised over the C-1 classes i != t,
T^_i = exp(z_t,i/tau) / sum_{j!=t} exp(z_t,j/tau) (S^ likewise, as log-softmax):

    L_NKD = -T_t * log S_t  -  gamma * tau^2 * sum_{i!=t} T^_i * log S^_i      (batch mean)

This is the paper's definition and the official code (yzd-v/cls_KD ``NKDLoss``) from commit
9466b3f on. Between 2023-07-17 and 2023-10-10 that code's non-target mask was all ones, so its
"non-target" term ran over all classes including the target (SDD's copy still does); kdzoo
excludes the target class; ``exclude_target=False`` gives that all-classes term (the reference of
SD-NKD). Reference settings: CIFAR-100 tau 3, gamma 3.5; ImageNet CNN pairs tau 1, gamma 1.5; DeiT
pairs tau 1, gamma 1.0. T_t is a constant (the teacher is not trained).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .common import reduce_batch
from .dkd import split_target

__all__ = ["nkd_loss", "nkd_non_target_loss", "nkd_target_loss"]


def nkd_target_loss(logits_s: Tensor, logits_t: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``-T_t * log S_t``, batch mean (or per sample): cross-entropy weighted by the teacher's target probability."""
    log_s_t, _ = split_target(F.log_softmax(logits_s, dim=1), target)
    t_t, _ = split_target(F.softmax(logits_t, dim=1), target)
    return reduce_batch(-(t_t.detach() * log_s_t), reduction)


def nkd_non_target_loss(logits_s: Tensor, logits_t: Tensor, target: Tensor, temperature: float = 3.0,
                        reduction: str = "mean", exclude_target: bool = True) -> Tensor:
    """``-tau^2 * sum_{i!=t} T^_i log S^_i``, batch mean (or per sample): cross-entropy between the
    renormalised non-target distributions at temperature tau (the target class excluded; with
    ``exclude_target=False`` between the full distributions at tau, the buggy code's term)."""
    other_s, other_t = logits_s / temperature, logits_t / temperature
    if exclude_target:
        other_s, other_t = split_target(other_s, target)[1], split_target(other_t, target)[1]
    ce = -(F.softmax(other_t, dim=1) * F.log_softmax(other_s, dim=1)).sum(dim=1)
    return reduce_batch(ce * temperature**2, reduction)


def nkd_loss(logits_s: Tensor, logits_t: Tensor, target: Tensor, temperature: float = 3.0,
             gamma: float = 3.5) -> Tensor:
    """``nkd_target_loss + gamma * nkd_non_target_loss`` (defaults: the CIFAR-100 config)."""
    return (nkd_target_loss(logits_s, logits_t, target)
            + gamma * nkd_non_target_loss(logits_s, logits_t, target, temperature))
