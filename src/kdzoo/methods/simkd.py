"""SimKD: Chen, Mei, Wang, Feng, Chen, "Knowledge Distillation with the Reused Teacher Classifier",
CVPR 2022.

The student's head map f_s (for ResNets and VGG its last stage map, RepDistiller's ``feat[-2]``)
goes through a trainable projector P into the teacher's channel count and is matched to the
teacher's head map f_t by MSE (:func:`kdzoo.losses.simkd_loss`); the student is then deployed with
P and a frozen copy of the teacher's classifier: logits = W_t GAP(P(f_s)) + b_t. The engine wraps
the student in :class:`~kdzoo.models.HeadedStudent`, so training accuracy, evaluation, checkpoints
(``head`` entry) and ``kdzoo eval`` all use that head. Weights as the reference scripts
(``-c 0 -d 0 -b 1``): CE 0, KD 0, SimKD 1; projector width factor 2 (``factor``: 2, 4 or 8).
kdzoo matches the maps that actually feed each classifier (after WRN's final BN-ReLU, MobileNetV2's
``conv2``, ShuffleV2's ``conv2``), which equal ``feat[-2]`` for ResNets and VGG.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..losses.simkd import simkd_loss
from ..models.features import Features
from ..models.heads import ReusedClassifierHead
from .base import HEAD_MAP, LossWeights, Method, Reads, check_head_map
from .registry import register_method


@register_method("simkd")
class SimKD(Method):
    paper = ("Chen, Mei, Wang, Feng, Chen. Knowledge Distillation with the Reused Teacher Classifier. "
             "CVPR 2022")
    uses = "the map pooled into the classifier (projected); the teacher's classifier, reused"
    reads = Reads(student=HEAD_MAP, teacher=HEAD_MAP, classifier=True)
    default_weights = LossWeights(gamma=0.0, alpha=0.0, beta=1.0)

    def __init__(self, student: Features, teacher: Features, *, factor: int = 2, teacher_model: nn.Module):
        super().__init__(student, teacher)
        check_head_map("SimKD", "teacher", teacher)
        c_s, h_s = student.head.shape[1], student.head.shape[-1]
        c_t, h_t = teacher.head.shape[1], teacher.head.shape[-1]
        if isinstance(factor, bool) or factor not in (1, 2, 4, 8) or c_t % factor:
            raise ConfigError(f"SimKD's factor must be 1, 2, 4 or 8 and divide the teacher's {c_t} channels "
                              f"(reference: 2), got {factor!r}.")
        if student.logits.shape[1] != teacher.logits.shape[1]:
            raise ConfigError(f"SimKD reuses the teacher's classifier, so student and teacher need the same classes "
                              f"({student.logits.shape[1]} vs {teacher.logits.shape[1]}).")
        head = ReusedClassifierHead(c_s, c_t, teacher.logits.shape[1], factor, pool_to=h_t if h_s > h_t else None)
        with torch.no_grad():
            classifier = teacher_model.get_classifier()
            head.classifier.weight.copy_(classifier.weight)
            head.classifier.bias.copy_(classifier.bias)
        head.to(teacher.logits.device)
        self._head = (head,)  # a tuple: the head is trained as part of the student, not of the method

    def student_head(self) -> nn.Module:
        return self._head[0]

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        return {"simkd": simkd_loss(student.head, teacher.head)}
