"""Every method on every teacher/student pair of RepDistiller's two CIFAR-100 tables: built from the
real feature shapes, one finite loss and backward step each, or refused before training where the
reference cannot handle the pair (FSP and KDSVD need equal channel counts). Self-distillation methods
run on the pair's student without the teacher; multi-exit methods on the student with exits."""

import pytest
import torch

from kdzoo import Distiller
from kdzoo.errors import KdzooError
from kdzoo.methods import list_methods, method_needs
from kdzoo.models import create_model

SAME_FAMILY = [("wrn_40_2", "wrn_16_2"), ("wrn_40_2", "wrn_40_1"), ("resnet56", "resnet20"), ("resnet110", "resnet20"),
               ("resnet110", "resnet32"), ("resnet32x4", "resnet8x4"), ("vgg13", "vgg8")]
CROSS_FAMILY = [("vgg13", "MobileNetV2"), ("ResNet50", "MobileNetV2"), ("ResNet50", "vgg8"),
                ("resnet32x4", "ShuffleV1"), ("resnet32x4", "ShuffleV2"), ("wrn_40_2", "ShuffleV1")]
#: RepDistiller's "N/A" cells: these methods need equal channel counts at every tapped layer.
REFUSED = {"fsp": {("wrn_40_2", "wrn_40_1"), *CROSS_FAMILY}, "kdsvd": {("wrn_40_2", "wrn_40_1"), *CROSS_FAMILY}}
OPTIONS = {"crd": {"nce_k": 16}}


@pytest.mark.slow
@pytest.mark.parametrize("pair", SAME_FAMILY + CROSS_FAMILY, ids="->".join)
def test_every_method_on_the_benchmark_pairs(pair):
    teacher_arch, student_arch = pair
    torch.manual_seed(0)
    teacher = create_model(teacher_arch, num_classes=100).eval().requires_grad_(False)
    student = create_model(student_arch, num_classes=100)
    images, labels, index = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]), torch.arange(4)
    for name in list_methods():
        options = {"train_labels": torch.arange(100), **OPTIONS.get(name, {})}
        partner = teacher if method_needs(name).needs_teacher else None
        if pair in REFUSED.get(name, ()):
            with pytest.raises(KdzooError, match="channel"):
                Distiller(student, partner, name, **options)
            continue
        distiller = Distiller(student, partner, name, **options)
        student.zero_grad()
        strong = images.flip(-1) if distiller.reads.strong_view else None  # MLKD's two views
        loss = sum(distiller(images, labels, index=index, strong_images=strong).values())
        assert torch.isfinite(loss), (name, pair)
        loss.backward()
        assert any(p.grad is not None for p in student.parameters()), name
        stage = distiller.init_stage(lr=0.05)
        if stage is not None:  # AB, FT, FSP: their init-stage loss too
            assert torch.isfinite(distiller.init_loss(stage, images, labels, index)), (name, pair)
