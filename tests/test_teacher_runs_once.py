"""The teacher runs once per view and batch for everything a method reads (logits and features together), and its
outputs, computed under inference_mode, can be saved for the student's backward pass by every loss."""

from types import SimpleNamespace

import pytest
import torch

from kdzoo.distiller import run_networks
from kdzoo.methods import Objective, create_method, list_methods, method_class
from kdzoo.models import HeadedStudent, MultiExitNet, create_model

TEACHER_METHODS = [name for name in list_methods() if method_class(name).reads.needs_teacher]


@pytest.mark.parametrize("name", TEACHER_METHODS)
def test_one_teacher_forward_per_view_and_a_backward_through_its_outputs(name):
    torch.manual_seed(0)
    teacher = create_model("resnet14", num_classes=10).eval().requires_grad_(False)
    student = create_model("resnet8", num_classes=10)
    reads = method_class(name).reads
    network = MultiExitNet.build(student, (3, 32, 32)) if reads.student.exits else student
    method = create_method(name, network, teacher, train_labels=torch.arange(40) % 10,
                           **({"nce_k": 8} if name == "crd" else {}))
    deployed = network if method.student_head() is None else HeadedStudent(student, method.student_head())
    calls = []
    teacher.register_forward_pre_hook(lambda module, args: calls.append(1))
    x = torch.randn(4, 3, 32, 32)
    views = [x] + ([x.flip(-1)] if reads.strong_view else [])
    s, t = run_networks(deployed, teacher, views, method.reads)
    batch = SimpleNamespace(images=x, labels=torch.arange(4), index=torch.arange(4), strong_images=None)
    loss = sum(Objective(method, method.reference_weights())(s, t, batch).values())
    loss.backward()
    assert len(calls) == len(views)
    assert not t.logits.is_inference()
