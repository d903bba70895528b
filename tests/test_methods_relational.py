"""Relational methods SP, CC, RKD and PKT (what they match is a relation between the batch's samples): losses
pinned to naive loop formulations and hand values, gradients, short batches, CC's embedding shapes as RepDistiller
builds them, optimisation steps, refusals. (FitNet, AT and NST, which match the maps themselves:
test_methods_feature.py.)"""

import math

import numpy as np
import pytest
import torch

from conftest import arr, check_gradients_and_short_batches, models, randn
from kdzoo.losses import (
    cc_loss,
    pkt_loss,
    rkd_angle_loss,
    rkd_distance_loss,
    rkd_loss,
    sp_loss,
)
from kdzoo.methods import LossWeights, create_method, method_class, method_options
from kdzoo.models import create_model
from kdzoo.models.features import Features, extract, feature_shapes

METHODS = ["sp", "cc", "rkd", "pkt"]
TERMS = {"sp": {"sp"}, "cc": {"cc"}, "rkd": {"rkd_distance", "rkd_angle"}, "pkt": {"pkt"}}


def huber(a, b):
    d = abs(a - b)
    return 0.5 * d * d if d < 1 else d - 0.5


# ---------------------------------------------------------------------------------------------- golden values

def test_sp_loss_hand_value():
    # student Q = I -> G~ = I; teacher Q = [[1,0],[1,0]] -> G = all ones -> G~ = 1/sqrt2 everywhere
    fs = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(2, 2, 1, 1)
    ft = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).view(2, 2, 1, 1)
    # ||G~_t - G~_s||^2 = 2 (1/sqrt2 - 1)^2 + 2 * 1/2 = 4 - 2 sqrt2, divided by B^2 = 4
    value = sp_loss(fs, ft)
    assert value.shape == ()
    assert value.item() == pytest.approx(1 - math.sqrt(2) / 2, abs=1e-6)


def test_sp_loss_matches_naive():
    fs, ft = randn(3, 2, 2, 2, seed=1), randn(3, 3, 2, 2, seed=2)

    def similarity(f):
        q = arr(f).reshape(3, -1)
        g = [[float(np.dot(q[i], q[j])) for j in range(3)] for i in range(3)]
        return [[v / math.sqrt(sum(w * w for w in row)) for v in row] for row in g]

    gs, gt = similarity(fs), similarity(ft)
    expected = sum((gt[i][j] - gs[i][j]) ** 2 for i in range(3) for j in range(3)) / 9
    assert sp_loss(fs, ft).item() == pytest.approx(expected, rel=1e-5)


def test_cc_loss_hand_value_and_single_sample():
    e_s = torch.tensor([[1.0, 2.0], [1.0, 0.0], [3.0, 1.0]])
    e_t = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # delta = [[1,2],[1,1],[2,0]]: pairs (0,1) -> 1+2 = 3, (1,2) -> 2+0 = 2; divided by B-1 = 2
    assert cc_loss(e_s, e_t).item() == pytest.approx(2.5)
    assert cc_loss(e_s[:1], e_t[:1]).item() == 0.0  # RepDistiller: NaN (mean of nothing)


def test_cc_method_heads_then_consecutive_products():
    s = Features(randn(3, 10), [randn(3, 4, 4, 4), randn(3, 5, seed=1)])
    t = Features(randn(3, 10), [randn(3, 4, 4, 4), randn(3, 7, seed=2)])
    method = method_class("cc")(s, t, feat_dim=4)
    assert method.embed_s.weight.shape == (4, 5) and method.embed_t.weight.shape == (4, 7)
    e_s = arr(s.pooled) @ arr(method.embed_s.weight).T + arr(method.embed_s.bias)
    e_t = arr(t.pooled) @ arr(method.embed_t.weight).T + arr(method.embed_t.bias)
    delta = abs(e_s - e_t)
    expected = sum(float(np.dot(delta[i], delta[i + 1])) for i in range(2)) / 2
    assert method(s, t, None)["cc"].item() == pytest.approx(expected, rel=1e-5)


def naive_rkd(xs, xt):
    def distances(x):
        b = len(x)
        d = [[0.0 if i == j else float(np.linalg.norm(x[i] - x[j])) for j in range(b)] for i in range(b)]
        mean = sum(sum(row) for row in d) / (b * (b - 1))
        return [v / mean for row in d for v in row]

    def angles(x):
        b = len(x)

        def unit(i, j):
            v = x[j] - x[i]
            n = np.linalg.norm(v)
            return v / n if n > 0 else v

        return [float(np.dot(unit(i, j), unit(i, k))) for i in range(b) for j in range(b) for k in range(b)]

    ds, dt = distances(xs), distances(xt)
    as_, at_ = angles(xs), angles(xt)
    l_d = sum(huber(a, b) for a, b in zip(ds, dt, strict=True)) / len(ds)
    l_a = sum(huber(a, b) for a, b in zip(as_, at_, strict=True)) / len(as_)
    return l_d, l_a


def test_rkd_losses_match_naive():
    fs, ft = randn(4, 5, seed=1), 3 * randn(4, 3, seed=2)  # teacher x3: some distance terms beyond Huber's 1
    l_d, l_a = naive_rkd(arr(fs), arr(ft))
    assert rkd_distance_loss(fs, ft).item() == pytest.approx(l_d, rel=1e-5)
    assert rkd_angle_loss(fs, ft).item() == pytest.approx(l_a, rel=1e-5)
    assert rkd_loss(fs, ft).item() == pytest.approx(25 * l_d + 50 * l_a, rel=1e-5)
    assert rkd_loss(fs, ft, w_d=1.0, w_a=0.0).item() == pytest.approx(l_d, rel=1e-5)


def test_rkd_method_terms_are_weighted_and_skippable():
    s = Features(randn(4, 10), [randn(4, 5, seed=1)])
    t = Features(randn(4, 10), [randn(4, 3, seed=2)])
    l_d, l_a = naive_rkd(arr(s.pooled), arr(t.pooled))
    terms = method_class("rkd")(s, t)(s, t, None)
    assert terms["rkd_distance"].item() == pytest.approx(25 * l_d, rel=1e-5)
    assert terms["rkd_angle"].item() == pytest.approx(50 * l_a, rel=1e-5)
    assert set(method_class("rkd")(s, t, w_a=0)(s, t, None)) == {"rkd_distance"}


def test_rkd_single_sample_is_zero_not_nan():
    fs, ft = randn(1, 5, seed=1).requires_grad_(), randn(1, 3, seed=2)
    value = rkd_loss(fs, ft)
    assert value.item() == 0.0  # RepDistiller: NaN (no positive distance to normalise by)
    value.backward()
    assert torch.isfinite(fs.grad).all()


def test_pkt_loss_matches_naive():
    fs, ft = randn(4, 6, seed=1), randn(4, 3, seed=2).relu()
    eps = 1e-7

    def probabilities(x):
        x = [row / (np.linalg.norm(row) + eps) for row in x]
        s = [[(float(np.dot(a, b)) + 1) / 2 for b in x] for a in x]
        return [[v / sum(row) for v in row] for row in s]

    ps, pt = probabilities(arr(fs)), probabilities(arr(ft))
    expected = sum(pt[i][j] * math.log((pt[i][j] + eps) / (ps[i][j] + eps)) for i in range(4) for j in range(4)) / 16
    assert pkt_loss(fs, ft).item() == pytest.approx(expected, rel=1e-4)
    assert pkt_loss(ft, ft).item() == pytest.approx(0.0, abs=1e-7)


def test_sp_loss_accepts_channels_last():
    fs, ft = randn(2, 6, 4, 4, seed=1), randn(2, 3, 8, 8, seed=2)
    cl = [x.to(memory_format=torch.channels_last) for x in (fs, ft)]
    assert sp_loss(*cl).item() == pytest.approx(sp_loss(fs, ft).item(), rel=1e-6)


# ---------------------------------------------------------------------------------------------- methods on models

def features(student, teacher, x):
    with torch.no_grad():
        ft = extract(teacher, x)
    return extract(student, x), ft


@pytest.mark.parametrize("name", METHODS)
def test_registry_metadata(name):
    cls = method_class(name)
    assert cls.paper and cls.uses and cls.reads.student.taps and not cls.reads.student.preact and not cls.reads.index
    expected = {"sp": (1, 0, 3000), "cc": (1, 0, 0.02), "rkd": (1, 0, 1), "pkt": (1, 0, 30000)}[name]
    assert cls.default_weights == LossWeights(*expected)
    assert method_options(name) == {"cc": {"feat_dim": 128}, "rkd": {"w_d": 25.0, "w_a": 50.0}}.get(name, {})


@pytest.mark.parametrize("name", METHODS)
def test_gradients_and_short_batches(name):
    """Gradients reach the student and the method's modules, never the teacher; batches of 4, 3, 1 are finite."""
    student, teacher = models("resnet8", "resnet14")
    method = create_method(name, student, teacher)
    check_gradients_and_short_batches(method, student, teacher, TERMS[name])


@pytest.mark.parametrize("teacher,student,d_s,d_t", [
    ("resnet32x4", "resnet8x4", 256, 256),
    ("vgg13", "MobileNetV2", 1280, 512),
    ("resnet32x4", "ShuffleV2", 1024, 256),
    ("ResNet50", "MobileNetV2", 1280, 2048),
])
def test_cc_embedding_shapes_match_reference(teacher, student, d_s, d_t):
    s = feature_shapes(create_model(student), (3, 32, 32))  # what create_method sizes the modules from
    t = feature_shapes(create_model(teacher), (3, 32, 32))
    cc = method_class("cc")(s, t)  # CC's two linear heads to 128
    assert cc.embed_s.weight.shape == (128, d_s) and cc.embed_t.weight.shape == (128, d_t)


# Two optimisation steps: test_method_contracts.py


# ---------------------------------------------------------------------------------------------- refusals

# Bad options: test_method_options.py
