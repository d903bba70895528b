"""Similarity-preserving KD: Tung & Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019.

With Q = F reshaped to B x (C*H*W), G = Q Q^T (B x B) and G~ = G with L2-normalised rows:

    L = || G~_t - G~_s ||_F^2 / B^2

as RepDistiller's ``Similarity`` (on ``feat[-2]``). Batch-size dependent: every row of G~ is a
unit vector, so the squared norm grows about like B and L like 1/B; RepDistiller's weight
(beta = 3000) is tied to batch 64, and a short last batch gets a larger loss.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["sp_loss"]


def _similarity(f: Tensor) -> Tensor:
    q = f.flatten(1)
    return F.normalize(q @ q.t(), dim=1)


def sp_loss(f_s: Tensor, f_t: Tensor) -> Tensor:
    """Squared Frobenius distance of the row-normalised batch similarity matrices, divided by B^2.

    RepDistiller returns a 1-element tensor; this returns the same value as a scalar."""
    b = f_s.shape[0]
    return (_similarity(f_t) - _similarity(f_s)).pow(2).sum() / (b * b)
