"""KD: Hinton et al., "Distilling the Knowledge in a Neural Network", NIPS-W 2014.

The KD term ``alpha * T_s*T_t * KL(softmax(z_t/T_t) || softmax(z_s/T_s))`` is part of every
method's objective (see :class:`kdzoo.methods.objective.Objective`); the ``kd`` method adds no term
of its own and only sets RepDistiller's script weights: gamma 0.1, alpha 0.9 (T = 4).
"""

from __future__ import annotations

from .base import LossWeights, Method
from .registry import register_method


@register_method("kd")
class KD(Method):
    paper = "Hinton, Vinyals, Dean. Distilling the Knowledge in a Neural Network. NIPS-W 2014"
    uses = "logits"
    default_weights = LossWeights(gamma=0.1, alpha=0.9, beta=0.0)
