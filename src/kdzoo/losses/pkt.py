"""Probabilistic knowledge transfer: Passalis & Tefas, "Learning Deep Representations with
Probabilistic Knowledge Transfer", ECCV 2018.

With x^ = x / (|x|_2 + eps) per sample (NaN entries set to 0), S = (x^ x^^T + 1) / 2 and
P = S / rowsum(S) (a row-stochastic B x B matrix) for student and teacher:

    L = 1/B^2 * sum_ij P_t[i,j] * log((P_t[i,j] + eps) / (P_s[i,j] + eps)),   eps = 1e-7

as RepDistiller's ``PKT`` (the authors' code). Batch-size dependent: B row KL divergences divided
by B^2, so L scales about like 1/B; RepDistiller's weight (beta = 30000) is tied to batch 64.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["pkt_loss"]


def _probabilities(x: Tensor, eps: float) -> Tensor:
    x = x.flatten(1)
    x = x / (x.pow(2).sum(1, keepdim=True).sqrt() + eps)
    x = torch.where(torch.isnan(x), torch.zeros_like(x), x)
    s = (x @ x.t() + 1.0) / 2.0
    return s / s.sum(1, keepdim=True)


def pkt_loss(f_s: Tensor, f_t: Tensor, eps: float = 1e-7) -> Tensor:
    """Mean over the B x B entries of the KL terms between the teacher's and the student's
    cosine-similarity distributions."""
    p_s, p_t = _probabilities(f_s, eps), _probabilities(f_t, eps)
    return torch.mean(p_t * torch.log((p_t + eps) / (p_s + eps)))
