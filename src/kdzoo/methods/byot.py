"""BYOT: Zhang, Song, Gao, Chen, Bao, Ma, "Be Your Own Teacher: Improve the Performance of
Convolutional Neural Networks via Self Distillation", ICCV 2019. No teacher: the student gets an exit
after every stage (:class:`~kdzoo.models.MultiExitNet`) and its deepest exit C teaches the others:

    L = (1 - alpha) * sum_{i<=C} CE(z_i, y)
        + alpha * sum_{i<C} T^2 KL(softmax(z_C/T) || softmax(z_i/T))
        + lambda * sum_{i<C} ||F_i - F_C||^2

(:mod:`kdzoo.losses.byot`; deepest exit's outputs detached). Defaults: the reimplementation
(luanyunteng/pytorch-be-your-own-teacher): alpha 0.1, T 3, lambda 1e-6 (``feature_weight``), the
masked hint summed over the batch (``hint="masked"``; ``"l2"``: the paper's plain distance). The
objective's cross-entropy is the deepest exit's, so the reference weights are gamma = 1 - alpha,
alpha 0, beta 1 and the method returns ``byot_ce_exits`` = (1 - alpha) * sum_{i<C} CE(z_i, y),
``byot_kd`` and ``byot_hint`` with their weights inside: the total is the formula above. This
``alpha`` (``--method-opt alpha=...``) weighs the self-distillation term; the objective's
``--alpha`` (a teacher's KD term) stays 0. ``alpha=0 feature_weight=0`` trains every exit with
cross-entropy only (deep supervision, the multi-exit baseline).
"""

from __future__ import annotations

from typing import Annotated

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..losses.byot import byot_hint_loss, byot_kd_loss
from ..models.features import Features
from ..models.multi_exit import MultiExitNet
from .base import EXITS, LossWeights, Method, Reads
from .options import OneOf, Range
from .registry import register_method

#: The reimplementation's batch size: the hint is summed over the batch, so lambda depends on it.
HINT_BATCH = 128
HINTS = ("masked", "l2")
HINT = OneOf(*HINTS, reference="masked: the reimplementation's; l2: the paper's")


def require_exits(method: str, student_model: nn.Module) -> None:
    """A ConfigError unless the student is a multi-exit network (the engine builds one for methods that read exits)."""
    if not isinstance(student_model, MultiExitNet):
        raise ConfigError(f"{method} trains a multi-exit student: wrap it with "
                          f"kdzoo.models.MultiExitNet.build(student, input_shape) first (`kdzoo distill --method "
                          f"{method}` does so).")


@register_method("byot")
class BYOT(Method):
    """Self-distillation into an exit after every stage: CE, KD from the deepest exit, and feature hints."""

    paper = ("Zhang, Song, Gao, Chen, Bao, Ma. Be Your Own Teacher: Improve the Performance of Convolutional Neural "
             "Networks via Self Distillation. ICCV 2019")
    uses = "every exit's logits and feature (an exit is added after every stage), labels"
    reads = Reads(student=EXITS, teacher=None)
    default_weights = LossWeights(gamma=0.9, alpha=0.0, beta=1.0)

    def __init__(self, student: Features, teacher: Features | None, *,
                 alpha: Annotated[float, Range(ge=0, le=1, reference="0.1; it splits CE and self-distillation")] = 0.1,
                 temperature: Annotated[float, Range(gt=0)] = 3.0, feature_weight: Annotated[float, Range(ge=0)] = 1e-6,
                 hint: Annotated[str, HINT] = "masked",
                 student_model: nn.Module):
        super().__init__(student, teacher)
        require_exits("byot", student_model)
        self.alpha, self.temperature, self.feature_weight = alpha, temperature, feature_weight
        self.masked = hint == "masked"

    def reference_weights(self) -> LossWeights:
        return LossWeights(gamma=1.0 - self.alpha, alpha=0.0, beta=1.0)

    def caveats(self, batch_size: int, beta_given: bool) -> list[str]:
        if not self.feature_weight or batch_size == HINT_BATCH:
            return []
        scaled = self.feature_weight * HINT_BATCH / batch_size
        return [f"byot's feature hint is summed over the batch (as in the reimplementation, batch {HINT_BATCH}); with "
                f"batch {batch_size} consider --method-opt feature_weight={scaled:.3g} to keep its weight."]

    def forward(self, student: Features, teacher: Features | None, batch) -> dict[str, Tensor]:
        logits = [e.logits for e in student.exits]
        terms = {}
        if self.alpha < 1:
            terms["byot_ce_exits"] = (1.0 - self.alpha) * sum(F.cross_entropy(z, batch.labels) for z in logits[:-1])
        if self.alpha:
            terms["byot_kd"] = self.alpha * byot_kd_loss(logits, self.temperature)
        if self.feature_weight:
            terms["byot_hint"] = self.feature_weight * byot_hint_loss([e.pooled for e in student.exits], self.masked)
        return terms
