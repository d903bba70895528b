"""VID and KDSVD: losses pinned to naive numpy formulations, gradients, VID's regressor shapes as RepDistiller
builds them (kdzoo.methods.vid docstring), short batches, optimisation steps and refused pairs."""

import math

import numpy as np
import pytest
import torch

from conftest import batch_of, forward_pair, frozen_model, images, match, models
from kdzoo.errors import KdzooError
from kdzoo.losses import kdsvd_loss, vid_loss
from kdzoo.methods import create_method


# ---------------------------------------------------------------------------------------- VID
def naive_vid(maps_s, maps_t, weights, log_scales, eps):
    total = 0.0
    for f_s, f_t, (w1, w2, w3), alpha in zip(maps_s, maps_t, weights, log_scales, strict=True):
        f_s, f_t = match(f_s, f_t)
        var = [math.log(1.0 + math.exp(a)) + eps for a in alpha]
        terms = []
        for b in range(f_s.shape[0]):
            for h in range(f_s.shape[2]):
                for w in range(f_s.shape[3]):
                    mid = np.maximum(w2 @ np.maximum(w1 @ f_s[b, :, h, w], 0), 0)
                    mean = w3 @ mid
                    for c in range(f_t.shape[1]):
                        terms.append(0.5 * ((mean[c] - f_t[b, c, h, w]) ** 2 / var[c] + math.log(var[c])))
        total += sum(terms) / len(terms)
    return total


def test_vid_loss_matches_naive_formula():
    g = torch.Generator().manual_seed(0)
    # pair 1: student 4x4 pooled to the teacher's 2x2; pair 2: teacher 4x4 pooled to the student's 2x2
    maps_s = [torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 2, 2, 2, generator=g)]
    maps_t = [torch.randn(2, 5, 2, 2, generator=g), torch.randn(2, 4, 4, 4, generator=g)]
    weights, regressors, log_scales = [], [], []
    for c_s, c_t in [(3, 5), (2, 4)]:
        w = [torch.randn(c_t, c_s, generator=g), torch.randn(c_t, c_t, generator=g), torch.randn(c_t, c_t, generator=g)]
        weights.append([x.double().numpy() for x in w])
        regressors.append(lambda f, w=w: torch.einsum("oc,bchw->bohw", w[2], torch.relu(torch.einsum(
            "oc,bchw->bohw", w[1], torch.relu(torch.einsum("oc,bchw->bohw", w[0], f))))))
        log_scales.append(torch.randn(c_t, generator=g))
    value = vid_loss(maps_s, maps_t, regressors, log_scales, eps=1e-5)
    expected = naive_vid([m.double().numpy() for m in maps_s], [m.double().numpy() for m in maps_t], weights,
                         [a.tolist() for a in log_scales], 1e-5)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_vid_method_matches_naive_formula_and_initial_variance():
    student, teacher = models("resnet8", "resnet8x4")
    method = create_method("vid", student, teacher)
    var = torch.nn.functional.softplus(method.pairs[0].log_scale) + 1e-5
    assert torch.allclose(var, torch.full_like(var, 5.0))
    s, t = forward_pair(student, teacher, images(2))
    weights = [[p.regressor[i].weight[:, :, 0, 0].double().detach().numpy() for i in (0, 2, 4)] for p in method.pairs]
    expected = naive_vid([f.double().detach().numpy() for f in s.stages], [f.double().numpy() for f in t.stages],
                         weights, [p.log_scale.tolist() for p in method.pairs], 1e-5)
    assert method(s, t, batch_of(2))["vid"].item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("teacher_name,student_name,expected", [
    ("wrn_40_2", "wrn_40_1", [(16, 32), (32, 64), (64, 128)]),
    ("resnet32x4", "resnet8x4", [(64, 64), (128, 128), (256, 256)]),
    ("vgg13", "MobileNetV2", [(12, 128), (16, 256), (48, 512), (160, 512)]),
    ("resnet32x4", "ShuffleV2", [(116, 64), (232, 128), (464, 256)]),
])
def test_vid_regressor_shapes(teacher_name, student_name, expected):
    method = create_method("vid", frozen_model(student_name), frozen_model(teacher_name))
    for pair, (c_s, c_t) in zip(method.pairs, expected, strict=True):
        shapes = [tuple(pair.regressor[i].weight.shape) for i in (0, 2, 4)]
        assert shapes == [(c_t, c_s, 1, 1), (c_t, c_t, 1, 1), (c_t, c_t, 1, 1)]
        assert pair.log_scale.shape == (c_t,)


def test_vid_gradients_reach_student_and_regressors_not_teacher():
    student, teacher = models("resnet8", "resnet8x4")
    method = create_method("vid", student, teacher)
    s, t = forward_pair(student, teacher, images(2))
    method(s, t, batch_of(2))["vid"].backward()
    assert student.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in method.parameters())
    assert all(p.grad is None for p in teacher.parameters())


# -------------------------------------------------------------------------------------- KDSVD
def naive_kdsvd(maps_s, maps_t, signs_like, k=1):
    """numpy SVD; each teacher vector takes the sign of the matching torch vector in ``signs_like``
    (the sign is LAPACK's choice and the loss depends on it, as in the reference)."""
    batch = maps_s[0].shape[0]
    total, previous = 0.0, None
    for layer, (f_s, f_t) in enumerate(zip(maps_s, maps_t, strict=True)):
        v_s_all, v_t_all = [], []
        for b in range(batch):
            vecs = {}
            for name, f, n in (("s", f_s, k + 3), ("t", f_t, k)):
                x = f[b].reshape(f.shape[1], -1).T  # HW x C
                _, sv, vt = np.linalg.svd(x, full_matrices=False)
                v = vt.T[:, :n] / np.linalg.norm(vt.T[:, :n], axis=0)
                vecs[name] = (v, sv[:n] / np.linalg.norm(sv[:n]))
            (v_s, _), (v_t, s_t) = vecs["s"], vecs["t"]
            v_t = v_t * np.sign(np.sum(v_t * signs_like[layer][b], axis=0))
            aligned = np.zeros_like(v_t)
            for j in range(k):
                cos = v_s.T @ v_t[:, j]
                i = int(np.argmax(np.abs(cos)))
                aligned[:, j] = v_s[:, i] * np.sign(cos[i])
            v_s_all.append(aligned * s_t)
            v_t_all.append(v_t * s_t)
        if previous is not None:
            for b in range(batch):
                for vs, vsb, vt, vtb in [(v_s_all[b], previous[0][b], v_t_all[b], previous[1][b])]:
                    for i in range(vs.shape[0]):
                        for j in range(vsb.shape[0]):
                            for n in range(k):
                                ks = math.exp(-(vs[i, n] - vsb[j, n]) ** 2 / 8)
                                kt = math.exp(-(vt[i, n] - vtb[j, n]) ** 2 / 8)
                                total += (ks - kt) ** 2 / batch
        previous = v_s_all, v_t_all
    return total


def torch_teacher_vectors(maps_t, k=1):
    out = []
    for f in maps_t:
        _, _, vh = torch.linalg.svd(f.double().flatten(2).transpose(1, 2), full_matrices=False)
        out.append(vh.transpose(1, 2)[:, :, :k].numpy())
    return out


@pytest.mark.parametrize("k", [1, 2])
def test_kdsvd_loss_matches_naive_formula(k):
    g = torch.Generator().manual_seed(0)
    maps_s = [torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 5, 2, 2, generator=g),
              torch.randn(2, 4, 2, 2, generator=g)]
    maps_t = [torch.randn(2, 3, 8, 8, generator=g), torch.randn(2, 5, 4, 4, generator=g),
              torch.randn(2, 4, 2, 2, generator=g)]
    value = kdsvd_loss([m.double() for m in maps_s], [m.double() for m in maps_t], k=k)
    expected = naive_kdsvd([m.double().numpy() for m in maps_s], [m.double().numpy() for m in maps_t],
                           torch_teacher_vectors(maps_t, k), k)
    assert expected > 0
    assert value.item() == pytest.approx(expected, rel=1e-8)


def test_kdsvd_loss_is_zero_for_identical_maps():
    maps = [torch.randn(2, 4, 4, 4), torch.randn(2, 6, 2, 2)]
    assert kdsvd_loss(maps, maps).item() == pytest.approx(0.0, abs=1e-10)


def test_kdsvd_gradients_reach_student_not_teacher():
    student, teacher = models("resnet8", "resnet14")
    method = create_method("kdsvd", student, teacher)
    s, t = forward_pair(student, teacher, images(2))
    loss = method(s, t, batch_of(2))["kdsvd"]
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    grads = [p.grad for p in student.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(gr).all() for gr in grads)
    assert student.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    assert list(method.parameters()) == []


# ------------------------------------------------------------------------------ both methods
# Finite on batches of 2 and 3, two optimisation steps: test_method_contracts.py


@pytest.mark.parametrize("pair", [("wrn_40_2", "wrn_40_1"), ("vgg13", "MobileNetV2"), ("resnet32x4", "ShuffleV2")])
def test_kdsvd_refuses_unequal_channels(pair):
    with pytest.raises(KdzooError, match=r"KDSVD needs equal .*feat\[1\]"):
        create_method("kdsvd", frozen_model(pair[1]), frozen_model(pair[0]))


@pytest.mark.parametrize("pair", [("wrn_40_2", "wrn_16_2"), ("resnet32x4", "resnet8x4"), ("vgg13", "vgg8")])
def test_kdsvd_accepts_equal_channels(pair):
    """Equal widths at the tapped maps: KDSVD builds and gives a finite, positive loss on the pair's features."""
    student, teacher = models(pair[1], pair[0])
    method = create_method("kdsvd", student, teacher)
    s, t = forward_pair(student, teacher, images(2))
    loss = method(s, t, batch_of(2))["kdsvd"]
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0


def test_vid_refuses_bad_variance():
    student, teacher = models("resnet8", "resnet14")
    with pytest.raises(KdzooError, match="init_pred_var"):
        create_method("vid", student, teacher, init_pred_var=0.0)


def test_kdsvd_gradient_stays_finite_on_rank_deficient_maps():
    """Zero maps have repeated (zero) singular values, where the SVD backward divides by zero:
    the gradient reaching the network must still be finite."""
    torch.manual_seed(0)
    feats_s = [torch.zeros(2, 8, 4, 4, requires_grad=True), torch.randn(2, 8, 2, 2, requires_grad=True)]
    feats_t = [torch.randn(2, 8, 4, 4), torch.randn(2, 8, 2, 2)]
    loss = kdsvd_loss(feats_s, feats_t)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(f.grad).all() for f in feats_s)
