"""DIST: Huang, You, Wang, Qian, Xu, "Knowledge Distillation from A Stronger Teacher", NeurIPS 2022.

With Y = softmax(z/tau) (B x C) for both networks and the Pearson correlation
rho(a, b) = (a - mean a).(b - mean b) / (|a - mean a| |b - mean b| + 1e-8):

    L_inter = tau^2 * (1 - 1/B sum_i rho(Y^s_i,:, Y^t_i,:))     (per sample, over classes)
    L_intra = tau^2 * (1 - 1/C sum_j rho(Y^s_:,j, Y^t_:,j))     (per class, over the batch)
    L_DIST  = beta_inter * L_inter + gamma_intra * L_intra

as the official code (``DIST`` in hunto/image_classification_sota, ``lib/models/losses/dist_kd.py``;
reference tau: 4 on CIFAR-100, 1 on ImageNet). The tau^2 factor is the code's; the paper's
pseudo-code omits it (image_classification_sota #19). Both terms carry it, so the paper's variant
is the same loss with the weight divided by tau^2. A 1-sample batch has no correlation across the
batch: each class's centred column is 0, so L_intra = tau^2, a constant (as in the reference).
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["dist_inter_loss", "dist_intra_loss", "dist_loss"]


def _pearson_rows(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def dist_inter_loss(logits_s: Tensor, logits_t: Tensor, tau: float = 4.0) -> Tensor:
    """``tau^2 * (1 - mean over samples of the correlation of their class distributions)``."""
    y_s, y_t = (logits_s / tau).softmax(dim=1), (logits_t / tau).softmax(dim=1)
    return tau**2 * (1 - _pearson_rows(y_s, y_t).mean())


def dist_intra_loss(logits_s: Tensor, logits_t: Tensor, tau: float = 4.0) -> Tensor:
    """``tau^2 * (1 - mean over classes of the correlation of their probabilities across the batch)``."""
    y_s, y_t = (logits_s / tau).softmax(dim=1), (logits_t / tau).softmax(dim=1)
    return tau**2 * (1 - _pearson_rows(y_s.t(), y_t.t()).mean())


def dist_loss(logits_s: Tensor, logits_t: Tensor, beta_inter: float = 1.0, gamma_intra: float = 1.0,
              tau: float = 4.0) -> Tensor:
    """``beta_inter * dist_inter_loss + gamma_intra * dist_intra_loss``."""
    return (beta_inter * dist_inter_loss(logits_s, logits_t, tau)
            + gamma_intra * dist_intra_loss(logits_s, logits_t, tau))
