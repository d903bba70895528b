"""Multi-level logit distillation: Jin, Wang, Lin, "Multi-Level Logit Distillation", CVPR 2023
(Jin-Ying/Multi-Level-Logit-Distillation, ``KD_ours.py``).

With P = softmax(z / T) (B x C) for both networks, summed over the temperatures T in {2, 3, 4, 5, 6}:

    instance level  L_ins   = sum_T T^2 * 1/B sum_n KL(P_t[n] || P_s[n])
    batch level     L_batch = sum_T ||P_t P_t^T - P_s P_s^T||_F^2 / B      (B x B sample similarities)
    class level     L_class = sum_T ||P_t^T P_t - P_s^T P_s||_F^2 / C      (C x C class correlations)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from .kd import kd_loss

__all__ = ["mlkd_batch_loss", "mlkd_class_loss", "mlkd_instance_loss"]

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
