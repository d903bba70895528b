"""Logit distillation (DKD, NKD, DIST, CTKD, SDD, MLKD) and logit standardization: losses pinned to hand values
and naive float64 loop formulations; DKD's decomposition of KD, its warm-up and checkpointed factor, tiny
temperatures where mdistiller's formula overflows; the LS invariances and the paper's toy example; CTKD's gradient
reversal, curriculum and temperature range; SDD's cells/weights and NKD variants; MLKD's levels and its
reference/paper variants; gradients, short batches, packaged presets, option checks, optimisation steps.
(KD itself: test_kd_loss.py.)"""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import arr, forward_pair, images, kl, models, naive_kd, randn, softmax
from kdzoo.commands.list import methods
from kdzoo.config import build_config, packaged_configs
from kdzoo.errors import ConfigError
from kdzoo.losses import (
    curriculum_lambda,
    dist_inter_loss,
    dist_intra_loss,
    dist_loss,
    dkd_loss,
    kd_loss,
    mlkd_batch_loss,
    mlkd_class_loss,
    mlkd_instance_loss,
    multiscale_cells,
    nckd_loss,
    nkd_loss,
    nkd_non_target_loss,
    nkd_target_loss,
    region_logits,
    reverse_gradient,
    sdd_loss,
    sdd_region_weights,
    standardize_logits,
    tckd_loss,
)
from kdzoo.methods import LossWeights, Objective, create_method, method_class, method_options
from kdzoo.models import create_model, list_models
from kdzoo.models.features import Features

METHODS = ["dkd", "nkd", "dist"]
TERMS = {"dkd": {"dkd_tckd", "dkd_nckd"}, "nkd": {"nkd_target", "nkd_non_target"}, "dist": {"dist_inter", "dist_intra"}}


def logits(b=4, c=6, seed=0):
    return randn(b, c, seed=seed, scale=2.0), randn(b, c, seed=seed + 1, scale=2.0), torch.arange(b) % c


# ---------------------------------------------------------------------------------------------- DKD

def naive_dkd_parts(zs, zt, y, t):
    """Per-sample (TCKD, NCKD, KD, teacher p_g) with explicit loops in float64 (the paper's definitions)."""
    rows = []
    for s_row, t_row, g in zip(arr(zs), arr(zt), y.tolist(), strict=True):
        ps, pt = softmax([v / t for v in s_row]), softmax([v / t for v in t_row])
        bs, bt = [ps[g], 1 - ps[g]], [pt[g], 1 - pt[g]]
        other = [j for j in range(len(ps)) if j != g]
        hs = [ps[j] / sum(ps[k] for k in other) for j in other]
        ht = [pt[j] / sum(pt[k] for k in other) for j in other]
        rows.append((t * t * kl(bt, bs), t * t * kl(ht, hs), t * t * kl(pt, ps), pt[g]))
    return np.array(rows)


def mdistiller_dkd(zs, zt, y, t, alpha, beta):
    """mdistiller's formula: log of summed probabilities, non-targets by subtracting 1000 (float32)."""
    gt = F.one_hot(y, zs.shape[1]).float()
    ps, pt = F.softmax(zs / t, dim=1), F.softmax(zt / t, dim=1)
    bs = torch.stack([(ps * gt).sum(1), (ps * (1 - gt)).sum(1)], 1)
    bt = torch.stack([(pt * gt).sum(1), (pt * (1 - gt)).sum(1)], 1)
    tckd = F.kl_div(torch.log(bs), bt, reduction="sum") * t**2 / zs.shape[0]
    nckd = F.kl_div(F.log_softmax(zs / t - 1000.0 * gt, dim=1), F.softmax(zt / t - 1000.0 * gt, dim=1),
                    reduction="sum") * t**2 / zs.shape[0]
    return alpha * tckd + beta * nckd


def test_dkd_hand_value():
    # T = 2, target 0: teacher p = [1/2, 1/4, 1/4], student uniform; binary [1/2, 1/2] vs [1/3, 2/3],
    # non-target [1/2, 1/2] vs [1/2, 1/2] -> TCKD = 4 * 1/2 * ln(9/8), NCKD = 0.
    zs, zt, y = torch.zeros(1, 3), torch.tensor([[2 * math.log(2), 0.0, 0.0]]), torch.tensor([0])
    assert tckd_loss(zs, zt, y, 2.0).item() == pytest.approx(2 * math.log(9 / 8), rel=1e-6)
    assert nckd_loss(zs, zt, y, 2.0).item() == pytest.approx(0.0, abs=1e-7)
    assert kd_loss(zs, zt, 2.0, 2.0).item() == pytest.approx(2 * math.log(9 / 8), rel=1e-6)


@pytest.mark.parametrize("t", [1.0, 4.0])
def test_dkd_losses_match_naive_loops_and_mdistiller(t):
    zs, zt, y = logits(b=5, c=7)
    parts = naive_dkd_parts(zs, zt, y, t)
    assert tckd_loss(zs, zt, y, t).item() == pytest.approx(parts[:, 0].mean(), rel=1e-5)  # batch mean
    assert nckd_loss(zs, zt, y, t).item() == pytest.approx(parts[:, 1].mean(), rel=1e-5)
    value = dkd_loss(zs, zt, y, alpha=1.5, beta=8.0, temperature=t)
    assert value.item() == pytest.approx(1.5 * parts[:, 0].mean() + 8 * parts[:, 1].mean(), rel=1e-5)
    assert value.item() == pytest.approx(mdistiller_dkd(zs, zt, y, t, 1.5, 8.0).item(), rel=1e-5)


def test_dkd_parts_decompose_kd():
    """KD = TCKD + (1 - p^t_g) * NCKD per sample (the paper's Eq. 1), with the same T^2 factor."""
    zs, zt, y = logits(b=6, c=5, seed=3)
    weights = []
    for n in range(6):
        s, t, g = zs[n:n + 1], zt[n:n + 1], y[n:n + 1]
        p_g = F.softmax(t / 4.0, dim=1)[0, g].item()
        kd = kd_loss(s, t, 4.0, 4.0).item()
        assert kd == pytest.approx(tckd_loss(s, t, g).item() + (1 - p_g) * nckd_loss(s, t, g).item(), rel=1e-5)
        weights.append(1 - p_g)
    per_sample_nckd = naive_dkd_parts(zs, zt, y, 4.0)[:, 1]
    assert kd_loss(zs, zt).item() == pytest.approx(
        tckd_loss(zs, zt, y).item() + float(np.mean(np.array(weights) * per_sample_nckd)), rel=1e-5)
    # alpha = beta = 1 sums the two parts; it exceeds KD exactly by mean(p^t_g * NCKD)
    gap = float(np.mean((1 - np.array(weights)) * per_sample_nckd))
    assert dkd_loss(zs, zt, y, 1.0, 1.0).item() == pytest.approx(kd_loss(zs, zt).item() + gap, rel=1e-5)


def test_dkd_is_finite_where_mdistiller_overflows():
    # T = 0.5 and a student that is sure of a wrong class: p^s_target = exp(-120) underflows in float32
    zs = torch.tensor([[0.0, 60.0, 1.0, -3.0], [2.0, -1.0, 30.0, 0.0]], requires_grad=True)
    zt = torch.tensor([[8.0, 7.5, 1.0, 0.0], [1.0, 0.0, 9.0, 8.0]])
    y = torch.tensor([0, 3])
    assert not torch.isfinite(mdistiller_dkd(zs, zt, y, 0.5, 1.0, 8.0))
    value = dkd_loss(zs, zt, y, 1.0, 8.0, 0.5)
    parts = naive_dkd_parts(zs, zt, y, 0.5)  # float64: exp(-240) is representable
    assert value.item() == pytest.approx(parts[:, 0].mean() + 8 * parts[:, 1].mean(), rel=1e-5)
    value.backward()
    assert torch.isfinite(zs.grad).all() and zs.grad.abs().sum() > 0


def test_dkd_two_classes_is_kd():
    zs, zt, y = randn(4, 2, seed=1), randn(4, 2, seed=2), torch.tensor([0, 1, 1, 0])
    assert nckd_loss(zs, zt, y).item() == 0.0
    assert tckd_loss(zs, zt, y).item() == pytest.approx(kd_loss(zs, zt).item(), rel=1e-5)


# ---------------------------------------------------------------------------------------------- DKD warm-up

def dkd_method(**options):
    feats = Features(torch.zeros(2, 10), [])
    return method_class("dkd")(feats, feats, **options)


def test_dkd_warmup_factor_uses_the_one_based_epoch():
    method = dkd_method()
    assert method.warmup_factor.item() == pytest.approx(0.05)  # epoch 1's value before any epoch starts
    for epoch, factor in [(1, 0.05), (10, 0.5), (19, 0.95), (20, 1.0), (21, 1.0), (240, 1.0)]:
        method.on_epoch_start(epoch, 240)
        assert method.warmup_factor.item() == pytest.approx(factor)
    no_warmup = dkd_method(warmup_epochs=0)
    no_warmup.on_epoch_start(1, 240)
    assert no_warmup.warmup_factor.item() == 1.0


def test_dkd_terms_scale_with_the_warmup_factor():
    method = dkd_method(dkd_alpha=2.0, dkd_beta=3.0, temperature=2.0, warmup_epochs=4)
    zs, zt, y = logits(b=3, c=10)
    s, t, batch = Features(zs, []), Features(zt, []), SimpleNamespace(labels=y)
    method.on_epoch_start(1, 10)
    early = method(s, t, batch)
    method.on_epoch_start(4, 10)
    full = method(s, t, batch)
    assert set(full) == TERMS["dkd"]
    assert full["dkd_tckd"].item() == pytest.approx(2.0 * tckd_loss(zs, zt, y, 2.0).item(), rel=1e-6)
    assert full["dkd_nckd"].item() == pytest.approx(3.0 * nckd_loss(zs, zt, y, 2.0).item(), rel=1e-6)
    for name in full:
        assert early[name].item() == pytest.approx(0.25 * full[name].item(), rel=1e-6)
    assert set(dkd_method(dkd_alpha=0.0)(s, t, batch)) == {"dkd_nckd"}


def test_dkd_warmup_factor_is_checkpointed():
    method = dkd_method()
    method.on_epoch_start(7, 240)
    objective = Objective(method, method.default_weights)
    state = objective.state_dict()
    assert state["method.warmup_factor"].item() == pytest.approx(0.35)
    fresh = Objective(dkd_method(), method.default_weights)
    assert fresh.method.warmup_factor.item() == pytest.approx(0.05)
    fresh.load_state_dict(state)
    assert fresh.method.warmup_factor.item() == pytest.approx(0.35)


# ---------------------------------------------------------------------------------------------- NKD

def naive_nkd(zs, zt, y, tau, gamma, exclude_target=True):
    total = 0.0
    for s_row, t_row, g in zip(arr(zs), arr(zt), y.tolist(), strict=True):
        s1, t1 = softmax(list(s_row)), softmax(list(t_row))
        # the paper's non-target set is without the target; the buggy code's (SDD's) has every class
        other = [j for j in range(len(s_row)) if j != g or not exclude_target]
        hs = softmax([s_row[j] / tau for j in other])
        ht = softmax([t_row[j] / tau for j in other])
        total += -t1[g] * math.log(s1[g]) - gamma * tau**2 * sum(a * math.log(b) for a, b in zip(ht, hs, strict=True))
    return total / len(y)


def test_nkd_hand_value_excludes_the_target_class():
    # uniform student and teacher over 3 classes: -1/3 ln(1/3) + gamma tau^2 ln 2 (non-target: 2 classes);
    # the buggy all-classes mask would give gamma tau^2 ln 3 instead
    zs, zt, y = torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 2])
    assert nkd_target_loss(zs, zt, y).item() == pytest.approx(math.log(3) / 3, rel=1e-6)
    assert nkd_non_target_loss(zs, zt, y, 2.0).item() == pytest.approx(4 * math.log(2), rel=1e-6)
    assert nkd_non_target_loss(zs, zt, y, 2.0, exclude_target=False).item() == pytest.approx(4 * math.log(3), rel=1e-6)
    assert nkd_loss(zs, zt, y, 2.0, 1.5).item() == pytest.approx(math.log(3) / 3 + 1.5 * 4 * math.log(2), rel=1e-6)


@pytest.mark.parametrize("tau,gamma", [(3.0, 3.5), (1.0, 1.5)])
def test_nkd_matches_naive_loops(tau, gamma):
    zs, zt, y = logits(b=5, c=7, seed=4)
    assert nkd_loss(zs, zt, y, tau, gamma).item() == pytest.approx(naive_nkd(zs, zt, y, tau, gamma), rel=1e-5)
    method = method_class("nkd")(Features(zs, []), Features(zt, []), temperature=tau, gamma=gamma)
    terms = method(Features(zs, []), Features(zt, []), SimpleNamespace(labels=y))
    assert set(terms) == TERMS["nkd"]
    assert sum(terms.values()).item() == pytest.approx(naive_nkd(zs, zt, y, tau, gamma), rel=1e-5)


def test_nkd_target_weight_is_a_constant():
    zs, y = randn(3, 5, seed=1).requires_grad_(), torch.tensor([0, 1, 4])
    zt = randn(3, 5, seed=2).requires_grad_()
    nkd_target_loss(zs, zt, y).backward()
    assert zt.grad is None or zt.grad.abs().sum() == 0
    assert zs.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------- DIST

def naive_pearson(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    den = math.sqrt(sum((x - ma) ** 2 for x in a)) * math.sqrt(sum((y - mb) ** 2 for y in b))
    return num / (den + 1e-8)


def naive_dist(zs, zt, tau):
    ys = [softmax([v / tau for v in row]) for row in arr(zs)]
    yt = [softmax([v / tau for v in row]) for row in arr(zt)]
    b, c = len(ys), len(ys[0])
    inter = 1 - sum(naive_pearson(ys[i], yt[i]) for i in range(b)) / b
    intra = 1 - sum(naive_pearson([ys[i][j] for i in range(b)], [yt[i][j] for i in range(b)]) for j in range(c)) / c
    return tau**2 * inter, tau**2 * intra


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_dist_matches_naive_loops(tau):
    zs, zt, _ = logits(b=4, c=6, seed=5)
    inter, intra = naive_dist(zs, zt, tau)
    assert dist_inter_loss(zs, zt, tau).item() == pytest.approx(inter, rel=1e-5)
    assert dist_intra_loss(zs, zt, tau).item() == pytest.approx(intra, rel=1e-5)
    assert dist_loss(zs, zt, 0.5, 2.0, tau).item() == pytest.approx(0.5 * inter + 2.0 * intra, rel=1e-5)


def test_dist_hand_values():
    z = randn(3, 5, seed=7)
    assert dist_loss(z, z, tau=1.0).item() == pytest.approx(0.0, abs=1e-5)  # perfectly correlated
    # two samples, two classes: rows [p, 1-p] are perfectly (anti-)correlated; teacher = reversed student
    zs, zt = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    assert dist_inter_loss(zs, zt, 1.0).item() == pytest.approx(2.0, abs=1e-5)  # rho = -1 per sample
    assert dist_intra_loss(zs, zt, 2.0).item() == pytest.approx(4 * 2.0, abs=1e-4)  # tau^2 * (1 - (-1))


# ------------------------------------------------------------------------------ DKD, NKD and DIST on models

@pytest.fixture(scope="module")
def resnets():
    return models("resnet8", "resnet14")


def test_declarations():
    expected = {"dkd": (LossWeights(1.0, 0.0, 1.0), {"dkd_alpha": 1.0, "dkd_beta": 8.0, "temperature": 4.0,
                                                     "warmup_epochs": 20}),
                "nkd": (LossWeights(1.0, 0.0, 1.0), {"temperature": 3.0, "gamma": 3.5}),
                "dist": (LossWeights(1.0, 0.0, 2.0), {"beta_inter": 1.0, "gamma_intra": 1.0, "tau": 4.0})}
    for name, (weights, options) in expected.items():
        cls = method_class(name)
        assert cls.default_weights == weights and method_options(name) == options
        assert not cls.reads.student.needs_taps and cls.paper and "logits" in cls.uses


@pytest.mark.parametrize("name", METHODS)
def test_gradients_reach_the_student_not_the_teacher(resnets, name):
    student, teacher = resnets
    method = create_method(name, student, teacher)
    assert list(method.parameters()) == []
    x, y = randn(4, 3, 32, 32, seed=1), torch.tensor([0, 3, 3, 9])
    student.zero_grad(set_to_none=True)
    z = student(x)
    z.retain_grad()
    with torch.no_grad():
        zt = teacher(x)
    terms = method(Features(z, []), Features(zt, []), SimpleNamespace(labels=y, index=None))
    assert set(terms) == TERMS[name]
    sum(terms.values()).backward()
    assert z.grad.abs().sum() > 0
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)
    assert all(p.grad is None for p in teacher.parameters())


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("batch", [1, 2, 3])
def test_finite_for_short_batches(resnets, name, batch):
    method = create_method(name, *resnets)  # sized on a 2-sample batch
    zs = randn(batch, 10, seed=batch).requires_grad_()
    zt = randn(batch, 10, seed=batch + 10)
    terms = method(Features(zs, []), Features(zt, []), SimpleNamespace(labels=torch.arange(batch) % 10))
    loss = sum(terms.values())
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(zs.grad).all()


# Two optimisation steps: test_method_contracts.py


# Bad options: test_method_options.py


# ---------------------------------------------------------------------------------------------- presets

PRESETS = {("resnet56", "resnet20"): 2.0, ("resnet110", "resnet32"): 2.0, ("resnet32x4", "resnet8x4"): 8.0,
           ("vgg13", "vgg8"): 6.0, ("vgg13", "MobileNetV2"): 6.0, ("wrn_40_2", "wrn_16_2"): 6.0,
           ("wrn_40_2", "wrn_40_1"): 6.0, ("resnet32x4", "ShuffleV1"): 8.0, ("resnet32x4", "ShuffleV2"): 8.0,
           ("ResNet50", "MobileNetV2"): 8.0, ("wrn_40_2", "ShuffleV1"): 8.0}


def test_dkd_pair_presets():
    names = {n for n in packaged_configs() if n.startswith("cifar100/dkd_")}
    assert names == {f"cifar100/dkd_{t}_{s}" for t, s in PRESETS}
    for (teacher, student), beta in PRESETS.items():
        assert teacher in list_models() and student in list_models()
        cfg = build_config(f"cifar100/dkd_{teacher}_{student}", {"teacher": "t.pth"})
        assert (cfg.model, cfg.method, cfg.dataset) == (student, "dkd", "cifar100")
        assert (cfg.gamma, cfg.alpha, cfg.beta) == (1.0, 0.0, 1.0)
        assert cfg.method_options == {"dkd_alpha": 1.0, "dkd_beta": beta, "temperature": 4.0, "warmup_epochs": 20}
        assert set(cfg.method_options) <= set(method_options("dkd"))


# --------------------------------------------------------------------------- logit standardization

def test_standardize_hand_value_and_moments():
    z = standardize_logits(torch.tensor([[1.0, 4.0, 3.0, 1.0]]))
    # mean 9/4; unbiased variance ((-5/4)^2 * 2 + (7/4)^2 + (3/4)^2) / 3 = 6.75 / 3, so std 3/2
    std = 1.5
    expected = [(v - 2.25) / (std + 1e-7) for v in (1, 4, 3, 1)]
    assert z[0].tolist() == pytest.approx(expected, abs=1e-6)
    x = randn(5, 7, scale=3.0)
    z = standardize_logits(x)
    assert torch.allclose(z.mean(1), torch.zeros(5), atol=1e-6)
    assert torch.allclose(z.std(1), torch.ones(5), atol=1e-5)


def test_standardize_is_invariant_to_shift_and_positive_scale():
    x = randn(4, 10, seed=1)
    shifted_scaled = 7.5 * x + randn(4, 1, seed=2) * 10
    assert torch.allclose(standardize_logits(x), standardize_logits(shifted_scaled), atol=1e-5)
    y = randn(4, 10, seed=3)
    assert kd_loss(standardize_logits(3 * x + 1), standardize_logits(0.5 * y - 2), 2.0, 2.0) == pytest.approx(
        float(kd_loss(standardize_logits(x), standardize_logits(y), 2.0, 2.0)), rel=1e-5)


def test_the_papers_toy_example():
    """Sun et al., "Logit Standardization in Knowledge Distillation", CVPR 2024, Fig. 2: with one shared T the
    wrong-arg-max student S1 looks closer to the teacher than S2 = teacher / 10; after z-scoring S2 matches
    exactly."""
    teacher, s1 = torch.tensor([[1.0, 4, 3, 1]]), torch.tensor([[2.0, 2.8, 3, 1]])
    s2 = teacher / 10
    assert float(kd_loss(s1, teacher, 1.0, 1.0)) == pytest.approx(0.243, abs=1e-3)
    assert float(kd_loss(s2, teacher, 1.0, 1.0)) == pytest.approx(0.427, abs=1e-3)
    assert float(kd_loss(s1, teacher, 4.0, 4.0)) / 16 == pytest.approx(0.0198, abs=1e-4)
    z = standardize_logits
    assert float(kd_loss(z(s1), z(teacher), 1.0, 1.0)) == pytest.approx(0.109, abs=1e-3)
    assert float(kd_loss(z(s2), z(teacher), 1.0, 1.0)) == pytest.approx(0.0, abs=1e-6)


def test_logit_std_settings_per_method():
    student, teacher = models("resnet8", "resnet14", frozen_teacher=True)
    kd = create_method("kd", student, teacher, logit_std=True)
    assert kd.logit_std and kd.reference_weights() == LossWeights(0.1, 9.0, 0.0)
    dkd = create_method("dkd", student, teacher, logit_std=True)
    assert dkd.temperature == 2.0 and dkd.reference_weights() == LossWeights(1.0, 0.0, 9.0)
    assert create_method("dkd", student, teacher, logit_std=True, temperature=3.0).temperature == 3.0  # user wins
    assert create_method("ctkd", student, teacher, logit_std=True).t_start == 2.0
    assert create_method("mlkd", student, teacher, logit_std=True).reference_weights().beta == 9.0
    assert create_method("kd", student, teacher).reference_weights() == LossWeights(0.1, 0.9, 0.0)
    with pytest.raises(ConfigError, match="has none.*ctkd, dkd, kd, mlkd, nkd"):
        create_method("at", student, teacher, logit_std=True)


def test_objective_kd_term_uses_standardized_logits():
    student, teacher = models("resnet8", "resnet14", frozen_teacher=True)
    method = create_method("kd", student, teacher, logit_std=True)
    s, t = Features(randn(4, 10, seed=4), []), Features(randn(4, 10, seed=5, scale=5.0), [])
    batch = SimpleNamespace(labels=torch.tensor([0, 1, 2, 3]))
    terms = Objective(method, LossWeights(0.1, 9.0, 0.0), 2.0, 2.0)(s, t, batch)
    expected = 9.0 * kd_loss(standardize_logits(s.logits), standardize_logits(t.logits), 2.0, 2.0)
    assert torch.allclose(terms["kd"], expected)
    assert torch.allclose(terms["ce"], 0.1 * F.cross_entropy(s.logits, batch.labels))  # CE on raw logits


@pytest.mark.parametrize("name,terms", [("dkd", {"dkd_tckd", "dkd_nckd"}), ("nkd", {"nkd_target", "nkd_non_target"})])
def test_logit_methods_distil_standardized_logits(name, terms):
    student, teacher = models("resnet8", "resnet14", frozen_teacher=True)
    method = create_method(name, student, teacher, logit_std=True)
    s, t = Features(randn(4, 10, seed=6), []), Features(randn(4, 10, seed=7, scale=4.0), [])
    batch = SimpleNamespace(labels=torch.tensor([0, 1, 2, 3]))
    got = method(s, t, batch)
    assert set(got) == terms
    plain = create_method(name, student, teacher, **({"temperature": 2.0} if name == "dkd" else {}))
    z = plain(Features(standardize_logits(s.logits), []), Features(standardize_logits(t.logits), []), batch)
    for k in terms:
        assert torch.allclose(got[k], z[k])


# ------------------------------------------------------------------------------------------- CTKD

def test_kd_loss_with_per_sample_temperatures_matches_a_loop():
    zs, zt = randn(3, 5, seed=8), randn(3, 5, seed=9)
    tau = torch.tensor([1.5, 4.0, 9.0])
    expected = np.mean([t * t * kl(softmax((zt[i] / t).tolist()), softmax((zs[i] / t).tolist()))
                        for i, t in enumerate(tau.tolist())])
    assert float(kd_loss(zs, zt, tau, tau)) == pytest.approx(expected, rel=1e-5)
    assert kd_loss(zs, zt, tau, tau, reduction="none").shape == (3,)


def test_curriculum_is_the_references_cosine_from_0_to_minus_1():
    assert curriculum_lambda(0, 10) == 0.0
    assert curriculum_lambda(1, 10) == pytest.approx((math.cos(math.pi / 10) - 1) / 2)
    assert curriculum_lambda(5, 10) == pytest.approx(-0.5)
    assert curriculum_lambda(10, 10) == pytest.approx(-1.0) == curriculum_lambda(50, 10)
    assert curriculum_lambda(4, 10, "linear") == pytest.approx(-0.4)
    values = [curriculum_lambda(e, 10) for e in range(12)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = reverse_gradient(x, -0.5)
    assert torch.equal(y, x)
    (y * torch.tensor([3.0, 4.0])).sum().backward()
    assert x.grad.tolist() == [-1.5, -2.0]


@pytest.mark.parametrize("mode", ["global", "instance"])
def test_ctkd_temperature_ascends_the_loss_through_the_reversal(mode):
    student, teacher = models("resnet8", "resnet14", frozen_teacher=True)
    method = create_method("ctkd", student, teacher, mode=mode)
    method.on_epoch_start(10, 10)  # full reversal, lambda = -1
    s, t = Features(randn(4, 10, seed=10, scale=3.0), []), Features(randn(4, 10, seed=11, scale=3.0), [])
    batch = SimpleNamespace(labels=torch.arange(4))
    params = [p for p in method.parameters()]
    loss = method(s, t, batch)["ctkd"]
    reversed_grads = torch.autograd.grad(loss, params)
    method.reversal = 1.0  # no reversal: plain gradient
    plain_grads = torch.autograd.grad(method(s, t, batch)["ctkd"], params)
    for r, p in zip(reversed_grads, plain_grads, strict=True):
        assert torch.allclose(r, -p)
    assert any(g.abs().sum() > 0 for g in plain_grads)


@pytest.mark.parametrize("mode", ["global", "instance"])
def test_ctkd_temperature_starts_at_the_references_value_and_stays_in_range(mode):
    student, teacher = models("resnet8", "resnet14", frozen_teacher=True)
    method = create_method("ctkd", student, teacher, mode=mode)
    zs, zt = randn(4, 10, seed=12), randn(4, 10, seed=13)
    tau0 = 1 + 20 / (1 + math.exp(-1))
    assert method.temperature(zs, zt).detach().flatten().tolist() == pytest.approx(
        [tau0] * (4 if mode == "instance" else 1), rel=1e-5)
    with torch.no_grad():
        for p in method.parameters():
            p.fill_(1e4)
        high = method.temperature(zs, zt)
        for p in method.parameters():
            p.fill_(-1e4)
        low = method.temperature(zs, zt)
    assert torch.all(high <= 21.0) and torch.all(high > 20.9)
    assert torch.all(low >= 1.0) and torch.all(low < 1.1)


def test_ctkd_loss_is_kd_at_the_learned_temperature_and_logs_it():
    student, teacher = models("resnet8", "resnet14", frozen_teacher=True)
    method = create_method("ctkd", student, teacher)
    method.on_epoch_start(1, 5)
    s, t = Features(randn(4, 10, seed=14), []), Features(randn(4, 10, seed=15), [])
    tau = 1 + 20 / (1 + math.exp(-1))
    got = method(s, t, SimpleNamespace(labels=torch.arange(4)))["ctkd"]
    assert float(got.detach()) == pytest.approx(float(kd_loss(s.logits, t.logits, tau, tau)), rel=1e-5)
    stats = method.epoch_stats()
    assert stats["temperature"] == pytest.approx(tau, rel=1e-5)
    assert stats["reversal"] == pytest.approx(curriculum_lambda(1, 10))


@pytest.mark.parametrize("options,message", [({"mode": "sample"}, "mode"), ({"curve": "step"}, "curve"),
                                              ({"t_end": 0}, "t_end"), ({"curriculum_epochs": 0}, "curriculum_epochs")])
def test_ctkd_rejects_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        create_method("ctkd", *models("resnet8", "resnet14", frozen_teacher=True), **options)


# -------------------------------------------------------------------------------------------- SDD

def test_multiscale_cells_match_block_means():
    f = randn(2, 3, 8, 8, seed=16)
    cells = multiscale_cells(f, [1, 2, 4])
    a = f.numpy()
    expected = [a.mean(axis=(2, 3))]
    for s in (2, 4):
        k = 8 // s
        for i in range(s):
            for j in range(s):
                expected.append(a[:, :, i * k:(i + 1) * k, j * k:(j + 1) * k].mean(axis=(2, 3)))
    assert cells.shape == (2, 3, 21)
    assert np.allclose(cells.numpy(), np.stack(expected, axis=2), atol=1e-6)
    assert multiscale_cells(f, [1, 2]).shape == (2, 3, 5)


def naive_adaptive_mean(a, out):
    """PyTorch's adaptive average pooling written out: window i covers [floor(i*H/out), ceil((i+1)*H/out))."""
    h = a.shape[-1]
    edges = [(math.floor(i * h / out), math.ceil((i + 1) * h / out)) for i in range(out)]
    rows = [np.stack([a[..., r0:r1, c0:c1].mean(axis=(-2, -1)) for c0, c1 in edges], -1) for r0, r1 in edges]
    return np.stack(rows, -2)


@pytest.mark.parametrize("scales", [[1, 2], [1, 2, 4]])
def test_multiscale_cells_of_a_7x7_map_follow_the_reference_4x4_grid(scales):
    """SDD's SPP pools to 4x4 first and takes the 2x2 and 1x1 cells from that grid; on a 7x7 map (ImageNet's
    ResNets) that differs from pooling the map straight to 2x2 and 1x1."""
    f = randn(2, 3, 7, 7, seed=17)
    grid = naive_adaptive_mean(f.numpy(), 4)
    expected = np.concatenate([naive_adaptive_mean(grid, s).reshape(2, 3, s * s) for s in scales], axis=2)
    cells = multiscale_cells(f, scales)
    assert np.allclose(cells.numpy(), expected, atol=1e-6)
    direct = np.concatenate([naive_adaptive_mean(f.numpy(), s).reshape(2, 3, s * s) for s in scales], axis=2)
    assert not np.allclose(cells.numpy()[:, :, :5], direct[:, :, :5], atol=1e-3)


def test_region_weights_by_hand():
    # 2 samples, 3 regions, 3 classes; labels 0 and 1.
    logits = torch.tensor([[[5.0, 0, 0], [5.0, 0, 0], [0, 5.0, 0]],    # global right: right->1, wrong->2
                           [[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]]])   # global wrong: right->2, wrong->1
    weights = sdd_region_weights(logits, torch.tensor([0, 1]), 2.0)
    assert weights.tolist() == [[1.0, 1.0, 2.0], [1.0, 2.0, 1.0]]


def test_sdd_loss_matches_a_loop_over_regions():
    s, t = randn(3, 5, 4, seed=17), randn(3, 5, 4, seed=18, scale=2.0)
    y = torch.tensor([0, 1, 3])
    got = sdd_loss(s, t, y, lambda a, b, _: kd_loss(a, b, 4.0, 4.0, reduction="none"), 2.0)
    total = 0.0
    for n in range(3):
        right_global = int(t[n, 0].argmax()) == int(y[n])
        for m in range(5):
            w = 1.0 if (int(t[n, m].argmax()) == int(y[n])) == right_global else 2.0
            total += w * 16 * kl(softmax((t[n, m] / 4).tolist()), softmax((s[n, m] / 4).tolist()))
    assert float(got) == pytest.approx(total / 15, rel=1e-5)


@pytest.mark.parametrize("student,teacher,scales",
                         [("resnet8", "resnet14", [1, 2]), ("MobileNetV2", "vgg8", [1, 2, 4])])
def test_sdd_default_scales_follow_the_family_rule(student, teacher, scales):
    assert create_method("sdd", *models(student, teacher, frozen_teacher=True)).scales == scales


def test_sdd_global_cell_alone_is_plain_kd():
    student, teacher = models("resnet8", "resnet14", frozen_teacher=True)
    method = create_method("sdd", student, teacher, scales=[1])
    s, t = forward_pair(student, teacher, images(4))
    got = method(s, t, SimpleNamespace(labels=torch.arange(4)))["sdd_kd"]
    assert torch.allclose(got, kd_loss(s.logits, t.logits, 4.0, 4.0), atol=1e-6)


def test_sdd_trains_the_students_classifier_not_the_teachers():
    student, teacher = models("vgg8", "resnet14", frozen_teacher=True)
    method = create_method("sdd", student, teacher)
    assert not list(method.parameters())  # the networks' classifiers are used, not copied
    s, t = forward_pair(student, teacher, images(4))
    method(s, t, SimpleNamespace(labels=torch.arange(4)))["sdd_kd"].backward()
    assert student.get_classifier().weight.grad.abs().sum() > 0
    assert teacher.get_classifier().weight.grad is None


@pytest.mark.parametrize("base,weights,warmup", [("kd", LossWeights(0.1, 0, 0.9), 0), ("dkd", LossWeights(1, 0, 1), 20),
                                                 ("nkd", LossWeights(1, 0, 1), 20)])
def test_sdd_bases_and_warmup(base, weights, warmup):
    method = create_method("sdd", *models("resnet8", "resnet14", frozen_teacher=True), base=base)
    assert method.reference_weights() == weights and method.warmup_epochs == warmup
    method.on_epoch_start(5, 100)
    assert method.warmup_factor == (0.25 if warmup else 1.0)


@pytest.mark.parametrize("variant", ["reference", "paper"])
def test_sdd_nkd_variants_match_the_naive_nkd(variant):
    """Global cell only: SD-NKD is NKD at tau 4, gamma 8; the reference's non-target term runs over every class."""
    student, teacher = models("resnet8", "resnet14", frozen_teacher=True)
    method = create_method("sdd", student, teacher, scales=[1], base="nkd", nkd_variant=variant)
    assert create_method("sdd", student, teacher, base="nkd").nkd_variant == "reference"
    s, t = forward_pair(student, teacher, images(4))
    y = torch.tensor([0, 3, 5, 9])
    got = method(s, t, SimpleNamespace(labels=y))["sdd_nkd"]
    expected = naive_nkd(s.logits, t.logits, y, 4.0, 8.0, exclude_target=variant == "paper")
    assert got.item() == pytest.approx(method.warmup_factor * expected, rel=1e-5)


@pytest.mark.parametrize("options,message", [({"base": "crd"}, "base"), ({"scales": [2, 4]}, "including 1"),
                                              ({"scales": [1, 1]}, "distinct"),
                                              ({"nkd_variant": "fixed"}, "nkd_variant must be 'reference'.*'fixed'")])
def test_sdd_rejects_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        create_method("sdd", *models("resnet8", "resnet14", frozen_teacher=True), **options)


def test_region_logits_apply_the_classifier_per_cell():
    fc = torch.nn.Linear(3, 4)
    cells = randn(2, 3, 5, seed=19)
    out = region_logits(cells, fc)
    assert out.shape == (2, 5, 4)
    assert torch.allclose(out[1, 2], fc(cells[1, :, 2]))


# ------------------------------------------------------------------------------------------- MLKD

def naive_gram(zs, zt, temps, classes):
    total = 0.0
    for t in temps:
        ps = np.array([softmax((r / t).tolist()) for r in zs])
        pt = np.array([softmax((r / t).tolist()) for r in zt])
        if classes:
            ps, pt = ps.T, pt.T
        gs = [[sum(ps[i][k] * ps[j][k] for k in range(ps.shape[1])) for j in range(len(ps))] for i in range(len(ps))]
        gt = [[sum(pt[i][k] * pt[j][k] for k in range(pt.shape[1])) for j in range(len(pt))] for i in range(len(pt))]
        total += sum((gt[i][j] - gs[i][j]) ** 2 for i in range(len(ps)) for j in range(len(ps))) / len(ps)
    return total


def naive_mask(zt, classes):
    """The reference's mask as it acts: the fraction of confidences <= np.percentile(confidences, 50)."""
    probs = [softmax(row.tolist()) for row in zt]
    conf = [sum(p[c] for p in probs) for c in range(len(probs[0]))] if classes else [max(p) for p in probs]
    return sum(c <= np.percentile(conf, 50) for c in conf) / len(conf)


def naive_zscore(z):
    rows = []
    for r in z.tolist():
        mean = sum(r) / len(r)
        std = math.sqrt(sum((x - mean) ** 2 for x in r) / (len(r) - 1))
        rows.append([(x - mean) / (std + 1e-7) for x in r])
    return torch.tensor(rows, dtype=torch.float64)


def naive_mlkd_reference(ws, wt, ss, st, temps, zscore=lambda z: z):
    """KD_ours.py, term by term: masked weak-view KD, strong-view KD with the weak view at T = 2 and 6,
    masked weak-view batch and class terms; the strong view's batch and class terms are dropped."""
    m, mc = naive_mask(wt, False), naive_mask(wt, True)
    instance = sum(m * naive_kd(zscore(ws), zscore(wt), t)
                   + (naive_kd(zscore(ws), zscore(wt), t) if t in (2, 6) else naive_kd(zscore(ss), zscore(st), t))
                   for t in temps)
    return instance, m * naive_gram(ws, wt, temps, False), mc * naive_gram(ws, wt, temps, True)


def mlkd_terms(method, weak_s, strong_s, weak_t, strong_t):
    s, t = Features(torch.cat([weak_s, strong_s]), []), Features(torch.cat([weak_t, strong_t]), [])
    got = method(s, t, SimpleNamespace(labels=torch.arange(weak_s.shape[0]) % 10))
    return [float(got[k]) for k in ("mlkd_instance", "mlkd_batch", "mlkd_class")]


def test_mlkd_levels_match_loops():
    zs, zt = randn(4, 6, seed=20, scale=2.0), randn(4, 6, seed=21, scale=2.0)
    temps = [2.0, 3.0, 4.0, 5.0, 6.0]
    assert float(mlkd_instance_loss(zs, zt, temps)) == pytest.approx(sum(naive_kd(zs, zt, t) for t in temps), rel=1e-5)
    assert float(mlkd_batch_loss(zs, zt, temps)) == pytest.approx(naive_gram(zs, zt, temps, False), rel=1e-4)
    assert float(mlkd_class_loss(zs, zt, temps)) == pytest.approx(naive_gram(zs, zt, temps, True), rel=1e-4)
    assert float(mlkd_batch_loss(zt, zt, temps)) == 0.0


@pytest.mark.parametrize("batch", [6, 5])  # even and odd: masks of 1/2 and 3/5
@pytest.mark.parametrize("logit_std", [False, True])
def test_mlkd_reference_variant_matches_the_reference_loops(batch, logit_std):
    method = create_method("mlkd", *models("resnet8", "resnet14", frozen_teacher=True), logit_std=logit_std)
    assert method.variant == "reference"
    ws, ss, wt, st = (randn(batch, 10, seed=k, scale=2.0) for k in range(30, 34))
    expected = naive_mlkd_reference(ws, wt, ss, st, [2, 3, 4, 5, 6], naive_zscore if logit_std else (lambda z: z))
    assert naive_mask(wt, False) == (0.5 if batch == 6 else 0.6)
    assert mlkd_terms(method, ws, ss, wt, st) == pytest.approx(expected, rel=1e-4)


def test_mlkd_variants_by_hand():
    """B = C = 2, T = 2. Weak view: teacher [[2 ln 3, 0], [0, 0]], student zeros; strong view: the student
    equals the teacher (no strong-view loss). Teacher confidences (T = 1) 0.9, 0.5 and class masses 1.4,
    0.6: both masks 1/2. P_t = [[3/4, 1/4], [1/2, 1/2]], P_s = 1/2 everywhere: KD = (3 ln 3 - 4 ln 2) / 2
    (batch mean), batch term (2/16)^2 / 2 = 1/128, class term (25 + 1 + 1 + 9)/256 / 2 = 9/128."""
    weak_t = torch.tensor([[2 * math.log(3), 0.0], [0.0, 0.0]])
    weak_s, strong = torch.zeros(2, 2), torch.tensor([[1.0, -1.0], [0.5, 2.0]])
    kd = (3 * math.log(3) - 4 * math.log(2)) / 2
    reference = create_method("mlkd", *models("resnet8", "resnet14", frozen_teacher=True), temperatures=[2.0])
    # masked weak KD + the strong-view term at T = 2, which reads the weak view
    expected = [1.5 * kd, 1 / 256, 9 / 256]
    assert mlkd_terms(reference, weak_s, strong, weak_t, strong) == pytest.approx(expected, rel=1e-5)
    paper = create_method("mlkd", *models("resnet8", "resnet14", frozen_teacher=True), temperatures=[2.0],
                          variant="paper")
    assert mlkd_terms(paper, weak_s, strong, weak_t, strong) == pytest.approx([kd, 1 / 128, 9 / 128], rel=1e-5)


def test_mlkd_paper_over_reference_with_equal_views():
    """Both views alike, masks 1/2: the paper variant's instance term is (1 + 1) / (1/2 + 1) = 4/3 times the
    reference's, its batch and class terms (1 + 1) / (1/2) = 4 times."""
    weak_s, weak_t = randn(6, 10, seed=40, scale=2.0), randn(6, 10, seed=41, scale=2.0)
    pair = models("resnet8", "resnet14", frozen_teacher=True)
    reference = mlkd_terms(create_method("mlkd", *pair), weak_s, weak_s, weak_t, weak_t)
    paper = mlkd_terms(create_method("mlkd", *pair, variant="paper"), weak_s, weak_s, weak_t, weak_t)
    assert [p / r for p, r in zip(paper, reference, strict=True)] == pytest.approx([4 / 3, 4, 4], rel=1e-5)


def test_mlkd_paper_variant_sums_the_levels_over_both_views():
    student, teacher = models("resnet8", "resnet14", frozen_teacher=True)
    method = create_method("mlkd", student, teacher, variant="paper")
    weak_s, strong_s, weak_t, strong_t = (randn(4, 10, seed=k) for k in range(22, 26))
    got = mlkd_terms(method, weak_s, strong_s, weak_t, strong_t)
    for value, fn in zip(got, (mlkd_instance_loss, mlkd_batch_loss, mlkd_class_loss), strict=True):
        assert value == pytest.approx(float(fn(weak_s, weak_t) + fn(strong_s, strong_t)), rel=1e-5)
    # The objective's cross-entropy is summed over the views (CE 0.1 per view).
    s, t = Features(torch.cat([weak_s, strong_s]), []), Features(torch.cat([weak_t, strong_t]), [])
    terms = Objective(method, method.reference_weights())(s, t, SimpleNamespace(labels=torch.arange(4)))
    ce = F.cross_entropy(weak_s, torch.arange(4)) + F.cross_entropy(strong_s, torch.arange(4))
    assert float(terms["ce"]) == pytest.approx(0.1 * float(ce), rel=1e-5)


def test_mlkd_rejects_bad_options_and_lists_its_variants():
    with pytest.raises(ConfigError, match="temperatures"):
        create_method("mlkd", *models("resnet8", "resnet14", frozen_teacher=True), temperatures=[4, 0])
    with pytest.raises(ConfigError, match="variant must be 'reference'.*or 'paper'.*got 'code'"):
        create_method("mlkd", *models("resnet8", "resnet14", frozen_teacher=True), variant="code")
    listed = methods().split("\nmlkd\n")[1].split("\nnkd\n")[0]
    assert "variant='reference'" in listed and "variant=reference" in listed and "| paper" in listed


# ------------------------------------------------------------ CTKD, SDD and MLKD: optimisation steps

# Two optimisation steps with options: test_method_contracts.py


def test_mlkd_warns_when_its_class_term_is_far_from_the_reference_scale():
    # 10 classes, batch 64: the class term is ~100x CIFAR-100's
    few_classes = create_method("mlkd", *models("resnet8", "resnet14", frozen_teacher=True))
    assert any("100x" in note for note in few_classes.caveats(64, beta_given=False))
    assert few_classes.caveats(64, beta_given=True) == []
    cifar = create_method("mlkd", create_model("resnet8", num_classes=100), create_model("resnet14", num_classes=100))
    assert cifar.caveats(64, beta_given=False) == []
