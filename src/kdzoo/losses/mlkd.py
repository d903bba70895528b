"""Multi-level logit distillation: Jin, Wang, Lin, "Multi-Level Logit Distillation", CVPR 2023
(Jin-Ying/Multi-Level-Logit-Distillation, ``KD_ours.py``).

With P = softmax(z / T) (B x C) for both networks, summed over the temperatures T in {2, 3, 4, 5, 6}:

    instance level  L_ins   = sum_T T^2 * 1/B sum_n KL(P_t[n] || P_s[n])
    batch level     L_batch = sum_T ||P_t P_t^T - P_s P_s^T||_F^2 / B      (B x B sample similarities)
    class level     L_class = sum_T ||P_t^T P_t - P_s^T P_s||_F^2 / C      (C x C class correlations)

The reference code also builds "confidence masks" from the teacher's weak-view predictions at T = 1:
samples whose top probability is <= the batch median (``np.percentile(., 50)``), classes whose summed
probability over the batch is <= the median over classes. It multiplies the already reduced loss
scalars by these boolean vectors and averages them, so each mask acts as the fraction of True
entries (:func:`mlkd_mask_fraction`): 1/2 for an even count of distinct values, (n + 1) / (2n) for
an odd one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .kd import kd_loss

__all__ = ["mlkd_batch_loss", "mlkd_class_loss", "mlkd_instance_loss", "mlkd_mask_fraction"]

TEMPERATURES = (2.0, 3.0, 4.0, 5.0, 6.0)


def mlkd_instance_loss(logits_s: Tensor, logits_t: Tensor, temperatures: Sequence[float] = TEMPERATURES) -> Tensor:
    """KD (T^2 * batch-mean KL) summed over the temperatures."""
    return sum(kd_loss(logits_s, logits_t, t, t) for t in temperatures)


def _gram_loss(logits_s: Tensor, logits_t: Tensor, temperatures: Sequence[float], over_classes: bool) -> Tensor:
    total = 0.0
    for t in temperatures:
        p_s, p_t = F.softmax(logits_s / t, dim=1), F.softmax(logits_t / t, dim=1)
        if over_classes:
            p_s, p_t = p_s.T, p_t.T
        total = total + (p_t @ p_t.T - p_s @ p_s.T).pow(2).sum() / p_s.shape[0]
    return total


def mlkd_batch_loss(logits_s: Tensor, logits_t: Tensor, temperatures: Sequence[float] = TEMPERATURES) -> Tensor:
    """Squared Frobenius distance of the B x B prediction similarity matrices / B, summed over T."""
    return _gram_loss(logits_s, logits_t, temperatures, over_classes=False)


def mlkd_class_loss(logits_s: Tensor, logits_t: Tensor, temperatures: Sequence[float] = TEMPERATURES) -> Tensor:
    """Squared Frobenius distance of the C x C class correlation matrices / C, summed over T."""
    return _gram_loss(logits_s, logits_t, temperatures, over_classes=True)


def mlkd_mask_fraction(logits_t: Tensor, over_classes: bool) -> Tensor:
    """The factor the reference's confidence mask applies to a reduced loss: the fraction of samples
    (of classes, ``over_classes``) whose teacher confidence is <= its median (linear interpolation,
    as ``np.percentile``). Confidence: a sample's top probability, or a class's probability summed over
    the batch, of ``softmax(logits_t)`` (the teacher's weak view, T = 1)."""
    p = F.softmax(logits_t.detach(), dim=1)
    confidence = p.sum(dim=0) if over_classes else p.max(dim=1).values
    return (confidence <= torch.quantile(confidence, 0.5)).float().mean()
