"""The two pieces of CTKD (Li et al., "Curriculum Temperature for Knowledge Distillation", AAAI 2023)
that are not a loss of their own: the gradient-reversal layer and the curriculum of its strength.
The CTKD loss is :func:`kdzoo.losses.kd_loss` at the learned temperature.

Gradient reversal: identity forward, gradient multiplied by ``lambda`` backward. With lambda <= 0 the
temperature parameters *ascend* the distillation loss the student descends (a min-max game).

Curriculum (zhengli97/CTKD ``CosineDecay(max 0, min -1, loops N)``, 1-based epoch e):

    cosine:  lambda(e) = (cos(pi * min(e, N) / N) - 1) / 2        0 -> -1 over N epochs
    linear:  lambda(e) = -min(e, N) / N

(the reference's linear variant stops at -(N-1)/N; kdzoo's reaches -1 like the cosine one.)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["curriculum_lambda", "reverse_gradient"]


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * ctx.scale, None


def reverse_gradient(x: Tensor, scale: float) -> Tensor:
    """``x`` unchanged; its gradient multiplied by ``scale`` (CTKD passes lambda in [-1, 0])."""
    return _GradientReversal.apply(x, float(scale))


def curriculum_lambda(epoch: int, epochs: int, curve: str = "cosine") -> float:
    """The reversal strength of 1-based ``epoch``: 0 -> -1 over ``epochs`` epochs, then -1."""
    e = min(max(epoch, 0), epochs)
    if curve == "cosine":
        return (math.cos(math.pi * e / epochs) - 1.0) / 2.0
    if curve == "linear":
        return -e / epochs
    raise ValueError(f"curve must be 'cosine' or 'linear', got {curve!r}")
