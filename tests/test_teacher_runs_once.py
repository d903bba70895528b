"""The teacher runs once per view and batch for everything a method reads (logits and features together), and its
outputs, computed under inference_mode, can be saved for the student's backward pass by every loss."""

import pytest
import torch

from kdzoo import Distiller
from kdzoo.methods import list_methods, method_needs
from kdzoo.models import create_model

TEACHER_METHODS = [name for name in list_methods() if method_needs(name).needs_teacher]


@pytest.mark.parametrize("name", TEACHER_METHODS)
def test_one_teacher_forward_per_view_and_a_backward_through_its_outputs(name):
    torch.manual_seed(0)
    teacher = create_model("resnet14", num_classes=10).eval().requires_grad_(False)
    student = create_model("resnet8", num_classes=10)
    distiller = Distiller(student, teacher, name, train_labels=torch.arange(40) % 10,
                          **({"nce_k": 8} if name == "crd" else {}))
    calls, outputs = [], []
    teacher.register_forward_pre_hook(lambda module, args: calls.append(1))
    distiller.objective.register_forward_pre_hook(lambda module, args: outputs.append(args[1]))
    x = torch.randn(4, 3, 32, 32)
    batch = distiller.batch(x, torch.arange(4), torch.arange(4), x.flip(-1) if distiller.reads.strong_view else None)
    terms, _ = distiller.step(batch)
    sum(terms.values()).backward()
    assert len(calls) == len(batch.views())
    assert not outputs[0].logits.is_inference()
