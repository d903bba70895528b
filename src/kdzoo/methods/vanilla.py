"""Vanilla: the student trained alone, with cross-entropy only: the baseline every distillation method is compared
with (mdistiller's ``Vanilla`` distiller).

    L = CE(z_s, y)

``kdzoo train`` trains with it; no teacher is read, nothing is added to the student.
"""

from __future__ import annotations

from .base import LossWeights, Method, Reads
from .registry import register_method


@register_method("vanilla")
class Vanilla(Method):
    """The student alone: the objective's cross-entropy, no distillation term."""

    paper = "No distillation: the student trained alone with cross-entropy (the baseline of every KD paper)"
    uses = "the student's logits (cross-entropy only)"
    reads = Reads(teacher=None)
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=0.0)
    has_main_term = False
    distills = False
