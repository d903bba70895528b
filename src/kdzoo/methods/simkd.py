"""SimKD: Chen, Mei, Zhang, Wang, Feng, Chen, "Knowledge Distillation with the Reused Teacher Classifier",
CVPR 2022.

    L = MSE(P(f_s), f_t),   deployed logits = W_t GAP(P(f_s)) + b_t

A student map f_s goes through a trainable projector P into the teacher's channel count and is
matched to a teacher map f_t by MSE (:func:`kdzoo.losses.simkd_loss`); the student is then deployed
with P and a frozen copy of the teacher's classifier (W_t, b_t). The engine
wraps the student in :class:`~kdzoo.models.HeadedStudent`, so training accuracy, evaluation,
checkpoints (``head`` entry) and ``kdzoo eval`` all use that head. Weights as the reference scripts
(``-c 0 -d 0 -b 1``): CE 0, KD 0, SimKD 1; projector width factor 2 (``factor``: 1, 2, 4 or 8).

Which maps (``variant``):

- ``reference`` (default): both networks' ``feat[-2]``, the last stage's output, as the reference
  code (``module_list[1](feat_s[-2], feat_t[-2], cls_t)``). For ResNets and VGG that is the map the
  classifier pools; for a WRN it is taken before the final BN-ReLU, for MobileNetV2 and ShuffleV2
  before the last 1x1 conv (the student's own conv2 then goes unused, as in the reference). A teacher
  whose last stage is not what its classifier reads by width (MobileNetV2, ShuffleV2) is refused:
  the reference cannot run it either; use ``variant=head_map``.
- ``head_map``: the maps that actually feed each classifier (after WRN's final BN-ReLU, MobileNetV2's
  ``conv2``, ShuffleV2's ``conv2``/``bn2``), so every teacher works and the student keeps its last layers.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..losses.simkd import simkd_loss
from ..models.features import TAPS, Features
from ..models.heads import ReusedClassifierHead
from .base import LossWeights, Method, Reads, check_head_map
from .options import OneOf
from .registry import register_method

#: variant -> which map of each network SimKD projects and matches (see the module docstring).
VARIANTS = {"reference": "stage", "head_map": "head"}
VARIANT = OneOf(*VARIANTS, reference="reference: the last stage's maps, as the reference code; head_map: the maps "
                                     "that feed the classifiers")


def source_map(features: Features, source: str) -> Tensor:
    """The map SimKD reads: the last stage's output (``feat[-2]``) or the map pooled into the classifier."""
    return features.stages[-1] if source == "stage" else features.head_map


@register_method("simkd")
class SimKD(Method):
    """Reused teacher classifier: MSE between the projected student map and the teacher map."""

    paper = ("Chen, Mei, Zhang, Wang, Feng, Chen. Knowledge Distillation with the Reused Teacher Classifier. "
             "CVPR 2022")
    uses = ("the last stage's map (variant=reference, default) or the map pooled into the classifier "
            "(variant=head_map), projected; the teacher's classifier, reused")
    reads = Reads(student=TAPS, teacher=TAPS, classifier=True)
    default_weights = LossWeights(gamma=0.0, alpha=0.0, beta=1.0)

    def __init__(self, student: Features, teacher: Features, *, factor: int = 2,
                 variant: Annotated[str, VARIANT] = "reference",
                 teacher_model: nn.Module):
        super().__init__(student, teacher)
        self.source = VARIANTS[variant]
        map_s, map_t = source_map(student, self.source), source_map(teacher, self.source)
        try:
            check_head_map("SimKD", "teacher", teacher, map_t)
        except ConfigError as exc:
            hint = " --method-opt variant=head_map uses the map that feeds it." if self.source == "stage" else ""
            raise ConfigError(f"{exc}{hint}") from None
        c_s, h_s = map_s.shape[1], map_s.shape[-1]
        c_t, h_t = map_t.shape[1], map_t.shape[-1]
        if isinstance(factor, bool) or factor not in (1, 2, 4, 8) or c_t % factor:
            raise ConfigError(f"SimKD's factor must be 1, 2, 4 or 8 and divide the teacher's {c_t} channels "
                              f"(reference: 2), got {factor!r}.")
        if student.logits.shape[1] != teacher.logits.shape[1]:
            raise ConfigError(f"SimKD reuses the teacher's classifier, so student and teacher need the same classes "
                              f"({student.logits.shape[1]} vs {teacher.logits.shape[1]}).")
        head = ReusedClassifierHead(c_s, c_t, teacher.logits.shape[1], factor, pool_to=h_t if h_s > h_t else None,
                                    source=self.source)
        with torch.no_grad():
            classifier = teacher_model.get_classifier()
            head.classifier.weight.copy_(classifier.weight)
            head.classifier.bias.copy_(classifier.bias)
        head.to(teacher.logits.device)
        self._head = (head,)  # a tuple: the head is trained as part of the student, not of the method

    def student_head(self) -> nn.Module:
        return self._head[0]

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        # the deployed student's head map is its projection P(f_s); the target is the teacher's map of the variant
        return {"simkd": simkd_loss(student.head_map, source_map(teacher, self.source))}
