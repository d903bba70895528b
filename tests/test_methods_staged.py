"""The init-stage methods AB, FT and FSP: losses pinned to naive formulations, init stages (modules,
lr, a few SGD steps reduce the init loss, the right parameters get gradients), main-stage terms,
modes, module shapes as RepDistiller builds them (its Connector, Paraphraser/Translator), short batches,
optimisation steps and refused pairs."""

from itertools import pairwise

import numpy as np
import pytest
import torch
from torch import nn

from conftest import batch_of, built, forward_pair, frozen_model, images, match, models
from kdzoo.distiller import run_networks
from kdzoo.errors import KdzooError
from kdzoo.losses import ab_loss, fsp_loss, ft_loss
from kdzoo.methods import InitStage, create_method, method_needs
from kdzoo.methods.connectors import ConvReg


def run_init_stage(method, student, teacher, lr=0.05, steps=4, n=4):
    """What the engine does in the init stage, on one fixed batch; returns the stage and the losses."""
    stage = method.init_stage(student, lr)
    opt = torch.optim.SGD(stage.parameters, lr=stage.lr or lr, momentum=0.9, weight_decay=5e-4)
    student.eval()
    for module in stage.modules:
        module.train()
    x, losses = images(n), []
    for _ in range(steps):
        s, t = run_networks(student if stage.needs_student else None, teacher, [x], stage.reads)
        loss = method.init_loss(s, t, batch_of(n))
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
        opt.step()
    return stage, losses


# ------------------------------------------------------------------------------------------ AB
def naive_ab(maps_s, maps_t, margin=1.0):
    total, n = 0.0, len(maps_s)
    for layer, (s, t) in enumerate(zip(maps_s, maps_t, strict=True)):
        acc = 0.0
        for sv, tv in zip(s.flatten().tolist(), t.flatten().tolist(), strict=True):
            if sv > -margin and tv <= 0:
                acc += (sv + margin) ** 2
            if sv <= margin and tv > 0:
                acc += (sv - margin) ** 2
        total += 2.0 ** (layer - n + 1) * acc / s.shape[0] * 3 / 1000
    return total


def test_ab_loss_hand_value():
    # one element per case, batch of 1, a single layer (weight 1), margin 1:
    # s=0.5,t=-1 -> (1.5)^2; s=-1,t=-1 -> 0 (s > -m fails); s=0.5,t=0 -> 1.5^2 (t<=0);
    # s=1,t=2 -> 0 ((s-m)^2 = 0); s=2,t=2 -> 0 (s<=m fails); s=-3,t=1 -> 16
    s = torch.tensor([0.5, -1.0, 0.5, 1.0, 2.0, -3.0]).view(1, 6, 1, 1)
    t = torch.tensor([-1.0, -1.0, 0.0, 2.0, 2.0, 1.0]).view(1, 6, 1, 1)
    assert ab_loss([s], [t]).item() == pytest.approx((2.25 + 2.25 + 16) * 3 / 1000)


def test_ab_loss_matches_naive_formula_with_layer_weights_and_batch_mean():
    g = torch.Generator().manual_seed(0)
    shapes = [(3, 2, 4, 4), (3, 4, 2, 2), (3, 5, 2, 2)]
    maps_s = [2 * torch.randn(s, generator=g) for s in shapes]
    maps_t = [torch.randn(s, generator=g) for s in shapes]
    expected = naive_ab(maps_s, maps_t, 0.5)
    assert ab_loss(maps_s, maps_t, margin=0.5).item() == pytest.approx(expected, rel=1e-5)
    # layer weights 1/4, 1/2, 1 for L = 3; the sum is divided by the batch size
    parts = [naive_ab([s], [t], 0.5) for s, t in zip(maps_s, maps_t, strict=True)]
    assert expected == pytest.approx(0.25 * parts[0] + 0.5 * parts[1] + parts[2])
    doubled = ab_loss([torch.cat([m, m]) for m in maps_s], [torch.cat([m, m]) for m in maps_t], margin=0.5)
    assert doubled.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("teacher,student,expected", [
    ("resnet32x4", "resnet8x4", [None, None, None]),
    ("wrn_40_2", "wrn_40_1", [("conv", 16, 32, 1), ("conv", 32, 64, 1), ("conv", 64, 128, 1)]),
    ("vgg13", "MobileNetV2",
     [("conv", 12, 128, 1), ("conv", 16, 256, 1), ("conv", 48, 512, 1), ("convT", 160, 512, 4)]),
    ("resnet32x4", "ShuffleV2", [("convT", 116, 64, 4), ("convT", 232, 128, 4), ("convT", 464, 256, 4)]),
])
def test_ab_connector_shapes(teacher, student, expected):
    method = built("ab", student, teacher)
    assert len(method.connectors) == len(expected)
    for connector, want in zip(method.connectors, expected, strict=True):
        if want is None:
            assert isinstance(connector, nn.Sequential) and len(connector) == 0
            continue
        kind, c_in, c_out, kernel = want
        assert isinstance(connector, ConvReg) and not connector.use_relu
        assert isinstance(connector.conv, nn.ConvTranspose2d if kind == "convT" else nn.Conv2d)
        assert connector.conv.in_channels == c_in and connector.conv.out_channels == c_out
        assert connector.conv.kernel_size == (kernel, kernel) and connector.bn.num_features == c_out


def test_ab_init_stage_trains_connectors_and_feature_modules_only():
    student, teacher = models("resnet8", "resnet8x4")
    method = create_method("ab", student, teacher)
    stage, losses = run_init_stage(method, student, teacher, lr=0.05)
    assert isinstance(stage, InitStage) and stage.epochs == 30 and stage.lr == 0.05 and stage.needs_student
    ids = {id(p) for p in stage.parameters}
    assert {id(p) for p in method.connectors.parameters()} <= ids
    assert {id(p) for p in student.get_feat_modules().parameters()} == ids - {id(p) for p in method.parameters()}
    assert id(student.fc.weight) not in ids
    assert losses[-1] < losses[0]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in method.parameters())
    assert student.conv1.weight.grad.abs().sum() > 0
    assert student.fc.weight.grad is None
    assert all(p.grad is None for p in teacher.parameters())


def test_ab_main_stage_default_is_empty_and_main_loss_keeps_the_term():
    student, teacher = models("resnet8", "resnet8x4")
    s, t = forward_pair(student, teacher, images(2), preact=True)
    default = create_method("ab", student, teacher)
    assert not default.reads.student.needs_taps and type(default).init_reads.student.preact is True
    assert method_needs("ab").student.preact  # the networks are checked and sized for the init stage
    assert default(s, t, batch_of(2)) == {}
    full = create_method("ab", student, teacher, main_loss=True, init_epochs=3)
    assert full.reads.student.preact and full.init_stage(student, 0.01).epochs == 3
    loss = full(s, t, batch_of(2))["ab"]
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert all(p.grad is not None for p in full.parameters())
    assert all(p.grad is None for p in teacher.parameters())


def test_ab_connectors_stay_in_eval_mode_in_the_main_stage():
    method = built("ab", "resnet8", "resnet8x4")
    method.train()
    assert method.training and not any(m.training for m in method.connectors.modules())
    method.connectors.train()  # what the engine's init stage does
    assert all(m.training for m in method.connectors.modules())


def test_ab_refuses_unequal_stage_counts():
    with pytest.raises(KdzooError, match="AB pairs the stage maps"):
        built("ab", "resnet8", "vgg8")


# ------------------------------------------------------------------------------------------ FT
def naive_ft(f_s, f_t, p1=2, p2=1):
    f_s, f_t = match(f_s, f_t)
    diffs = []
    for b in range(f_s.shape[0]):
        phis = []
        for f in (f_s[b], f_t[b]):
            m = np.array([[np.mean([f[c, h, w] ** p1 for c in range(f.shape[0])]) for w in range(f.shape[2])]
                          for h in range(f.shape[1])]).flatten()
            phis.append(m / np.sqrt(np.sum(m ** 2)))
        diffs.extend(phis[0] - phis[1])
    diffs = np.array(diffs)
    return np.mean(np.abs(diffs)) if p2 == 1 else np.mean(diffs ** p2)


@pytest.mark.parametrize("p2", [1, 2])
@pytest.mark.parametrize("s_size,t_size", [(4, 2), (2, 4), (2, 2)])
def test_ft_loss_matches_naive_formula(p2, s_size, t_size):
    g = torch.Generator().manual_seed(0)
    f_s, f_t = torch.randn(2, 3, s_size, s_size, generator=g), torch.randn(2, 5, t_size, t_size, generator=g)
    expected = naive_ft(f_s.double().numpy(), f_t.double().numpy(), 2, p2)
    assert ft_loss(f_s, f_t, p1=2, p2=p2).item() == pytest.approx(expected, rel=1e-5)


def conv_channels(seq):
    return [(m.in_channels, m.out_channels) for m in seq if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


@pytest.mark.parametrize("teacher,student,c_s,c_t,c_f", [
    ("resnet32x4", "resnet8x4", 256, 256, 128),
    ("wrn_40_2", "wrn_40_1", 64, 128, 64),
    ("vgg13", "MobileNetV2", 160, 512, 256),
    ("resnet32x4", "ShuffleV2", 464, 256, 128),
])
def test_ft_module_shapes(teacher, student, c_s, c_t, c_f):
    method = built("ft", student, teacher)
    enc, dec, tr = method.paraphraser.encoder, method.paraphraser.decoder, method.translator.encoder
    assert conv_channels(enc) == [(c_t, c_t), (c_t, c_f), (c_f, c_f)]
    assert conv_channels(dec) == [(c_f, c_f), (c_f, c_t), (c_t, c_t)]
    assert conv_channels(tr) == [(c_s, c_s), (c_s, c_f), (c_f, c_f)]
    # RepDistiller's Sequential layout: convs at 0, 3, 6; BN slots (empty for the Paraphraser) at 1, 4, 7
    assert all(isinstance(enc[i], nn.Sequential) and len(enc[i]) == 0 for i in (1, 4, 7))
    assert all(isinstance(tr[i], nn.BatchNorm2d) for i in (1, 4, 7))
    assert all(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.1 for m in (enc[2], dec[8], tr[5]))


@pytest.mark.parametrize("student,expected_lr",
                         [("resnet8", 0.01), ("wrn_16_1", 0.01), ("ShuffleV2", 0.05), ("vgg8", 0.05)])
def test_ft_init_lr_follows_the_student_family(student, expected_lr):
    method = built("ft", student, "resnet14")
    assert method.init_stage(frozen_model(student), 0.05).lr == expected_lr


def test_ft_init_stage_trains_the_paraphraser_without_the_student():
    student, teacher = models("resnet8", "resnet14")
    method = create_method("ft", student, teacher)
    assert not any(p.requires_grad for p in method.paraphraser.parameters())  # frozen when built
    main_params = {id(p) for p in method.parameters() if p.requires_grad}  # the engine's main optimiser
    assert main_params == {id(p) for p in method.translator.parameters()}
    stage, losses = run_init_stage(method, student, teacher, steps=5)  # init_loss gets None for the student
    assert stage.needs_student is False and stage.epochs == 30 and stage.lr == 0.01  # CIFAR ResNet student
    assert stage.modules == [method.paraphraser]
    assert losses[-1] < losses[0]
    assert all(p.grad is not None for p in method.paraphraser.parameters())
    assert all(p.grad is None for p in [*method.translator.parameters(), *student.parameters(), *teacher.parameters()])


def test_ft_main_stage_freezes_the_paraphraser():
    student, teacher = models("resnet8", "resnet8x4")
    method = create_method("ft", student, teacher)
    method.init_stage(student, 0.05)
    assert all(p.requires_grad for p in method.paraphraser.parameters())
    method.train()  # the engine's objective.train() at the start of each main epoch
    assert not method.paraphraser.training and method.translator.training
    assert not any(p.requires_grad for p in method.paraphraser.parameters())
    s, t = forward_pair(student, teacher, images(2))
    loss = method(s, t, batch_of(2))["ft"]
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert student.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in method.translator.parameters())
    assert all(p.grad is None for p in method.paraphraser.parameters())
    assert all(p.grad is None for p in teacher.parameters())


def test_ft_refuses_an_empty_factor():
    with pytest.raises(KdzooError, match="k >="):
        built("ft", "resnet8", "resnet14", k=0.01)


# ----------------------------------------------------------------------------------------- FSP
def naive_fsp(maps):
    grams = []
    for a, b in pairwise(maps):
        a, b = match(a, b)
        n, ca, h, w = a.shape
        g = np.zeros((n, b.shape[1], ca))
        for i in range(n):
            for j in range(b.shape[1]):
                for c in range(ca):
                    g[i, j, c] = sum(a[i, c, y, x] * b[i, j, y, x] for y in range(h) for x in range(w)) / (h * w)
        grams.append(g)
    return grams


def test_fsp_loss_matches_naive_formula():
    g = torch.Generator().manual_seed(0)
    shapes = [(2, 3, 4, 4), (2, 4, 2, 2), (2, 2, 4, 4)]  # pooled both ways between consecutive maps
    maps_s = [torch.randn(s, generator=g) for s in shapes]
    maps_t = [torch.randn(s, generator=g) for s in shapes]
    gs, gt = naive_fsp([m.double().numpy() for m in maps_s]), naive_fsp([m.double().numpy() for m in maps_t])
    expected = sum(np.mean((a - b) ** 2) for a, b in zip(gs, gt, strict=True))
    assert fsp_loss(maps_s, maps_t).item() == pytest.approx(expected, rel=1e-5)


def test_fsp_init_stage_trains_the_feature_modules():
    student, teacher = models("resnet8", "resnet14")
    method = create_method("fsp", student, teacher)
    stage, losses = run_init_stage(method, student, teacher, lr=0.05, steps=5)
    assert stage.epochs == 30 and stage.lr == 0.05 and stage.needs_student
    assert {id(p) for p in stage.parameters} == {id(p) for p in student.get_feat_modules().parameters()}
    assert losses[-1] < losses[0]
    assert student.conv1.weight.grad.abs().sum() > 0 and student.fc.weight.grad is None
    assert all(p.grad is None for p in teacher.parameters())


def test_fsp_main_stage_default_is_empty_and_main_loss_keeps_the_term():
    student, teacher = models("resnet8", "resnet14")
    s, t = forward_pair(student, teacher, images(2))
    default = create_method("fsp", student, teacher)
    assert not default.reads.student.needs_taps and default(s, t, batch_of(2)) == {}
    full = create_method("fsp", student, teacher, main_loss=True)
    assert full.reads.student.taps
    loss = full(s, t, batch_of(2))["fsp"]
    loss.backward()
    assert torch.isfinite(loss) and student.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


@pytest.mark.parametrize("teacher,student,match_text", [
    ("wrn_40_2", "wrn_40_1", r"feat\[1\] \(student 16, teacher 32 channels\)"),
    ("vgg13", "MobileNetV2", "FSP needs equal"),
    ("resnet32x4", "ShuffleV2", "FSP needs equal"),
    ("vgg8", "resnet8", "same number of stages"),
])
def test_fsp_refused_pairs(teacher, student, match_text):
    with pytest.raises(KdzooError, match=match_text):
        built("fsp", student, teacher)


@pytest.mark.parametrize("teacher,student", [("wrn_40_2", "wrn_16_2"), ("resnet32x4", "resnet8x4"), ("vgg13", "vgg8")])
def test_fsp_accepts_equal_channel_pairs(teacher, student):
    """Equal widths at every map: FSP builds, and its init loss compares one Gram matrix per consecutive pair of
    feat[:-1], finite and positive, with a gradient that reaches the student only."""
    s_net, t_net = models(student, teacher)
    method = create_method("fsp", s_net, t_net)
    s, t = forward_pair(s_net, t_net, images(2))
    loss = method.init_loss(s, t, batch_of(2))
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    loss.backward()
    assert next(s_net.parameters()).grad.abs().sum() > 0
    assert all(p.grad is None for p in t_net.parameters())


# ---------------------------------------------------------------------------------- all three
# Finite on batches of 2 and 3 (with the init-stage loss), two optimisation steps: test_method_contracts.py


def test_default_weights():
    for name, beta in [("ab", 1.0), ("ft", 200.0), ("fsp", 50.0)]:
        w = built(name, "resnet8", "resnet14").default_weights
        assert (w.gamma, w.alpha, w.beta) == (1.0, 0.0, beta)
