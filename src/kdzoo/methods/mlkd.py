"""MLKD: Jin, Wang, Lin, "Multi-Level Logit Distillation", CVPR 2023.

Over a weak view (crop + flip) and a strong view (crop + flip + RandAugment(2, 10) + Cutout, built by
the data layer: ``kdzoo.data.augment.StrongAugment``) of every image, each network run once per view,
the student learns from the teacher at three levels (:mod:`kdzoo.losses.mlkd`), each summed over
T in {2, 3, 4, 5, 6}: instance (KD_T), batch (BC_T: B x B similarities) and class (CC_T: C x C
correlations). Weights: CE 0.1 per view, 0.9 per distillation term (the reference config). Recipe:
lr 0.025 (0.01 for mobile students), 480 epochs originally, 240 for six same-family pairs since 2024.

``variant="reference"`` (default) is what the reference code (``KD_ours.py``) computes, which gave
the published numbers:

    L_ins   = m * sum_T KD_T(weak) + sum_{T not in {2, 6}} KD_T(strong) + sum_{T in {2, 6}} KD_T(weak)
    L_batch = m * sum_T BC_T(weak),      L_class = m_c * sum_T CC_T(weak)

Its confidence masks multiply already reduced scalars, so they act as the constants m and m_c, the
fractions of samples and of classes whose teacher confidence is <= the median (about 1/2;
:func:`kdzoo.losses.mlkd_mask_fraction`); its strong-view instance terms at T = 2 and 6 (literal
values in the code: they stay 2 and 6 whatever ``temperatures`` holds) take the weak view's logits;
it computes the strong view's batch and class terms but does not return them. Its first temperature
is the config's (4 on CIFAR-100; ImageNet: 1, i.e. ``temperatures=[1, 2, 3, 5, 6]``).

``variant="paper"``: the paper's loss, every level on both views at every temperature, no masks:

    L_ins = sum_v sum_T KD_T(v),   L_batch = sum_v sum_T BC_T(v),   L_class = sum_v sum_T CC_T(v)

With equal views (and masks of exactly 1/2) the paper variant's instance term is 4/3 and its batch
and class terms 4 times the reference's, more when the strong view's terms are the larger (as in
training): the reference weights were tuned for the reference variant and do not carry over.

With ``--logit-std`` the instance-level KL uses z-scored logits (the LS code standardises only
there; the masks read the raw teacher logits) and beta becomes 9 (LS's setting for MLKD; 6 for some
cross-family pairs).
"""

from __future__ import annotations

from typing import Annotated

from torch import Tensor

from ..errors import ConfigError
from ..losses.mlkd import TEMPERATURES, mlkd_batch_loss, mlkd_class_loss, mlkd_instance_loss, mlkd_mask_fraction
from ..models.features import Features
from .base import LogitStdDefaults, LossWeights, Method, Reads
from .options import OneOf
from .registry import register_method

VARIANTS = ("reference", "paper")
VARIANT = OneOf(*VARIANTS, reference="reference: the code's loss, which gave the published numbers; paper: every "
                                     "level on both views, no masks")
#: The reference's strong-view instance terms at these temperatures take the weak view's logits.
WEAK_REUSED = (2.0, 6.0)


@register_method("mlkd")
class MLKD(Method):
    """Multi-level logit distillation: instance, batch and class alignment over a weak and a strong view."""

    paper = "Jin, Wang, Lin. Multi-Level Logit Distillation. CVPR 2023"
    uses = ("logits of a weak and a strong view of each image; variant=reference (the code's loss, default) "
            "| paper (every level on both views, no masks)")
    reads = Reads(strong_view=True)
    default_weights = LossWeights(gamma=0.1, alpha=0.0, beta=0.9)
    logit_std_defaults = LogitStdDefaults(LossWeights(gamma=0.1, alpha=0.0, beta=9.0))

    def __init__(self, student: Features, teacher: Features, *, temperatures: tuple[float, ...] = TEMPERATURES,
                 variant: Annotated[str, VARIANT] = "reference"):
        super().__init__(student, teacher)
        if (not isinstance(temperatures, (list, tuple)) or not temperatures
                or any(isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0 for t in temperatures)):
            raise ConfigError(f"MLKD's temperatures must be a non-empty list of positive numbers (reference: "
                              f"[2, 3, 4, 5, 6]), got {temperatures!r}.")
        self.temperatures = [float(t) for t in temperatures]
        self.variant = variant
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
        if self.variant == "reference":
            return self._reference(student.logits, teacher.logits, standardized_s, standardized_t, n)
        terms = {"mlkd_instance": 0.0, "mlkd_batch": 0.0, "mlkd_class": 0.0}
        for v in range(0, student.logits.shape[0], n):  # each view ([weak; strong]) on its own
            view = slice(v, v + n)
            s, t = student.logits[view], teacher.logits[view]
            terms["mlkd_instance"] += mlkd_instance_loss(standardized_s[view], standardized_t[view], self.temperatures)
            terms["mlkd_batch"] += mlkd_batch_loss(s, t, self.temperatures)
            terms["mlkd_class"] += mlkd_class_loss(s, t, self.temperatures)
        return terms

    def _reference(self, logits_s: Tensor, logits_t: Tensor, standardized_s: Tensor, standardized_t: Tensor,
                   n: int) -> dict[str, Tensor]:
        weak, strong = slice(0, n), slice(n, 2 * n)
        s, t = logits_s[weak], logits_t[weak]
        reused = [x for x in self.temperatures if x in WEAK_REUSED]
        own = [x for x in self.temperatures if x not in WEAK_REUSED]
        mask = mlkd_mask_fraction(t, over_classes=False)
        instance = (mask * mlkd_instance_loss(standardized_s[weak], standardized_t[weak], self.temperatures)
                    + mlkd_instance_loss(standardized_s[strong], standardized_t[strong], own)
                    + mlkd_instance_loss(standardized_s[weak], standardized_t[weak], reused))
        return {"mlkd_instance": instance,
                "mlkd_batch": mask * mlkd_batch_loss(s, t, self.temperatures),
                "mlkd_class": mlkd_mask_fraction(t, over_classes=True) * mlkd_class_loss(s, t, self.temperatures)}
