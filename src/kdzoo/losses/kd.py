"""Hinton knowledge distillation loss.

G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network", NIPS-W 2014.

    L_KD = T_s * T_t / B * sum_b KL( softmax(z_t / T_t) || softmax(z_s / T_s) )

With T_s = T_t = T this is RepDistiller's ``DistillKL`` (KL summed over classes, averaged over the
batch, times T^2). The T^2 factor is the papers' (Hinton et al.; every method here that has a KD term
uses one temperature for both networks): it keeps the gradient magnitude comparable to the
cross-entropy term. Different temperatures for student and teacher are kdzoo's extension, and so is
their factor: kdzoo's convention is the product T_s * T_t, which reduces to the papers' T^2.
Temperatures may be tensors: a scalar (e.g. CTKD's learned temperature, through which gradients
flow) or one per sample (shape B or B x 1), each sample then weighted by its own T_s * T_t.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .common import reduce_batch

__all__ = ["kd_loss"]


def kd_loss(logits_s: Tensor, logits_t: Tensor, t_student: float | Tensor = 4.0,
            t_teacher: float | Tensor = 4.0, reduction: str = "mean") -> Tensor:
    """KL divergence between temperature-softened teacher and student distributions (batch mean;
    ``reduction="none"``: one value per sample)."""
    t_s, t_t = (_column(t) for t in (t_student, t_teacher))
    log_p_s = F.log_softmax(logits_s / t_s, dim=1)
    log_p_t = F.log_softmax(logits_t / t_t, dim=1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="none", log_target=True).sum(dim=1, keepdim=True)
    return reduce_batch((kl * (t_s * t_t)).squeeze(1), reduction)


def _column(temperature: float | Tensor) -> float | Tensor:
    """A per-sample temperature as a B x 1 column (broadcasts over the classes); scalars unchanged."""
    if isinstance(temperature, Tensor) and temperature.dim() > 0:
        return temperature.reshape(-1, 1)
    return temperature
