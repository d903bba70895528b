"""SDD: Wei, Luo, Luo, "Scale Decoupled Distillation", CVPR 2024.

    L = gamma * CE + beta * w(epoch) * L_SDD,   L_SDD = 1/(B*R) sum_{n,m} w(m, n) D(pi_s(m, n), pi_t(m, n))

(:mod:`kdzoo.losses.sdd`): each network's pre-pooling map is pooled into multi-scale cells, every
cell goes through that network's own classifier, and a base logit loss D compares the region logits,
regions whose teacher prediction disagrees in correctness with the global one weighted by
``complementary_weight`` (2). ``base``: ``kd`` (SD-KD: T 4, gamma 0.1, beta 0.9, no warm-up),
``dkd`` (SD-DKD: T 4, dkd_alpha 1, dkd_beta 8, gamma 1, beta 1, warm-up 20 epochs) or ``nkd``
(SD-NKD: tau 4, nkd_gamma 8, gamma 1, beta 1, warm-up 20), as the reference code's configs (the
paper states a 30-epoch warm-up; ``warmup_epochs`` sets it). ``scales`` default as the paper: [1, 2]
when teacher and student are of the same family, [1, 2, 4] otherwise; [1] is plain global
distillation with the base loss. The student's region logits train its own classifier too.
The reference's NKD base is the NKD code of its bug period (see :mod:`kdzoo.methods.nkd`): its
"non-target" term runs over all classes, the target included. ``nkd_variant="reference"`` (default)
computes that term, which gave the published SD-NKD numbers; ``nkd_variant="paper"`` the NKD paper's
term over the non-target classes (the fixed code's). The option only matters with ``base=nkd``.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..losses.dkd import nckd_loss, tckd_loss
from ..losses.kd import kd_loss
from ..losses.nkd import nkd_non_target_loss, nkd_target_loss
from ..losses.sdd import multiscale_cells, region_logits, sdd_loss
from ..models.features import TAPS, Features
from ..models.registry import family_of
from .base import LossWeights, Method, Reads, check_head_map, linear_warmup
from .options import OneOf, Range
from .registry import register_method

BASES = {"kd": (LossWeights(gamma=0.1, alpha=0.0, beta=0.9), 0), "dkd": (LossWeights(1.0, 0.0, 1.0), 20),
         "nkd": (LossWeights(1.0, 0.0, 1.0), 20)}
NKD_VARIANTS = ("reference", "paper")
BASE = OneOf(*BASES, reference="kd; the logit loss applied per region")
NKD_VARIANT = OneOf(*NKD_VARIANTS, reference="reference: the reference's all-classes non-target term; paper: the "
                                             "target class excluded")


@register_method("sdd")
class SDD(Method):
    """Scale decoupled distillation: a logit loss on multi-scale cells of the head map, through each classifier."""

    paper = "Wei, Luo, Luo. Scale Decoupled Distillation. CVPR 2024"
    uses = ("the map pooled into the classifier, both classifiers, labels; base=kd|dkd|nkd; "
            "nkd_variant=reference (all-classes non-target term, default) | paper")
    reads = Reads(student=TAPS, teacher=TAPS, classifier=True)
    default_weights = BASES["kd"][0]

    def __init__(self, student: Features, teacher: Features, *,
                 base: Annotated[str, BASE] = "kd",
                 scales: Annotated[list[int], Range(ge=1, reference="[1, 2] or [1, 2, 4] by family")] | None = None,
                 complementary_weight: Annotated[float, Range(ge=0)] = 2.0,
                 temperature: Annotated[float, Range(gt=0)] = 4.0,
                 dkd_alpha: Annotated[float, Range(ge=0)] = 1.0, dkd_beta: Annotated[float, Range(ge=0)] = 8.0,
                 nkd_gamma: Annotated[float, Range(ge=0)] = 8.0,
                 nkd_variant: Annotated[str, NKD_VARIANT] = "reference",
                 warmup_epochs: Annotated[int, Range(ge=0, reference="20 for dkd/nkd, 0 for kd")] | None = None,
                 student_model: nn.Module, teacher_model: nn.Module):
        super().__init__(student, teacher)
        self.base = base
        self.scales = self._scales(scales, student_model, teacher_model)
        self.complementary_weight, self.temperature = complementary_weight, temperature
        self.dkd_alpha, self.dkd_beta, self.nkd_gamma = dkd_alpha, dkd_beta, nkd_gamma
        self.nkd_variant = nkd_variant
        self.warmup_epochs = BASES[base][1] if warmup_epochs is None else warmup_epochs
        self.warmup_factor = linear_warmup(1, self.warmup_epochs)
        check_head_map("SDD", "student", student)
        check_head_map("SDD", "teacher", teacher)
        s_classes, t_classes = student.logits.shape[1], teacher.logits.shape[1]
        if s_classes != t_classes:
            raise ConfigError(f"SDD compares region logits class by class; the student has {s_classes} classes and the "
                              f"teacher {t_classes}.")
        # The networks' own classifiers, used on the region cells (a tuple: not submodules of the method).
        self.classifiers = (student_model.get_classifier(), teacher_model.get_classifier())

    @staticmethod
    def _scales(scales: list[int] | None, student_model: nn.Module, teacher_model: nn.Module) -> list[int]:
        if scales is None:
            families = {family_of(m) for m in (student_model, teacher_model)}
            return [1, 2] if len(families) == 1 else [1, 2, 4]
        if 1 not in scales or len(set(scales)) != len(scales):
            raise ConfigError(f"SDD's scales must be distinct whole numbers >= 1 including 1 (the global cell), e.g. "
                              f"[1, 2] or [1, 2, 4]; got {scales!r}.")
        return sorted(scales)

    def on_epoch_start(self, epoch: int, total_epochs: int) -> None:
        self.warmup_factor = linear_warmup(epoch, self.warmup_epochs)

    def base_loss(self, logits_s: Tensor, logits_t: Tensor, target: Tensor) -> Tensor:
        """The base loss per row (sample x region)."""
        t = self.temperature
        if self.base == "kd":
            return kd_loss(logits_s, logits_t, t, t, reduction="none")
        if self.base == "dkd":
            return (self.dkd_alpha * tckd_loss(logits_s, logits_t, target, t, reduction="none")
                    + self.dkd_beta * nckd_loss(logits_s, logits_t, target, t, reduction="none"))
        return (nkd_target_loss(logits_s, logits_t, target, reduction="none")
                + self.nkd_gamma * nkd_non_target_loss(logits_s, logits_t, target, t, reduction="none",
                                                       exclude_target=self.nkd_variant == "paper"))

    def reference_weights(self) -> LossWeights:
        return BASES[self.base][0]

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        classifier_s, classifier_t = self.classifiers
        regions_s = region_logits(multiscale_cells(student.head_map, self.scales), classifier_s)
        with torch.no_grad():
            regions_t = region_logits(multiscale_cells(teacher.head_map, self.scales), classifier_t)
        loss = sdd_loss(regions_s.float(), regions_t.float(), batch.labels, self.base_loss, self.complementary_weight)
        return {f"sdd_{self.base}": self.warmup_factor * loss}
