"""Logit standardization: Sun, Ren, Cheng, Shen, Tang, "Logit Standardization in Knowledge
Distillation", CVPR 2024.

    Z(z) = (z - mean_k z_k) / (std(z) + eps)          (per sample, over the K classes)

with the unbiased standard deviation (divides by K - 1) and eps = 1e-7, as the reference code. The
distillation losses then apply their temperature to Z(z) instead of z, so the effective temperature
of each sample and each network is tau * std(z): the student only has to match the *shape* of the
teacher's logits, not their range. Z is invariant to shifting and (positive) scaling of the logits.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["standardize_logits"]


def standardize_logits(logits: Tensor, eps: float = 1e-7) -> Tensor:
    """Z-score each row of ``logits`` (B x K): zero mean and unit (unbiased) standard deviation."""
    mean = logits.mean(dim=1, keepdim=True)
    std = logits.std(dim=1, keepdim=True)
    return (logits - mean) / (std + eps)
