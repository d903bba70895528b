"""What the distillation temperature does to a distribution: the maths behind ``kdzoo temperature``.

Softening (Hinton et al., 2014): p_i(T) = exp(z_i / T) / sum_j exp(z_j / T). T = 1 is the plain
softmax; larger T flattens the distribution towards uniform (entropy -> log K), smaller T sharpens
it towards one-hot. Logit standardization (Sun et al., CVPR 2024) z-scores the logits first, so the
effective temperature of each sample is T * std(z).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .losses import kd_loss, standardize_logits

#: The classic illustration: an image of a dog that looks a little like a donkey.
CLASSIC_LOGITS = (1.0, 4.0, 3.0, 1.0)
CLASSIC_CLASSES = ("cat", "dog", "donkey", "horse")
CLASSIC_TEMPERATURES = (1.0, 4.0, 10.0, 100.0)


def soften(logits: Tensor, temperature: float) -> Tensor:
    """Softmax of ``logits / temperature`` over the last dimension."""
    return torch.softmax(logits.double() / temperature, dim=-1)


def entropy(probs: Tensor) -> Tensor:
    """Shannon entropy in nats over the last dimension (0 * log 0 counts as 0)."""
    return -torch.special.xlogy(probs, probs).sum(dim=-1)


def kl_divergence(logits_s: Tensor, logits_t: Tensor, t_student: float, t_teacher: float) -> float:
    """Mean over the batch of KL(softmax(z_t / T_t) || softmax(z_s / T_s)), without the KD loss's
    T_s * T_t factor."""
    return float(kd_loss(logits_s.double(), logits_t.double(), t_student, t_teacher)) / (t_student * t_teacher)


def kl_matrix(logits_s: Tensor, logits_t: Tensor, temperatures: list[float]) -> list[list[float]]:
    """KL(teacher || student) for every (T_s, T_t): rows T_s, columns T_t; the diagonal is equal T."""
    return [[kl_divergence(logits_s, logits_t, ts, tt) for tt in temperatures] for ts in temperatures]


def standardized(logits: Tensor) -> Tensor:
    """Z-scored logits (zero mean, unit unbiased std per row), as ``--logit-std`` distils them."""
    return standardize_logits(logits.double().reshape(-1, logits.shape[-1])).reshape(logits.shape)
