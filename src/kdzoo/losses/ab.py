"""Activation-boundary transfer: Heo, Lee, Yun, Choi, "Knowledge Transfer via Distillation of
Activation Boundaries Formed by Hidden Neurons", AAAI 2019.

On pre-activation maps (student map s after its connector, teacher map t, margin m), elementwise

    l = (s + m)^2 * 1[s > -m and t <= 0] + (s - m)^2 * 1[s <= m and t > 0]
    L = sum_{l=0}^{L-1} 2^(l-L+1) * (sum_{all elements} l) / B * 3/1000

(weights 1/4, 1/2, 1 for L = 3 maps), as RepDistiller's ``ABLoss(feat_num, margin=1.0)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

__all__ = ["ab_loss"]


def ab_loss(feats_s: Sequence[Tensor], feats_t: Sequence[Tensor], margin: float = 1.0) -> Tensor:
    """Weighted alternative-L2 activation-boundary loss over map pairs of equal shapes (L = len(feats_s))."""
    n = len(feats_s)
    batch = feats_s[0].shape[0]
    total = 0
    for i, (s, t) in enumerate(zip(feats_s, feats_t, strict=False)):
        ell = ((s + margin).pow(2) * ((s > -margin) & (t <= 0))
               + (s - margin).pow(2) * ((s <= margin) & (t > 0)))
        total = total + 2.0 ** (i - n + 1) * ell.sum() / batch / 1000 * 3
    return total
