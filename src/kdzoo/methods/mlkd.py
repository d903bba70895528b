"""MLKD: Jin, Wang, Lin, "Multi-Level Logit Distillation", CVPR 2023.

    L = gamma * sum_v CE(z_s^v, y) + beta * sum_v (L_ins^v + L_batch^v + L_class^v)

over a weak view (crop + flip) and a strong view (crop + flip + RandAugment(2, 10) + Cutout, built by
the data layer: ``kdzoo.data.augment.StrongAugment``) of every image, each network run once per view
(:mod:`kdzoo.losses.mlkd` for the three levels, each summed over T in {2, 3, 4, 5, 6}). Weights: CE
0.1 per view, 0.9 per distillation term (the reference config). Recipe: lr 0.025 (0.01 for mobile
students), 480 epochs originally, 240 for six same-family pairs since 2024.

kdzoo follows the paper where the reference code departs from it: the code's confidence masks
multiply already-reduced scalars (a constant factor of about 0.5 on the weak view's three terms and
the strong view's batch term), its strong-view instance terms at T = 2 and 6 use the weak view's
logits, and its strong-view batch and class terms are computed but not returned. Here every level
is computed on both views at every temperature, without masks.

With ``--logit-std`` the instance-level KL uses z-scored logits (the LS code standardises only
there) and beta becomes 9 (LS's setting for MLKD; 6 for some cross-family pairs).
"""

from __future__ import annotations

from torch import Tensor

from ..errors import ConfigError
from ..losses.mlkd import TEMPERATURES, mlkd_batch_loss, mlkd_class_loss, mlkd_instance_loss
from ..models.features import Features
from .base import LogitStdDefaults, LossWeights, Method, Reads
from .registry import register_method


@register_method("mlkd")
class MLKD(Method):
    paper = "Jin, Wang, Lin. Multi-Level Logit Distillation. CVPR 2023"
    uses = "logits of a weak and a strong view of each image"
    reads = Reads(strong_view=True)
    default_weights = LossWeights(gamma=0.1, alpha=0.0, beta=0.9)
    logit_std_defaults = LogitStdDefaults(LossWeights(gamma=0.1, alpha=0.0, beta=9.0))

    def __init__(self, student: Features, teacher: Features, *, temperatures: tuple[float, ...] = TEMPERATURES):
        super().__init__(student, teacher)
        if (not isinstance(temperatures, (list, tuple)) or not temperatures
                or any(isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0 for t in temperatures)):
            raise ConfigError(f"MLKD's temperatures must be a non-empty list of positive numbers (reference: "
                              f"[2, 3, 4, 5, 6]), got {temperatures!r}.")
        self.temperatures = [float(t) for t in temperatures]
        self.num_classes = student.logits.shape[1]

    def caveats(self, batch_size: int, beta_given: bool) -> list[str]:
        notes = super().caveats(batch_size, beta_given)
        # The class-level Gram matrices' entries grow like batch/classes (a class's probability mass in
        # the batch); the reference weights were tuned for batch 64 and CIFAR-100's 100 classes.
        scale = (batch_size / self.num_classes) ** 2 / (64 / 100) ** 2
        if not beta_given and not 0.25 <= scale <= 4:
            notes.append(f"MLKD's class-level term grows like (batch / classes)^2: with batch {batch_size} and "
                         f"{self.num_classes} classes it is about {scale:.3g}x its size at the reference's batch 64 "
                         f"and 100 classes, for which the weights were tuned; consider scaling --beta.")
        return notes

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        n = batch.labels.shape[0]
        standardized_s, standardized_t = self.distill_logits(student, teacher)
        terms = {"mlkd_instance": 0.0, "mlkd_batch": 0.0, "mlkd_class": 0.0}
        for v in range(0, student.logits.shape[0], n):  # each view ([weak; strong]) on its own
            view = slice(v, v + n)
            s, t = student.logits[view], teacher.logits[view]
            terms["mlkd_instance"] += mlkd_instance_loss(standardized_s[view], standardized_t[view], self.temperatures)
            terms["mlkd_batch"] += mlkd_batch_loss(s, t, self.temperatures)
            terms["mlkd_class"] += mlkd_class_loss(s, t, self.temperatures)
        return terms
