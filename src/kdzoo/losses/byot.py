"""BYOT's self-distillation terms: Zhang, Song, Gao, Chen, Bao, Ma, "Be Your Own Teacher: Improve
the Performance of Convolutional Neural Networks via Self Distillation", ICCV 2019.

The deepest exit C teaches the shallower exits i < C (its outputs are detached targets):

    L_KD   = sum_{i<C} T^2 * KL( softmax(z_C / T) || softmax(z_i / T) )            (batch mean)
    L_hint = sum_{i<C} sum_{b, c} (F_i - F_C)^2 * m,   m = 1[F_i > 0 or F_C > 0]   (batch sum)

with F the exits' pooled features. The mask m is the reimplementation's
(luanyunteng/pytorch-be-your-own-teacher, ``feature_loss_function``); ``masked=False`` gives the
paper's plain squared L2 distance (the same for post-ReLU features, where both are never negative).
The reimplementation writes the KD term as a cross-entropy with the soft targets, which differs from
the KL only by the (constant) entropy of the deepest exit: same gradients, a logged value shifted.
"""

from __future__ import annotations

from torch import Tensor

from .kd import kd_loss

__all__ = ["byot_hint_loss", "byot_kd_loss"]


def byot_kd_loss(exit_logits: list[Tensor], temperature: float = 3.0) -> Tensor:
    """``sum_{i<C} T^2 KL(softmax(z_C/T) || softmax(z_i/T))``, batch mean; ``exit_logits`` deepest last."""
    target = exit_logits[-1].detach()
    return sum(kd_loss(logits, target, temperature, temperature) for logits in exit_logits[:-1])


def byot_hint_loss(exit_feats: list[Tensor], masked: bool = True) -> Tensor:
    """``sum_{i<C} ||F_i - F_C||^2`` summed over the batch (masked as the reimplementation unless
    ``masked=False``); ``exit_feats`` deepest last."""
    target = exit_feats[-1].detach()
    return sum(_squared_distance(feat, target, masked).sum() for feat in exit_feats[:-1])


def _squared_distance(feat: Tensor, target: Tensor, masked: bool) -> Tensor:
    squared = (feat - target) ** 2
    return squared * ((feat > 0) | (target > 0)) if masked else squared
