"""Feature-map and feature-vector methods FitNet, AT, NST, PEFD, MGD, OFD and ReviewKD: losses pinned to hand
values and naive loop formulations, the reference's reductions, gradients, extra-module shapes as the reference code
builds them, short batches, warm-up, optimisation steps and refused pairs or options. (Relational methods:
test_methods_relational.py; AB, FT, FSP: test_methods_staged.py; VID, KDSVD, CRD, SimKD: their own files.)"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from conftest import (
    arr,
    batch_of,
    block_mean,
    built,
    check_gradients_and_short_batches,
    forward_pair,
    frozen_model,
    images,
    match,
    models,
    randn,
)
from kdzoo.errors import ConfigError, KdzooError
from kdzoo.losses import (
    at_loss,
    channel_mask,
    fitnet_loss,
    mgd_loss,
    nst_loss,
    ofd_loss,
    ofd_margin,
    pefd_loss,
    reviewkd_loss,
)
from kdzoo.methods import LossWeights, Objective, create_method, method_class, method_options
from kdzoo.methods.ofd import OFD
from kdzoo.methods.reviewkd import ABF
from kdzoo.models import create_model, extract
from kdzoo.models.features import Features, feature_shapes

FITNET_AT_NST = ["fitnet", "at", "nst"]
NAMES = ["pefd", "mgd", "ofd", "reviewkd"]


def pool(m, h):
    """Average-pool a numpy B x C x H x H map to h x h by an integer factor (adaptive pooling's result)."""
    b, c, hh, _ = m.shape
    k = hh // h
    return m.reshape(b, c, h, k, h, k).mean(axis=(3, 5))


# ------------------------------------------------------------------------------------------ FitNet
def test_fitnet_loss_is_elementwise_mean():
    fs, ft = randn(2, 3, 4, 4, seed=1), randn(2, 3, 4, 4, seed=2)
    expected = np.mean([(a - b) ** 2 for a, b in zip(arr(fs).ravel(), arr(ft).ravel(), strict=True)])
    assert fitnet_loss(fs, ft).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        fitnet_loss(fs, ft[:, :2])


def test_fitnet_method_applies_regressor_then_mse():
    s = Features(randn(2, 10), [randn(2, 4, 8, 8, seed=s) for s in range(3)] + [randn(2, 6)])
    t = Features(randn(2, 10), [randn(2, 5, 4, 4, seed=s + 5) for s in range(3)] + [randn(2, 6)])
    method = method_class("fitnet")(s, t, hint_layer=1)
    assert isinstance(method.regressor.conv, nn.Conv2d) and method.regressor.conv.stride == (2, 2)
    method.eval()
    value = method(s, t, None)["fitnet"]
    regressed = arr(method.regressor(s.feats[1]))
    assert value.item() == pytest.approx(float(np.mean((regressed - arr(t.feats[1])) ** 2)), rel=1e-6)


# -------------------------------------------------------------------------------------------- AT
def pooled_pairs(maps_s, maps_t):
    """The zipped (student, teacher) maps as numpy arrays (extra maps ignored), both pooled to the smaller size h."""
    for ms, mt in zip(maps_s, maps_t, strict=False):
        h = min(ms.shape[2], mt.shape[2])
        yield pool(arr(ms), h), pool(arr(mt), h), h


def naive_at(maps_s, maps_t):
    total = 0.0
    for ms, mt, h in pooled_pairs(maps_s, maps_t):
        for b in range(ms.shape[0]):
            a_s = [sum(ms[b, c, i, j] ** 2 for c in range(ms.shape[1])) / ms.shape[1]
                   for i in range(h) for j in range(h)]
            a_t = [sum(mt[b, c, i, j] ** 2 for c in range(mt.shape[1])) / mt.shape[1]
                   for i in range(h) for j in range(h)]
            ns, nt = math.sqrt(sum(v * v for v in a_s)), math.sqrt(sum(v * v for v in a_t))
            total += sum((x / ns - y / nt) ** 2 for x, y in zip(a_s, a_t, strict=True)) / (ms.shape[0] * h * h)
    return total


def test_at_loss_hand_value():
    # student: all ones -> a_s = [1/2]*4; teacher: a single non-zero position -> a_t = [1, 0, 0, 0]
    fs = torch.ones(1, 3, 2, 2)
    ft = torch.zeros(1, 2, 2, 2)
    ft[0, 0, 0, 0] = 2.0
    # squared differences [1/4, 1/4, 1/4, 1/4], mean over B*H*W = 4 entries
    assert at_loss([fs], [ft]).item() == pytest.approx(0.25, abs=1e-7)


def test_at_loss_matches_naive_with_pooling_and_zip():
    maps_s = [randn(2, 3, 4, 4, seed=1), randn(2, 5, 8, 8, seed=2), randn(2, 4, 2, 2, seed=3)]
    maps_t = [randn(2, 6, 8, 8, seed=4), randn(2, 2, 8, 8, seed=5)]  # teacher map 1 pooled, student map 1 pooled
    assert at_loss(maps_s, maps_t).item() == pytest.approx(naive_at(maps_s, maps_t), rel=1e-5)


# ------------------------------------------------------------------------------------------- NST
def naive_nst(maps_s, maps_t):
    total = 0.0
    for ms, mt, _ in pooled_pairs(maps_s, maps_t):
        b = ms.shape[0]
        s = [[ms[i, c].ravel() / np.linalg.norm(ms[i, c]) for c in range(ms.shape[1])] for i in range(b)]
        t = [[mt[i, c].ravel() / np.linalg.norm(mt[i, c]) for c in range(mt.shape[1])] for i in range(b)]

        def kernel_mean(a, c):
            return np.mean([float(np.dot(u, v)) ** 2 for a_i, c_i in zip(a, c, strict=True) for u in a_i for v in c_i])

        total += kernel_mean(t, t) + kernel_mean(s, s) - 2 * kernel_mean(s, t)
    return total


@pytest.mark.parametrize("shapes_s,shapes_t", [
    ([(2, 3, 4, 4), (2, 4, 2, 2)], [(2, 5, 4, 4), (2, 3, 4, 4), (2, 2, 2, 2)]),  # channel-kernel route, pooling, zip
    ([(2, 40, 2, 2)], [(2, 30, 4, 4)]),  # few positions, many channels: the HW x HW Gram route
])
def test_nst_loss_matches_naive(shapes_s, shapes_t):
    maps_s = [randn(*s, seed=i) for i, s in enumerate(shapes_s)]
    maps_t = [randn(*s, seed=10 + i) for i, s in enumerate(shapes_t)]
    assert nst_loss(maps_s, maps_t).item() == pytest.approx(naive_nst(maps_s, maps_t), rel=1e-4)
    assert nst_loss(maps_t, maps_t).item() == pytest.approx(0.0, abs=1e-5)


def test_at_and_nst_losses_accept_channels_last():
    fs, ft = randn(2, 6, 4, 4, seed=1), randn(2, 3, 8, 8, seed=2)
    cl = [x.to(memory_format=torch.channels_last) for x in (fs, ft)]
    assert at_loss([cl[0]], [cl[1]]).item() == pytest.approx(at_loss([fs], [ft]).item(), rel=1e-6)
    assert nst_loss([cl[0]], [cl[1]]).item() == pytest.approx(nst_loss([fs], [ft]).item(), rel=1e-6)


# ------------------------------------------------------------------------------ FitNet, AT and NST on models
@pytest.mark.parametrize("name", FITNET_AT_NST)
def test_fitnet_at_nst_registry_metadata(name):
    cls = method_class(name)
    assert cls.paper and cls.uses and cls.reads.student.taps and not cls.reads.student.preact and not cls.reads.index
    expected = {"fitnet": (1, 0, 100), "at": (1, 0, 1000), "nst": (1, 0, 50)}[name]
    assert cls.default_weights == LossWeights(*expected)
    assert method_options(name) == {"fitnet": {"hint_layer": 2}, "at": {"p": 2}}.get(name, {})


@pytest.mark.parametrize("name", FITNET_AT_NST)
def test_fitnet_at_nst_gradients_and_short_batches(name):
    """Gradients reach the student and the method's modules, never the teacher; batches of 4, 3, 1 are finite."""
    student, teacher = models("resnet8", "resnet14")
    method = create_method(name, student, teacher)
    check_gradients_and_short_batches(method, student, teacher, {name})


@pytest.mark.parametrize("teacher,student,conv,c_in,c_out", [
    ("resnet32x4", "resnet8x4", nn.Conv2d, 128, 128),
    ("vgg13", "MobileNetV2", nn.Conv2d, 16, 256),
    ("resnet32x4", "ShuffleV2", nn.ConvTranspose2d, 232, 128),
    ("ResNet50", "MobileNetV2", nn.ConvTranspose2d, 16, 512),
])
def test_fitnet_regressor_shapes_match_reference(teacher, student, conv, c_in, c_out):
    s = feature_shapes(create_model(student), (3, 32, 32))  # what create_method sizes the modules from
    t = feature_shapes(create_model(teacher), (3, 32, 32))
    reg = method_class("fitnet")(s, t).regressor  # FitNet's ConvReg on feat[2]
    assert type(reg.conv) is conv
    assert (reg.conv.in_channels, reg.conv.out_channels) == (c_in, c_out)
    assert reg.conv.kernel_size == ((1, 1) if conv is nn.Conv2d else (4, 4))
    assert reg.bn.num_features == c_out


# FitNet, AT, NST: two optimisation steps in test_method_contracts.py


def test_fitnet_refuses_pooled_vector_and_bad_hint_layer():
    student, teacher = models("resnet8", "resnet14")
    with pytest.raises(KdzooError, match=r"hint_layer=4 is not a feature map of the student.*\[0, 1, 2, 3\]"):
        create_method("fitnet", student, teacher, hint_layer=4)
    for bad in (5, -1, True, "2", 2.0):
        with pytest.raises(ConfigError, match="hint_layer must be a whole number between 0 and 4"):
            create_method("fitnet", student, teacher, hint_layer=bad)
    vgg = create_method("fitnet", create_model("vgg8"), create_model("vgg13"), hint_layer=4)  # 512x4x4 maps
    assert vgg.regressor.conv.kernel_size == (1, 1)


def test_fitnet_resizes_a_student_map_smaller_by_another_factor_than_two():
    """RepDistiller's ConvReg refuses 2x2 -> 8x8; kdzoo interpolates to the teacher's size, then a 1x1 conv."""
    s = Features(randn(2, 10), [randn(2, 8, 2, 2), randn(2, 8)])
    t = Features(randn(2, 10), [randn(2, 16, 8, 8), randn(2, 8)])
    method = method_class("fitnet")(s, t, hint_layer=0)
    upsample, conv = method.regressor.conv
    assert upsample.size == (8, 8) and conv.kernel_size == (1, 1) and conv.out_channels == 16
    assert method.regressor(s.feats[0]).shape == (2, 16, 8, 8) and torch.isfinite(method(s, t, None)["fitnet"])


# ------------------------------------------------------------------------------------------- PEFD
def test_pefd_hand_value():
    # projectors x and -x: the ensemble is (relu(x) + relu(-x)) / 2 = |x| / 2
    # row 1: |(-1, 2)| / 2 = (0.5, 1) is parallel to (1, 2): 1 - cos = 0
    # row 2: |(3, 0)| / 2 = (1.5, 0) against (1, 1): 1 - cos = 1 - 1/sqrt(2); batch mean
    f_s = torch.tensor([[-1.0, 2.0], [3.0, 0.0]])
    f_t = torch.tensor([[1.0, 2.0], [1.0, 1.0]])
    value = pefd_loss(f_s, f_t, [lambda x: x, lambda x: -x])
    assert value.item() == pytest.approx((1 - 1 / math.sqrt(2)) / 2)


def naive_pefd(f_s, f_t, weights, biases):
    total = 0.0
    for x, t in zip(arr(f_s), arr(f_t), strict=True):
        ens = sum(np.maximum(w @ x + b, 0) for w, b in zip(weights, biases, strict=True)) / len(weights)
        total += 1 - ens @ t / (np.linalg.norm(ens) * np.linalg.norm(t))
    return total / f_s.shape[0]


def test_pefd_method_matches_naive_formula_and_batch_mean():
    method = built("pefd", "resnet8", "resnet8x4")
    g = torch.Generator().manual_seed(0)
    f_s, f_t = torch.randn(3, 64, generator=g), torch.rand(3, 256, generator=g)
    s, t = extract_free(f_s), extract_free(f_t)
    expected = naive_pefd(f_s, f_t, [arr(p.weight) for p in method.projectors],
                          [arr(p.bias) for p in method.projectors])
    value = method(s, t, batch_of(3))["pefd"]
    assert value.item() == pytest.approx(expected, rel=1e-5)
    doubled = method(extract_free(torch.cat([f_s, f_s])), extract_free(torch.cat([f_t, f_t])), batch_of(6))["pefd"]
    assert doubled.item() == pytest.approx(value.item(), rel=1e-5)


def extract_free(pooled):
    """Features holding only a pooled vector (what PEFD reads)."""
    return Features(torch.zeros(pooled.shape[0], 10), [pooled])


@pytest.mark.parametrize("teacher_name,student_name", [("resnet32x4", "resnet8x4"), ("vgg13", "MobileNetV2"),
                                                       ("resnet32x4", "ShuffleV2")])
def test_pefd_projector_shapes(teacher_name, student_name):
    method = built("pefd", student_name, teacher_name)
    s = extract(frozen_model(student_name).eval(), images(2))
    t = extract(frozen_model(teacher_name).eval(), images(2))
    c_s, c_t = s.pooled.shape[1], t.pooled.shape[1]
    assert len(method.projectors) == 3
    assert all(tuple(p.weight.shape) == (c_t, c_s) and p.bias is not None for p in method.projectors)
    assert sum(p.numel() for p in method.parameters()) == 3 * (c_s * c_t + c_t)
    assert len(built("pefd", student_name, teacher_name, num_projectors=5).projectors) == 5


# -------------------------------------------------------------------------------------------- MGD
def naive_mgd(f_s, f_t, mask, generate, alpha):
    f_s, f_t, mask = arr(f_s), arr(f_t), arr(mask)
    n, c, h, w = f_s.shape
    masked = np.zeros_like(f_s)
    for b in range(n):
        for k in range(c):
            for i in range(h):
                for j in range(w):
                    masked[b, k, i, j] = f_s[b, k, i, j] * mask[b, k, 0, 0]
    generated = generate(masked)
    total = sum((generated[b, k, i, j] - f_t[b, k, i, j]) ** 2
                for b in range(n) for k in range(c) for i in range(h) for j in range(w))
    return alpha * total / n


def test_mgd_hand_value_without_masking():
    # lambda 0 keeps every channel; identity generator, alpha 1: sum of squares / N
    f_s = torch.tensor([[1.0, 2.0], [0.0, -1.0]]).view(2, 2, 1, 1)
    f_t = torch.tensor([[0.0, 0.0], [1.0, 1.0]]).view(2, 2, 1, 1)
    assert mgd_loss(f_s, f_t, lambda x: x, lambda_mgd=0.0, alpha_mgd=1.0).item() == pytest.approx((1 + 4 + 1 + 4) / 2)


def test_mgd_loss_matches_naive_formula_with_the_global_rng_mask():
    g = torch.Generator().manual_seed(0)
    f_s, f_t = torch.randn(3, 6, 4, 4, generator=g), torch.randn(3, 6, 4, 4, generator=g)
    torch.manual_seed(7)
    value = mgd_loss(f_s, f_t, lambda x: 2 * x + 1, lambda_mgd=0.5, alpha_mgd=0.3)
    torch.manual_seed(7)
    mask = (torch.rand(3, 6, 1, 1) >= 0.5).float()  # the same draw: M = 0 where U < lambda
    assert 0 < mask.sum() < mask.numel()
    assert value.item() == pytest.approx(naive_mgd(f_s, f_t, mask, lambda x: 2 * x + 1, 0.3), rel=1e-6)
    torch.manual_seed(7)
    assert mgd_loss(f_s, f_t, lambda x: 2 * x + 1, 0.5, 0.3).item() == value.item()  # reproducible from the seed


def test_mgd_loss_sums_over_maps_and_averages_over_the_batch():
    g = torch.Generator().manual_seed(1)
    f_s, f_t = torch.randn(2, 3, 2, 2, generator=g), torch.randn(2, 3, 2, 2, generator=g)
    value = mgd_loss(f_s, f_t, lambda x: x, 0.0, 1.0).item()
    assert value == pytest.approx(((f_s - f_t) ** 2).sum().item() / 2)
    assert mgd_loss(torch.cat([f_s, f_s]), torch.cat([f_t, f_t]), lambda x: x, 0.0, 1.0).item() == pytest.approx(value)


def test_mgd_loss_pools_the_larger_map_to_match():
    g = torch.Generator().manual_seed(2)
    f_s, f_t = torch.randn(2, 3, 2, 2, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    expected = ((arr(f_s) - block_mean(arr(f_t), 2)) ** 2).sum() / 2
    assert mgd_loss(f_s, f_t, lambda x: x, 0.0, 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_mgd_channel_mask_ratio_and_shape():
    torch.manual_seed(0)
    like = torch.zeros(400, 100, 3, 3, dtype=torch.float64)
    mask = channel_mask(like, 0.15)
    assert mask.shape == (400, 100, 1, 1) and mask.dtype == torch.float64
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert (mask == 0).double().mean().item() == pytest.approx(0.15, abs=0.01)
    assert channel_mask(like, 0.0).min().item() == 1.0


def test_mgd_method_matches_naive_formula():
    method = built("mgd", "resnet8", "resnet8x4", alpha_mgd=0.01)  # 64 -> 256 channels: align conv
    g = torch.Generator().manual_seed(3)
    f_s, f_t = torch.randn(2, 64, 8, 8, generator=g), torch.randn(2, 256, 8, 8, generator=g)
    s = extract_maps(f_s)
    t = extract_maps(f_t)
    torch.manual_seed(5)
    value = method(s, t, batch_of(2))["mgd"]
    torch.manual_seed(5)
    mask = (torch.rand(2, 256, 1, 1) >= 0.15).float()
    def generate(x):
        return arr(method.generator(torch.from_numpy(x).float()))

    with torch.no_grad():
        expected = naive_mgd(method.align(f_s), f_t, mask, generate, 0.01)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def extract_maps(last_map):
    """Features whose feat[-2] is ``last_map`` (what MGD reads)."""
    return Features(torch.zeros(last_map.shape[0], 10), [last_map, last_map.mean((2, 3))])


@pytest.mark.parametrize("teacher_name,student_name,c_s,c_t", [
    ("resnet32x4", "resnet8x4", 256, 256), ("vgg13", "MobileNetV2", 160, 512), ("resnet32x4", "ShuffleV2", 464, 256),
])
def test_mgd_module_shapes(teacher_name, student_name, c_s, c_t):
    method = built("mgd", student_name, teacher_name)
    if c_s == c_t:
        assert isinstance(method.align, nn.Identity)
    else:
        assert tuple(method.align.weight.shape) == (c_t, c_s, 1, 1) and method.align.bias is not None
    convs = [m for m in method.generator if isinstance(m, nn.Conv2d)]
    assert [tuple(c.weight.shape) for c in convs] == [(c_t, c_t, 3, 3)] * 2
    assert isinstance(method.generator[1], nn.ReLU)
    assert sum(p.numel() for p in method.generator.parameters()) == 2 * (9 * c_t**2 + c_t)


# -------------------------------------------------------------------------------------------- OFD
def test_ofd_margin_hand_values():
    def phi(z):
        return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    def cdf(z):
        return 0.5 * math.erfc(-z / math.sqrt(2))

    weight = torch.tensor([1.0, 1.0, -2.0, 0.5, 0.0, 0.0])
    bias = torch.tensor([0.0, 5.0, -1.0, 1.2, -0.7, 0.3])
    expected = [
        -2 / math.sqrt(2 * math.pi),                # m = 0: -s phi(0) / (1/2)
        -3.0,                                       # Phi(-5) < 0.001: -3s
        -1 - 2 * phi(-0.5) / cdf(0.5),              # |weight| = 2
        1.2 - 0.5 * phi(2.4) / cdf(-2.4),           # Phi(-2.4) = 0.0082 > 0.001
        -0.7, 0.0,                                  # zero weight: the limit min(m, 0)
    ]
    margin = ofd_margin(weight, bias)
    assert margin.dtype == torch.float32
    assert margin.tolist() == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_ofd_loss_hand_value():
    # one channel, margin -0.5, batch 1, one map (weight 1):
    # s=1,t=-1 (t <= mu, s > mu): (1.5)^2 | s=-1,t=-1: 0 (s <= mu) | s=0,t=-0.2 (mu < t <= 0, s > t): 0.04
    # s=-0.3,t=-0.2: 0 (s <= t) | s=1,t=2 (t > 0): 1 | s=3,t=2: 1
    s = torch.tensor([1.0, -1.0, 0.0, -0.3, 1.0, 3.0]).view(1, 1, 2, 3)
    t = torch.tensor([-1.0, -1.0, -0.2, -0.2, 2.0, 2.0]).view(1, 1, 2, 3)
    assert ofd_loss([s], [t], [torch.tensor([-0.5])]).item() == pytest.approx(2.25 + 0.04 + 1 + 1)


def naive_ofd(maps_s, maps_t, margins):
    n = len(maps_s)
    total = 0.0
    for i, (s, t, mu) in enumerate(zip(maps_s, maps_t, margins, strict=True)):
        s, t = match(arr(s), arr(t))  # here the teacher maps are the larger ones
        acc = 0.0
        for b, c, h, w in np.ndindex(*s.shape):
            sv, tv, m = s[b, c, h, w], t[b, c, h, w], float(mu[c])
            if tv > 0:
                acc += (sv - tv) ** 2
            elif tv > m and sv > tv:
                acc += (sv - tv) ** 2
            elif tv <= m and sv > m:
                acc += (sv - m) ** 2
        total += acc / s.shape[0] / 2 ** (n - i - 1)
    return total


def test_ofd_loss_matches_naive_formula_layer_weights_and_batch_mean():
    g = torch.Generator().manual_seed(0)
    maps_s = [torch.randn(3, 2, 4, 4, generator=g), torch.randn(3, 4, 2, 2, generator=g),
              torch.randn(3, 5, 2, 2, generator=g)]
    maps_t = [torch.randn(3, 2, 8, 8, generator=g), torch.randn(3, 4, 2, 2, generator=g),
              torch.randn(3, 5, 4, 4, generator=g)]
    margins = [-torch.rand(m.shape[1], generator=g) for m in maps_t]
    expected = naive_ofd(maps_s, maps_t, margins)
    assert ofd_loss(maps_s, maps_t, margins).item() == pytest.approx(expected, rel=1e-5)
    parts = [naive_ofd([s], [t], [m]) for s, t, m in zip(maps_s, maps_t, margins, strict=True)]
    assert expected == pytest.approx(parts[0] / 4 + parts[1] / 2 + parts[2])  # weights 1/4, 1/2, 1
    doubled = ofd_loss([torch.cat([m, m]) for m in maps_s], [torch.cat([m, m]) for m in maps_t], margins)
    assert doubled.item() == pytest.approx(expected, rel=1e-5)  # mean over the batch, sum over C, H, W
    # extra leading maps of one list are dropped: the deepest maps are paired
    assert ofd_loss([maps_s[0], *maps_s], maps_t, margins).item() == pytest.approx(expected, rel=1e-5)


def test_ofd_method_margins_connectors_and_naive_value():
    student, teacher = models("resnet8", "resnet8x4")
    method = create_method("ofd", student, teacher)
    bns = teacher.get_bn_before_relu()
    assert torch.equal(method.margins, torch.cat([ofd_margin(bn.weight, bn.bias) for bn in bns]))
    assert "margins" in dict(method.named_buffers())
    s, t = forward_pair(student, teacher, images(2), preact=True)
    connected = [c(f) for c, f in zip(method.connectors, s.stages, strict=True)]
    margins = torch.split(method.margins, [64, 128, 256])
    expected = naive_ofd(connected, t.stages, [m.tolist() for m in margins])
    assert method(s, t, batch_of(2))["ofd"].item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("teacher_name,student_name,channels", [
    ("resnet32x4", "resnet8x4", [(64, 64), (128, 128), (256, 256)]),
    ("vgg13", "MobileNetV2", [(12, 128), (16, 256), (48, 512), (160, 512)]),
    ("resnet32x4", "ShuffleV2", [(116, 64), (232, 128), (464, 256)]),
    ("vgg13", "resnet8x4", [(64, 256), (128, 512), (256, 512)]),  # 4 teacher stages, 3 student: the last 3
])
def test_ofd_connector_shapes(teacher_name, student_name, channels):
    method = built("ofd", student_name, teacher_name)
    for connector, (c_s, c_t) in zip(method.connectors, channels, strict=True):
        conv, bn = connector
        assert tuple(conv.weight.shape) == (c_t, c_s, 1, 1) and conv.bias is None
        assert bn.num_features == c_t and torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    assert method.margins.shape == (sum(c_t for _, c_t in channels),)


def test_ofd_connector_init_std():
    torch.manual_seed(0)
    conv = built("ofd", "resnet8x4", "resnet32x4").connectors[2][0]  # 256 -> 256
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.02)


@pytest.mark.parametrize("teacher_name", ["ShuffleV1", "ShuffleV2"])
def test_ofd_refuses_teachers_without_bn_before_relu(teacher_name):
    with pytest.raises(KdzooError, match="BatchNorm directly before each stage's last ReLU of the teacher.*shuffled"):
        built("ofd", "resnet8", teacher_name)


def test_ofd_refuses_bns_that_do_not_fit_the_stages():
    class Odd(nn.Module):
        def get_bn_before_relu(self):
            return [nn.BatchNorm2d(16), nn.BatchNorm2d(32)]

    s = extract(frozen_model("resnet8").eval(), images(2), preact=True)
    with pytest.raises(KdzooError, match=r"\[16, 32, 64\].*\[16, 32\]"):
        OFD(s, s, teacher_model=Odd())


def test_ofd_declarations():
    method = built("ofd", "resnet8", "resnet14")
    assert method.reads.student.preact and method.reads.teacher.preact and method.reads.bn_before_relu
    assert (method.default_weights.gamma, method.default_weights.alpha, method.default_weights.beta) == (1, 0, 1e-3)
    assert "teacher_model" not in dict(method.named_modules())  # the teacher is not a submodule


# --------------------------------------------------------------------------------------- ReviewKD
def naive_hcl(maps_s, maps_t):
    total = 0.0
    for a, b in zip(maps_s, maps_t, strict=True):
        a, b = arr(a), arr(b)
        h = a.shape[-1]
        loss, weight, norm = ((a - b) ** 2).mean(), 1.0, 1.0
        for size in (4, 2, 1):
            if size < h:
                weight /= 2
                loss += weight * ((block_mean(a, size) - block_mean(b, size)) ** 2).mean()
                norm += weight
        total += loss / norm
    return total


def test_reviewkd_loss_hand_value():
    # 2x2 maps: MSE (0 + 0 + 0 + 4) / 4 = 1; only the 1x1 pooling is smaller than 2: (1 - 1.5)^2 with
    # weight 1/2; divided by 1 + 1/2
    a = torch.ones(1, 1, 2, 2)
    b = torch.tensor([1.0, 1.0, 1.0, 3.0]).view(1, 1, 2, 2)
    assert reviewkd_loss([a], [b]).item() == pytest.approx((1 + 0.5 * 0.25) / 1.5)


def test_reviewkd_loss_matches_naive_formula_and_mean_reduction():
    g = torch.Generator().manual_seed(0)
    shapes = [(2, 3, 8, 8), (2, 4, 4, 4), (2, 5, 2, 2), (2, 6, 1, 1)]  # pool sizes (4,2,1), (2,1), (1,), none
    maps_s = [torch.randn(s, generator=g) for s in shapes]
    maps_t = [torch.randn(s, generator=g) for s in shapes]
    expected = naive_hcl(maps_s, maps_t)
    assert reviewkd_loss(maps_s, maps_t).item() == pytest.approx(expected, rel=1e-6)
    doubled = reviewkd_loss([torch.cat([m, m]) for m in maps_s], [torch.cat([m, m]) for m in maps_t])
    assert doubled.item() == pytest.approx(expected, rel=1e-6)
    # weights of an 8x8 map: (1, 1/2, 1/4, 1/8) / 1.875
    a, b = maps_s[0], maps_t[0]
    parts = [((arr(a) - arr(b)) ** 2).mean()] + [((block_mean(arr(a), k) - block_mean(arr(b), k)) ** 2).mean()
                                                 for k in (4, 2, 1)]
    assert reviewkd_loss([a], [b]).item() == pytest.approx(
        (parts[0] + parts[1] / 2 + parts[2] / 4 + parts[3] / 8) / 1.875, rel=1e-6)


def test_abf_fusion_by_hand():
    """1 channel, identity convs, BN in eval mode (identity up to eps), attention 1/2 and 1/2:
    output = (x + nearest-upsampled residual) / 2, then nearest-resized to the teacher's size."""
    abf = ABF(1, 1, 1, fuse=True).eval()
    with torch.no_grad():
        abf.conv1[0].weight.fill_(1.0)
        abf.conv2[0].weight.zero_()
        abf.conv2[0].weight[0, 0, 1, 1] = 1.0
        abf.att_conv[0].weight.zero_()
        abf.att_conv[0].bias.zero_()  # sigmoid(0) = 1/2
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    residual = torch.tensor([10.0]).view(1, 1, 1, 1)
    bn = 1 / math.sqrt(1 + 1e-5)
    out, res = abf(x, residual, torch.Size([4, 4]))
    fused = (np.array([[1.0, 2.0], [3.0, 4.0]]) * bn + 10) / 2
    expected = np.kron(fused, np.ones((2, 2)))
    assert res.shape == (1, 1, 4, 4) and np.allclose(arr(res)[0, 0], expected, rtol=1e-5)
    assert np.allclose(arr(out)[0, 0], expected * bn, rtol=1e-5)
    deepest = ABF(3, 2, 5, fuse=False)
    assert deepest.att_conv is None
    out, res = deepest(torch.randn(2, 3, 1, 1), None, torch.Size([1, 1]))
    assert out.shape == (2, 5, 1, 1) and res.shape == (2, 2, 1, 1)


@pytest.mark.parametrize("teacher_name,student_name,c_in,c_out,s_sizes,t_sizes,mid", [
    # mdistiller's resnet32x4 -> resnet8x4 config: IN/OUT_CHANNELS [64, 128, 256, 256], SHAPES [1, 8, 16, 32]
    ("resnet32x4", "resnet8x4", [64, 128, 256, 256], [64, 128, 256, 256], [32, 16, 8, 1], [32, 16, 8, 1], 256),
    # the original repo's mobile_half config with a vgg teacher: shapes [1,2,4,8,16], out_shapes [1,4,4,8,16]
    ("vgg13", "MobileNetV2", [12, 16, 48, 160, 1280], [128, 256, 512, 512, 512], [16, 8, 4, 2, 1],
     [16, 8, 4, 4, 1], 512),
    # the original repo's shufflev2 config: in [116, 232, 464, 1024], out [64, 128, 256, 256]
    ("resnet32x4", "ShuffleV2", [116, 232, 464, 1024], [64, 128, 256, 256], [16, 8, 4, 1], [32, 16, 8, 1], 512),
    ("resnet14", "vgg8", [256, 512, 512, 512], [16, 32, 64, 64], [8, 4, 4, 1], [32, 16, 8, 1], 512),  # deepest 4
])
def test_reviewkd_abf_shapes(teacher_name, student_name, c_in, c_out, s_sizes, t_sizes, mid):
    method = built("reviewkd", student_name, teacher_name)
    abfs = list(method.abfs)[::-1]  # stored deepest first
    assert [a.conv1[0].in_channels for a in abfs] == c_in
    assert [a.conv2[0].out_channels for a in abfs] == c_out
    assert all(a.conv1[0].out_channels == mid for a in abfs)
    assert [a.att_conv is not None for a in abfs] == [True] * (len(abfs) - 1) + [False]
    s = extract(frozen_model(student_name).eval(), images(2))
    t = extract(frozen_model(teacher_name).eval(), images(2), preact=True)
    n = len(abfs)
    outputs, residual = [], None
    # strict=False: the ABFs fuse the deepest len(abfs) levels (a 5-stage student gets 4 for a 4-stage teacher)
    for abf, x, y in zip(method.abfs, [*s.stages, s.pooled[:, :, None, None]][::-1],
                         [*t.stages, t.pooled[:, :, None, None]][::-1], strict=False):
        assert x.shape[-1] == s_sizes[n - 1 - len(outputs)]
        with torch.no_grad():
            out, residual = abf.eval()(x, residual, y.shape[-2:])
        outputs.append(out)
    assert [o.shape[-1] for o in outputs[::-1]] == t_sizes
    assert [o.shape[1] for o in outputs[::-1]] == c_out


def test_reviewkd_parameter_count_for_resnet32x4_resnet8x4():
    # by hand from the reference's ABF (mid 256): conv1 C_in*256 + BN 512; conv2 256*C_out*9 + BN 2*C_out;
    # attention 2*256*2 + 2 on every level but the deepest
    levels = [(64, 64, True), (128, 128, True), (256, 256, True), (256, 256, False)]
    expected = sum(c_in * 256 + 512 + 256 * c_out * 9 + 2 * c_out + (1026 if fuse else 0)
                   for c_in, c_out, fuse in levels)
    assert expected == 1_808_774
    assert sum(p.numel() for p in built("reviewkd", "resnet8x4", "resnet32x4").parameters()) == expected


def test_reviewkd_features_and_options():
    method = built("reviewkd", "resnet8", "resnet14")
    assert method.reads.student.preact is False and method.reads.teacher.preact is True and method.reads.student.taps
    assert built("reviewkd", "resnet8", "resnet14", student_preact=True).reads.student.preact is True
    assert (method.default_weights.gamma, method.default_weights.alpha, method.default_weights.beta) == (1, 0, 5)


def test_reviewkd_warmup_uses_the_one_based_epoch_and_is_checkpointed():
    method = built("reviewkd", "resnet8", "resnet14")
    assert method.warmup_factor.item() == pytest.approx(0.05)  # epoch 1's value before any epoch starts
    for epoch, factor in [(1, 0.05), (10, 0.5), (20, 1.0), (240, 1.0)]:
        method.on_epoch_start(epoch, 240)
        assert method.warmup_factor.item() == pytest.approx(factor)
    method.on_epoch_start(7, 240)
    state = Objective(method, method.default_weights).state_dict()
    assert state["method.warmup_factor"].item() == pytest.approx(0.35)
    fresh = Objective(built("reviewkd", "resnet8", "resnet14"), method.default_weights)
    fresh.load_state_dict(state)
    assert fresh.method.warmup_factor.item() == pytest.approx(0.35)
    no_warmup = built("reviewkd", "resnet8", "resnet14", warmup_epochs=0)
    assert no_warmup.warmup_factor.item() == 1.0


def test_reviewkd_term_is_the_warmed_up_hcl_of_the_fused_levels():
    student, teacher = models("resnet8", "resnet14")
    method = create_method("reviewkd", student, teacher, warmup_epochs=4).eval()
    s = extract(student.eval(), images(2))
    with torch.no_grad():
        t = extract(teacher, images(2), preact=True)
        outputs, residual = [], None
        for abf, x, y in zip(method.abfs, [*s.stages, s.pooled[:, :, None, None]][::-1],
                             [*t.stages, t.pooled[:, :, None, None]][::-1], strict=True):
            out, residual = abf(x, residual, y.shape[-2:])
            outputs.append(out)
        full = naive_hcl(outputs[::-1], [*t.stages, t.pooled[:, :, None, None]])
        method.on_epoch_start(1, 10)
        assert method(s, t, batch_of(2))["reviewkd"].item() == pytest.approx(0.25 * full, rel=1e-5)
        method.on_epoch_start(4, 10)
        assert method(s, t, batch_of(2))["reviewkd"].item() == pytest.approx(full, rel=1e-5)


# ------------------------------------------------------------ PEFD, MGD, OFD and ReviewKD on models
def method_params_with_grad(method):
    return [(n, p) for n, p in method.named_parameters() if p.requires_grad]


@pytest.mark.parametrize("name,pair",
                         [(n, ("resnet14", "resnet8")) for n in NAMES] + [("mgd", ("resnet14", "resnet8x4"))])
def test_gradients_reach_student_and_extra_modules_not_teacher(name, pair):
    student, teacher = models(pair[1], pair[0])
    method = create_method(name, student, teacher)
    method.on_epoch_start(20, 240)
    s, t = forward_pair(student, teacher, images(2), preact=method.reads.student.preact)
    method(s, t, batch_of(2))[name].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert student.conv1.weight.grad.abs().sum() > 0
    params = method_params_with_grad(method)
    assert params
    missing = [n for n, p in params if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing
    assert all(p.grad is None for p in teacher.parameters())


# Finite on batches of 2 and 3, two optimisation steps: test_method_contracts.py


# Bad options: test_method_options.py


@pytest.mark.parametrize("name", NAMES)
def test_default_weights_and_registration(name):
    method = built(name, "resnet8", "resnet14")
    expected = {"pefd": (1, 0, 25), "mgd": (1, 0, 1), "ofd": (1, 0, 1e-3), "reviewkd": (1, 0, 5)}[name]
    w = method.default_weights
    assert (w.gamma, w.alpha, w.beta) == expected
    assert method.paper and method.uses and method.reads.student.taps


def test_ofd_variant_tells_the_engine_whether_the_teacher_uses_batch_statistics():
    default = built("ofd", "resnet8", "resnet14")
    assert default.variant == "reference" and default.reads.teacher_batch_stats is True
    assert built("ofd", "resnet8", "resnet14", variant="eval").reads.teacher_batch_stats is False
    with pytest.raises(ConfigError, match="variant must be 'reference'.*or 'eval'.*got 'train'"):
        built("ofd", "resnet8", "resnet14", variant="train")
