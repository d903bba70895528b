"""KD: Hinton et al., "Distilling the Knowledge in a Neural Network", NIPS-W 2014.

    L = gamma * CE(z_s, y) + alpha * T_s*T_t * KL(softmax(z_t / T_t) || softmax(z_s / T_s))

(KL summed over the classes, averaged over the batch). The paper has one temperature, ``T_s = T_t = T``,
and scales the term by T^2 (RepDistiller: T = 4). Two different temperatures (``--t-student``, ``--t-teacher``)
and their factor T_s*T_t are kdzoo's convention, not the paper's; with equal temperatures it is T^2. The
KD term is part of every method's objective (see :class:`kdzoo.methods.objective.Objective`); the ``kd``
method adds no term of its own and only sets RepDistiller's script weights: gamma 0.1, alpha 0.9 (T = 4).

With ``--logit-std`` (Sun et al., CVPR 2024) the KD term is computed on z-scored logits with the
LS reference settings: base temperature 2, gamma 0.1, alpha 9 (tuned per pair in the paper: tau
in {2, 3, 4}, weight 9-12; grid tau x weight for a new pair).
"""

from __future__ import annotations

from .base import LogitStdDefaults, LossWeights, Method
from .registry import register_method


@register_method("kd")
class KD(Method):
    """Hinton's KD: no term of its own, RepDistiller's weights for the objective's KD term."""

    paper = "Hinton, Vinyals, Dean. Distilling the Knowledge in a Neural Network. NIPS-W 2014"
    uses = "logits"
    default_weights = LossWeights(gamma=0.1, alpha=0.9, beta=0.0)
    logit_std_defaults = LogitStdDefaults(LossWeights(gamma=0.1, alpha=9.0, beta=0.0))
