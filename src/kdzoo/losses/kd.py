"""Hinton knowledge distillation loss.

G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network", NIPS-W 2014.

    L_KD = T_s * T_t / B * sum_b KL( softmax(z_t / T_t) || softmax(z_s / T_s) )

With T_s = T_t = T this is RepDistiller's ``DistillKL`` (KL summed over classes, averaged over the
batch, times T^2). The T^2 factor keeps the gradient magnitude comparable to the cross-entropy
term; with different temperatures kdzoo uses the product T_s * T_t, which reduces to T^2.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["kd_loss"]


def kd_loss(logits_s: Tensor, logits_t: Tensor, t_student: float = 4.0, t_teacher: float = 4.0) -> Tensor:
    """KL divergence between temperature-softened teacher and student distributions (batchmean)."""
    log_p_s = F.log_softmax(logits_s / t_student, dim=1)
    log_p_t = F.log_softmax(logits_t / t_teacher, dim=1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    return kl * (t_student * t_teacher)
