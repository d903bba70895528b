"""KD loss pinned to values computed by hand (a naive second formulation), and the objective."""

import math
from types import SimpleNamespace

import pytest
import torch

from conftest import naive_kd
from kdzoo.losses import kd_loss
from kdzoo.methods import LossWeights, Method, Objective, create_method
from kdzoo.models import Features

ZS = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
ZT = [[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]]


def test_kd_loss_matches_hand_value():
    # a single row checked fully by hand: z_s=[0,0] (p_s=[.5,.5]), z_t=[ln 3, 0] at T=1 (p_t=[.75,.25])
    value = kd_loss(torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]]), 1.0, 1.0)
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert value.item() == pytest.approx(expected, abs=1e-7)
    assert expected == pytest.approx(0.130812, abs=1e-6)


@pytest.mark.parametrize("ts,tt", [(4.0, 4.0), (1.0, 1.0), (2.0, 6.0)])
def test_kd_loss_matches_naive_formula(ts, tt):
    value = kd_loss(torch.tensor(ZS), torch.tensor(ZT), t_student=ts, t_teacher=tt)
    assert value.item() == pytest.approx(naive_kd(ZS, ZT, ts, tt), rel=1e-5)


def test_kd_loss_equals_repdistiller_formula():
    zs, zt = torch.randn(5, 10), torch.randn(5, 10)
    t = 4.0
    reference = torch.nn.functional.kl_div(
        torch.log_softmax(zs / t, 1), torch.softmax(zt / t, 1), reduction="sum") * t**2 / zs.shape[0]
    assert kd_loss(zs, zt).item() == pytest.approx(reference.item(), rel=1e-5)


def test_kd_loss_zero_for_identical_logits_and_gradient_only_to_student():
    zs = torch.randn(3, 7, requires_grad=True)
    zt = zs.detach().clone().requires_grad_(True)
    assert kd_loss(zs, zt).item() == pytest.approx(0.0, abs=1e-6)
    kd_loss(zs * 2, zt.detach()).backward()
    assert zs.grad is not None and zs.grad.abs().sum() > 0


def _objective_inputs():
    torch.manual_seed(0)
    s = Features(torch.randn(4, 5, requires_grad=True), [])
    t = Features(torch.randn(4, 5), [])
    batch = SimpleNamespace(labels=torch.tensor([0, 1, 2, 3]))
    return s, t, batch


def test_objective_weights_terms_and_skips_zero_weights():
    s, t, batch = _objective_inputs()
    terms = Objective(Method(None, None), LossWeights(gamma=0.1, alpha=0.9, beta=0.0))(s, t, batch)
    assert set(terms) == {"ce", "kd"}
    ce = torch.nn.functional.cross_entropy(s.logits, batch.labels)
    assert terms["ce"].item() == pytest.approx(0.1 * ce.item(), rel=1e-6)
    assert terms["kd"].item() == pytest.approx(0.9 * kd_loss(s.logits, t.logits).item(), rel=1e-6)
    assert set(Objective(Method(None, None), LossWeights(1.0, 0.0, 0.0))(s, t, batch)) == {"ce"}


def test_objective_computes_in_float32_and_without_teacher():
    s, t, batch = _objective_inputs()
    half = Features(s.logits.bfloat16(), [])
    terms = Objective(Method(None, None), LossWeights(1.0, 1.0, 0.0))(half, Features(t.logits.bfloat16(), []), batch)
    assert all(v.dtype == torch.float32 for v in terms.values())
    assert set(Objective(Method(None, None), LossWeights(1.0, 1.0, 1.0))(s, None, batch)) == {"ce"}


def test_kd_method_defaults_are_repdistiller_script_values():
    from kdzoo.models import create_model

    student, teacher = create_model("resnet8", num_classes=10), create_model("resnet14", num_classes=10)
    method = create_method("kd", student, teacher)
    assert method.default_weights == LossWeights(gamma=0.1, alpha=0.9, beta=0.0)
    assert not method.reads.student.needs_taps and not method.reads.teacher.needs_taps


def test_create_method_rejects_unknown_options():
    from kdzoo.errors import ConfigError, UnknownNameError
    from kdzoo.models import create_model

    student = create_model("resnet8", num_classes=10)
    with pytest.raises(ConfigError, match="no option"):
        create_method("kd", student, student, temperature=3)
    with pytest.raises(UnknownNameError, match="Known methods"):
        create_method("kdd", student, student)
