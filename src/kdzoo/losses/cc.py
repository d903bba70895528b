"""Correlation congruence: Peng et al., "Correlation Congruence for Knowledge Distillation", ICCV 2019.

RepDistiller's ``Correlation`` (the CC authors' code as sent to RepDistiller's author, not the
paper's Gaussian-kernel formulation). On the embedded pooled features e_s, e_t (B x d, from two
trainable linear heads), with delta = |e_s - e_t|:

    L = 1/(B-1) * sum_{i=1}^{B-1} sum_d delta_{i,d} * delta_{i+1,d}

(products of consecutive samples, so the value depends on the batch order). A 1-sample batch has
no consecutive pair and gives 0 (RepDistiller: NaN).
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["cc_loss"]


def cc_loss(e_s: Tensor, e_t: Tensor) -> Tensor:
    """Mean over consecutive sample pairs of the dot product of their |e_s - e_t| rows."""
    delta = (e_s - e_t).abs()
    return (delta[:-1] * delta[1:]).sum() / max(delta.shape[0] - 1, 1)
