"""Exit KD: multi-exit distillation (Phuong, Lampert, "Distillation-Based Training for Multi-Exit
Architectures", ICCV 2019) with Hinton et al.'s KD loss ("Distilling the Knowledge in a Neural Network",
NIPS-W 2014) at every exit of a multi-exit student, from an external teacher:

    L = sum_{i<=C} [ ce_weight * CE(z_i, y) + kd_weight * T^2 KL(softmax(z_t/T) || softmax(z_i/T)) ]

The student gets an exit after every stage (:class:`~kdzoo.models.MultiExitNet`, BYOT's exits) and
each exit is trained as a KD student of the teacher; BYOT (``--method byot``) is the teacher-free
version, where the deepest exit teaches. The method weighs every exit itself, the deepest included
(terms ``exit_ce`` and ``exit_kd``), so its reference weights are gamma 0, alpha 0, beta 1 and its
options default to RepDistiller's KD settings (CE 0.1, KD 0.9, T 4); ``--gamma``/``--alpha`` would
add the deepest exit's plain CE/KD terms on top, and ``--t-student``/``--t-teacher`` do not apply
(``--method-opt temperature=...`` does). Phuong & Lampert distil from the network's own deepest exit, with
weight 0.5 on CE and KD and a temperature that grows during training; here an external teacher teaches every
exit at a fixed temperature, with RepDistiller's KD weights.
"""

from __future__ import annotations

from typing import Annotated

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..losses.kd import kd_loss
from ..models.features import Features
from .base import EXITS, LossWeights, Method, Reads
from .byot import require_exits
from .options import Range
from .registry import register_method


@register_method("exit_kd")
class ExitKD(Method):
    """Hinton's KD from a teacher into every exit of a multi-exit student."""

    paper = "Phuong, Lampert. Distillation-Based Training for Multi-Exit Architectures. ICCV 2019"
    uses = "every exit's logits (an exit is added after every stage), the teacher's logits, labels"
    reads = Reads(student=EXITS)
    default_weights = LossWeights(gamma=0.0, alpha=0.0, beta=1.0)

    def __init__(self, student: Features, teacher: Features, *, ce_weight: Annotated[float, Range(ge=0)] = 0.1,
                 kd_weight: Annotated[float, Range(ge=0)] = 0.9, temperature: Annotated[float, Range(gt=0)] = 4.0,
                 student_model: nn.Module):
        super().__init__(student, teacher)
        require_exits("exit_kd", student_model)
        if student.logits.shape[1] != teacher.logits.shape[1]:
            raise ConfigError(f"exit_kd compares class probabilities; the student has {student.logits.shape[1]} "
                              f"classes and the teacher {teacher.logits.shape[1]}.")
        self.ce_weight, self.kd_weight, self.temperature = ce_weight, kd_weight, temperature

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        logits = [e.logits for e in student.exits]
        terms = {}
        if self.ce_weight:
            terms["exit_ce"] = self.ce_weight * sum(F.cross_entropy(z, batch.labels) for z in logits)
        if self.kd_weight:
            t = self.temperature
            terms["exit_kd"] = self.kd_weight * sum(kd_loss(z, teacher.logits, t, t) for z in logits)
        return terms
