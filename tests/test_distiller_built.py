"""The Distiller and its method are built whole: what they run with is given to their constructors, not set on
them afterwards (a method built directly is the one :func:`create_method` returns)."""

from __future__ import annotations

import torch
from torch import nn

from conftest import frozen_model, models
from kdzoo import Distiller
from kdzoo.distiller import Runtime
from kdzoo.methods import create_method, method_class, method_needs
from kdzoo.models.features import feature_shapes

SHAPE = (3, 32, 32)


def sized(method: str, **options):
    """The student's and the teacher's feature shapes method ``method`` with ``options`` is sized from."""
    needs = method_needs(method, options)
    student, teacher = frozen_model("resnet8"), frozen_model("resnet14")
    return feature_shapes(student, SHAPE, needs.student), feature_shapes(teacher, SHAPE, needs.teacher), teacher


def test_a_method_built_directly_reads_what_its_options_say():
    """OFD's ``variant=eval`` runs the teacher in eval mode: the directly built method reads so, as
    create_method's does (the class default reads the teacher in batch statistics)."""
    s, t, teacher = sized("ofd", variant="eval")
    direct = method_class("ofd")(s, t, variant="eval", teacher_model=teacher)
    made = create_method("ofd", frozen_model("resnet8"), frozen_model("resnet14"), variant="eval")
    assert method_class("ofd").reads.teacher_batch_stats
    assert direct.reads == made.reads and not direct.reads.teacher_batch_stats


def test_a_method_built_directly_takes_logit_std_as_create_method_gives_it():
    s, t, _ = sized("kd")
    direct = method_class("kd")(s, t, logit_std=True)
    made = create_method("kd", frozen_model("resnet8"), frozen_model("resnet14"), logit_std=True)
    assert direct.logit_std and made.logit_std
    assert direct.reference_weights() == made.reference_weights() != method_class("kd").default_weights
    assert not method_class("kd")(s, t).logit_std


def test_the_runtime_and_sync_bn_are_given_to_the_distiller():
    """Built with them, not set on it afterwards; SyncBatchNorm keeps the student's checkpoint keys."""
    student, teacher = models("resnet8", "resnet14")
    runtime = Runtime(amp=torch.bfloat16, channels_last=True)
    synced = Distiller(student, teacher, "kd", runtime=runtime, sync_bn=True)
    plain = Distiller(*models("resnet8", "resnet14"), "kd")
    assert synced.runtime == runtime and plain.runtime == Runtime()
    assert any(isinstance(m, nn.SyncBatchNorm) for m in synced.student.modules())
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in plain.student.modules())
    assert synced.state_dict().keys() == plain.state_dict().keys()
