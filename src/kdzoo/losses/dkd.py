"""Decoupled KD: Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge Distillation", CVPR 2022.

With g the target class, p = softmax(z/T) per network, b = [p_g, sum_{j!=g} p_j] (binary) and
p^_j = exp(z_j/T) / sum_{k!=g} exp(z_k/T) (non-target classes only):

    TCKD = T^2/B * sum_n KL(b^t || b^s)
    NCKD = T^2/B * sum_n KL(p^t || p^s)
    L_DKD = alpha * TCKD + beta * NCKD

as mdistiller's ``dkd_loss``, with the identity KD = TCKD + (1 - p^t_g) * NCKD per sample. Two
numerical differences, both exact where the reference is finite: log b is computed with log-sum-exp
(log p_g = z_g/T - LSE(z/T), log(1 - p_g) = LSE_{j!=g}(z_j/T) - LSE(z/T)) instead of the log of
summed probabilities, which gives inf/NaN once a probability underflows (small T, large logits);
and the non-target classes are selected exactly instead of subtracting 1000 from the target logit.
With two classes NCKD is 0 (one non-target class) and TCKD equals KD.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import reduce_batch

__all__ = ["dkd_loss", "nckd_loss", "tckd_loss"]


def split_target(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """The target-class logits (B,) and the non-target logits (B, C-1), the latter in class order."""
    b, c = logits.shape
    others = torch.arange(c - 1, device=logits.device).expand(b, c - 1)
    others = others + (others >= target[:, None]).long()  # skip column `target` in each row
    return logits.gather(1, target[:, None]).squeeze(1), logits.gather(1, others)


def _binary_log_probs(logits: Tensor, target: Tensor, temperature: float) -> Tensor:
    z = logits / temperature
    z_target, z_other = split_target(z, target)
    lse = torch.logsumexp(z, dim=1)
    return torch.stack([z_target - lse, torch.logsumexp(z_other, dim=1) - lse], dim=1)


def tckd_loss(logits_s: Tensor, logits_t: Tensor, target: Tensor, temperature: float = 4.0,
              reduction: str = "mean") -> Tensor:
    """Target-class KD: T^2 * batch-mean KL between the teacher's and the student's binary
    (target, all non-targets) distributions (``reduction="none"``: per sample)."""
    log_b_s = _binary_log_probs(logits_s, target, temperature)
    log_b_t = _binary_log_probs(logits_t, target, temperature)
    kl = F.kl_div(log_b_s, log_b_t, reduction="none", log_target=True).sum(dim=1)
    return reduce_batch(kl * temperature**2, reduction)


def nckd_loss(logits_s: Tensor, logits_t: Tensor, target: Tensor, temperature: float = 4.0,
              reduction: str = "mean") -> Tensor:
    """Non-target-class KD: T^2 * batch-mean KL between the teacher's and the student's
    distributions over the non-target classes (renormalised without the target class;
    ``reduction="none"``: per sample)."""
    _, other_s = split_target(logits_s / temperature, target)
    _, other_t = split_target(logits_t / temperature, target)
    log_p_s = F.log_softmax(other_s, dim=1)
    log_p_t = F.log_softmax(other_t, dim=1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="none", log_target=True).sum(dim=1)
    return reduce_batch(kl * temperature**2, reduction)


def dkd_loss(logits_s: Tensor, logits_t: Tensor, target: Tensor, alpha: float = 1.0, beta: float = 8.0,
             temperature: float = 4.0) -> Tensor:
    """``alpha * tckd_loss + beta * nckd_loss`` (mdistiller's defaults alpha 1, beta 8, T 4)."""
    return (alpha * tckd_loss(logits_s, logits_t, target, temperature)
            + beta * nckd_loss(logits_s, logits_t, target, temperature))
