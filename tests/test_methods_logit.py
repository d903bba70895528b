"""DKD, NKD and DIST: losses pinned to hand values and naive float64 loop formulations, DKD's
decomposition of KD, its warm-up and checkpointed factor, tiny temperatures where mdistiller's
formula overflows, gradients, short batches, packaged presets, option checks, optimisation steps."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import two_steps
from kdzoo.config import build_config, packaged_configs
from kdzoo.errors import ConfigError
from kdzoo.losses import (
    dist_inter_loss,
    dist_intra_loss,
    dist_loss,
    dkd_loss,
    kd_loss,
    nckd_loss,
    nkd_loss,
    nkd_non_target_loss,
    nkd_target_loss,
    tckd_loss,
)
from kdzoo.methods import LossWeights, Objective, create_method, method_class, method_options
from kdzoo.models import create_model, list_models
from kdzoo.models.features import Features

METHODS = ["dkd", "nkd", "dist"]
TERMS = {"dkd": {"dkd_tckd", "dkd_nckd"}, "nkd": {"nkd_target", "nkd_non_target"}, "dist": {"dist_inter", "dist_intra"}}


def randn(*shape, seed=0, scale=1.0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def arr(x):
    return x.detach().double().numpy()


def softmax(v):
    e = [math.exp(x - max(v)) for x in v]
    return [x / sum(e) for x in e]


def kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True) if a > 0)


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


# ---------------------------------------------------------------------------------------------- methods

@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    return create_model("resnet8", num_classes=10), create_model("resnet14", num_classes=10).eval()


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
def test_gradients_reach_the_student_not_the_teacher(pair, name):
    student, teacher = pair
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
def test_finite_for_short_batches(pair, name, batch):
    method = create_method(name, *pair)  # sized on a 2-sample batch
    zs = randn(batch, 10, seed=batch).requires_grad_()
    zt = randn(batch, 10, seed=batch + 10)
    terms = method(Features(zs, []), Features(zt, []), SimpleNamespace(labels=torch.arange(batch) % 10))
    loss = sum(terms.values())
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(zs.grad).all()


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("student_arch,teacher_arch", [("resnet8", "resnet14"), ("MobileNetV2", "vgg8")])
def test_two_optimisation_steps(name, student_arch, teacher_arch):
    torch.manual_seed(0)
    student, teacher = create_model(student_arch, num_classes=10), create_model(teacher_arch, num_classes=10).eval()
    method = create_method(name, student, teacher)
    method.on_epoch_start(1, 2)
    two_steps(method, student, teacher, {"ce", *TERMS[name]})


@pytest.mark.parametrize("name,options,match", [
    ("dkd", {"temperature": 0}, "temperature"),
    ("dkd", {"dkd_beta": -1}, "dkd_beta"),
    ("dkd", {"warmup_epochs": 2.5}, "warmup_epochs"),
    ("dkd", {"dkd_alpha": 0, "dkd_beta": 0}, "no loss term"),
    ("nkd", {"gamma": "high"}, "gamma"),
    ("nkd", {"temperature": -3}, "temperature"),
    ("dist", {"tau": 0}, "tau"),
    ("dist", {"beta_inter": 0, "gamma_intra": 0}, "no loss term"),
    ("dist", {"beta": 2}, "beta_inter"),  # unknown option: the message lists the known ones
])
def test_bad_options_are_refused(pair, name, options, match):
    with pytest.raises(ConfigError, match=match):
        create_method(name, *pair, **options)


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
