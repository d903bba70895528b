"""Every method on every teacher/student pair of RepDistiller's two CIFAR-100 tables: built from the
real feature shapes, one finite loss and backward step each, or refused before training where the
reference cannot handle the pair (FSP and KDSVD need equal channel counts). Self-distillation methods
run on the pair's student without the teacher; multi-exit methods on the student with exits."""

from types import SimpleNamespace

import pytest
import torch

from kdzoo.distiller import run_networks
from kdzoo.errors import KdzooError
from kdzoo.methods import Objective, create_method, list_methods, method_class
from kdzoo.models import HeadedStudent, MultiExitNet, create_model

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
    batch = SimpleNamespace(images=torch.randn(4, 3, 32, 32), labels=torch.tensor([0, 1, 2, 3]), index=torch.arange(4))
    labels = torch.arange(100)
    for name in list_methods():
        if pair in REFUSED.get(name, ()):
            with pytest.raises(KdzooError, match="channel"):
                create_method(name, student, teacher, train_labels=labels, **OPTIONS.get(name, {}))
            continue
        cls = method_class(name)
        network = MultiExitNet.build(student, (3, 32, 32)) if cls.reads.student.exits else student
        method = create_method(name, network, teacher if cls.reads.needs_teacher else None, train_labels=labels,
                               **OPTIONS.get(name, {}))
        objective = Objective(method, method.reference_weights())
        student.zero_grad()
        deployed = network if method.student_head() is None else HeadedStudent(student, method.student_head())
        views = [batch.images] + ([batch.images.flip(-1)] if method.reads.strong_view else [])  # MLKD's two views
        s, t = run_networks(deployed, teacher, views, method.reads)
        loss = sum(objective(s, t, batch).values())
        assert torch.isfinite(loss), (name, pair)
        loss.backward()
        assert any(p.grad is not None for p in student.parameters()), name
        stage = method.init_stage(student, lr=0.05)
        if stage is not None:  # AB, FT, FSP: their init-stage loss too
            init_s, init_t = run_networks(student, teacher, [batch.images], stage.reads)
            assert torch.isfinite(method.init_loss(init_s, init_t, batch)), (name, pair)
