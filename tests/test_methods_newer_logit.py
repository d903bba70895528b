"""Logit standardization, CTKD, SDD and MLKD: losses pinned to hand values and naive loop
formulations, the LS invariances and the paper's toy example, CTKD's gradient reversal, curriculum
and temperature range, SDD's cells/weights and NKD variants, MLKD's levels and its reference/paper variants,
option checks, optimisation steps."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import forward_pair, images, two_steps
from kdzoo.errors import ConfigError
from kdzoo.commands.list import methods
from kdzoo.losses import (curriculum_lambda, kd_loss, mlkd_batch_loss, mlkd_class_loss, mlkd_instance_loss,
                          multiscale_cells, region_logits, reverse_gradient, sdd_loss, sdd_region_weights,
                          standardize_logits)
from kdzoo.methods import LossWeights, Objective, create_method
from kdzoo.models import create_model
from kdzoo.models.features import Features
from test_methods_logit import naive_nkd


def randn(*shape, seed=0, scale=1.0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def softmax(v):
    e = [math.exp(x - max(v)) for x in v]
    return [x / sum(e) for x in e]


def kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def pair(student="resnet8", teacher="resnet14"):
    torch.manual_seed(0)
    return create_model(student, num_classes=10), create_model(teacher, num_classes=10).eval().requires_grad_(False)


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
    """LS Fig. 2 (methods.md 17.2): with one shared T the wrong-arg-max student S1 looks closer to the teacher
    than S2 = teacher / 10; after z-scoring S2 matches exactly."""
    teacher, s1 = torch.tensor([[1.0, 4, 3, 1]]), torch.tensor([[2.0, 2.8, 3, 1]])
    s2 = teacher / 10
    assert float(kd_loss(s1, teacher, 1.0, 1.0)) == pytest.approx(0.243, abs=1e-3)
    assert float(kd_loss(s2, teacher, 1.0, 1.0)) == pytest.approx(0.427, abs=1e-3)
    assert float(kd_loss(s1, teacher, 4.0, 4.0)) / 16 == pytest.approx(0.0198, abs=1e-4)
    z = standardize_logits
    assert float(kd_loss(z(s1), z(teacher), 1.0, 1.0)) == pytest.approx(0.109, abs=1e-3)
    assert float(kd_loss(z(s2), z(teacher), 1.0, 1.0)) == pytest.approx(0.0, abs=1e-6)


def test_logit_std_settings_per_method():
    student, teacher = pair()
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
    student, teacher = pair()
    method = create_method("kd", student, teacher, logit_std=True)
    s, t = Features(randn(4, 10, seed=4), []), Features(randn(4, 10, seed=5, scale=5.0), [])
    batch = SimpleNamespace(labels=torch.tensor([0, 1, 2, 3]))
    terms = Objective(method, LossWeights(0.1, 9.0, 0.0), 2.0, 2.0)(s, t, batch)
    expected = 9.0 * kd_loss(standardize_logits(s.logits), standardize_logits(t.logits), 2.0, 2.0)
    assert torch.allclose(terms["kd"], expected)
    assert torch.allclose(terms["ce"], 0.1 * F.cross_entropy(s.logits, batch.labels))  # CE on raw logits


@pytest.mark.parametrize("name,terms", [("dkd", {"dkd_tckd", "dkd_nckd"}), ("nkd", {"nkd_target", "nkd_non_target"})])
def test_logit_methods_distil_standardized_logits(name, terms):
    student, teacher = pair()
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
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = reverse_gradient(x, -0.5)
    assert torch.equal(y, x)
    (y * torch.tensor([3.0, 4.0])).sum().backward()
    assert x.grad.tolist() == [-1.5, -2.0]


@pytest.mark.parametrize("mode", ["global", "instance"])
def test_ctkd_temperature_ascends_the_loss_through_the_reversal(mode):
    student, teacher = pair()
    method = create_method("ctkd", student, teacher, mode=mode)
    method.on_epoch_start(10, 10)  # full reversal, lambda = -1
    s, t = Features(randn(4, 10, seed=10, scale=3.0), []), Features(randn(4, 10, seed=11, scale=3.0), [])
    batch = SimpleNamespace(labels=torch.arange(4))
    params = [p for p in method.parameters()]
    loss = method(s, t, batch)["ctkd"]
    reversed_grads = torch.autograd.grad(loss, params)
    method.reversal = 1.0  # no reversal: plain gradient
    plain_grads = torch.autograd.grad(method(s, t, batch)["ctkd"], params)
    for r, p in zip(reversed_grads, plain_grads):
        assert torch.allclose(r, -p)
    assert any(g.abs().sum() > 0 for g in plain_grads)


@pytest.mark.parametrize("mode", ["global", "instance"])
def test_ctkd_temperature_starts_at_the_references_value_and_stays_in_range(mode):
    student, teacher = pair()
    method = create_method("ctkd", student, teacher, mode=mode)
    zs, zt = randn(4, 10, seed=12), randn(4, 10, seed=13)
    tau0 = 1 + 20 / (1 + math.exp(-1))
    assert method.temperature(zs, zt).detach().flatten().tolist() == pytest.approx([tau0] * (4 if mode == "instance" else 1), rel=1e-5)
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
    student, teacher = pair()
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
        create_method("ctkd", *pair(), **options)


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


@pytest.mark.parametrize("student,teacher,scales", [("resnet8", "resnet14", [1, 2]), ("MobileNetV2", "vgg8", [1, 2, 4])])
def test_sdd_default_scales_follow_the_family_rule(student, teacher, scales):
    assert create_method("sdd", *pair(student, teacher)).scales == scales


def test_sdd_global_cell_alone_is_plain_kd():
    student, teacher = pair()
    method = create_method("sdd", student, teacher, scales=[1])
    s, t = forward_pair(student, teacher, images(4), head_map=True)
    got = method(s, t, SimpleNamespace(labels=torch.arange(4)))["sdd_kd"]
    assert torch.allclose(got, kd_loss(s.logits, t.logits, 4.0, 4.0), atol=1e-6)


def test_sdd_trains_the_students_classifier_not_the_teachers():
    student, teacher = pair("vgg8", "resnet14")
    method = create_method("sdd", student, teacher)
    assert not list(method.parameters())  # the networks' classifiers are used, not copied
    s, t = forward_pair(student, teacher, images(4), head_map=True)
    method(s, t, SimpleNamespace(labels=torch.arange(4)))["sdd_kd"].backward()
    assert student.get_classifier().weight.grad.abs().sum() > 0
    assert teacher.get_classifier().weight.grad is None


@pytest.mark.parametrize("base,weights,warmup", [("kd", LossWeights(0.1, 0, 0.9), 0), ("dkd", LossWeights(1, 0, 1), 20),
                                                 ("nkd", LossWeights(1, 0, 1), 20)])
def test_sdd_bases_and_warmup(base, weights, warmup):
    method = create_method("sdd", *pair(), base=base)
    assert method.reference_weights() == weights and method.warmup_epochs == warmup
    method.on_epoch_start(5, 100)
    assert method.warmup_factor == (0.25 if warmup else 1.0)


@pytest.mark.parametrize("variant", ["reference", "paper"])
def test_sdd_nkd_variants_match_the_naive_nkd(variant):
    """Global cell only: SD-NKD is NKD at tau 4, gamma 8; the reference's non-target term runs over every class."""
    student, teacher = pair()
    method = create_method("sdd", student, teacher, scales=[1], base="nkd", nkd_variant=variant)
    assert create_method("sdd", student, teacher, base="nkd").nkd_variant == "reference"
    s, t = forward_pair(student, teacher, images(4), head_map=True)
    y = torch.tensor([0, 3, 5, 9])
    got = method(s, t, SimpleNamespace(labels=y))["sdd_nkd"]
    expected = naive_nkd(s.logits, t.logits, y, 4.0, 8.0, exclude_target=variant == "paper")
    assert got.item() == pytest.approx(method.warmup_factor * expected, rel=1e-5)


@pytest.mark.parametrize("options,message", [({"base": "crd"}, "base"), ({"scales": [2, 4]}, "including 1"),
                                              ({"scales": [1, 1]}, "distinct"),
                                              ({"nkd_variant": "fixed"}, "nkd_variant must be 'reference'.*'fixed'")])
def test_sdd_rejects_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        create_method("sdd", *pair(), **options)


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


def naive_kd(zs, zt, t):
    """T^2 * mean_n KL(teacher || student) at temperature t."""
    return t * t * np.mean([kl(softmax((b / t).tolist()), softmax((a / t).tolist())) for a, b in zip(zs, zt)])


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
    method = create_method("mlkd", *pair(), logit_std=logit_std)
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
    reference = create_method("mlkd", *pair(), temperatures=[2.0])
    # masked weak KD + the strong-view term at T = 2, which reads the weak view
    expected = [1.5 * kd, 1 / 256, 9 / 256]
    assert mlkd_terms(reference, weak_s, strong, weak_t, strong) == pytest.approx(expected, rel=1e-5)
    paper = create_method("mlkd", *pair(), temperatures=[2.0], variant="paper")
    assert mlkd_terms(paper, weak_s, strong, weak_t, strong) == pytest.approx([kd, 1 / 128, 9 / 128], rel=1e-5)


def test_mlkd_paper_over_reference_with_equal_views():
    """Both views alike, masks 1/2: the paper variant's instance term is (1 + 1) / (1/2 + 1) = 4/3 times the
    reference's, its batch and class terms (1 + 1) / (1/2) = 4 times."""
    weak_s, weak_t = randn(6, 10, seed=40, scale=2.0), randn(6, 10, seed=41, scale=2.0)
    reference = mlkd_terms(create_method("mlkd", *pair()), weak_s, weak_s, weak_t, weak_t)
    paper = mlkd_terms(create_method("mlkd", *pair(), variant="paper"), weak_s, weak_s, weak_t, weak_t)
    assert [p / r for p, r in zip(paper, reference)] == pytest.approx([4 / 3, 4, 4], rel=1e-5)


def test_mlkd_paper_variant_sums_the_levels_over_both_views():
    student, teacher = pair()
    method = create_method("mlkd", student, teacher, variant="paper")
    weak_s, strong_s, weak_t, strong_t = (randn(4, 10, seed=k) for k in range(22, 26))
    got = mlkd_terms(method, weak_s, strong_s, weak_t, strong_t)
    for value, fn in zip(got, (mlkd_instance_loss, mlkd_batch_loss, mlkd_class_loss)):
        assert value == pytest.approx(float(fn(weak_s, weak_t) + fn(strong_s, strong_t)), rel=1e-5)
    # The objective's cross-entropy is summed over the views (CE 0.1 per view).
    s, t = Features(torch.cat([weak_s, strong_s]), []), Features(torch.cat([weak_t, strong_t]), [])
    terms = Objective(method, method.reference_weights())(s, t, SimpleNamespace(labels=torch.arange(4)))
    ce = F.cross_entropy(weak_s, torch.arange(4)) + F.cross_entropy(strong_s, torch.arange(4))
    assert float(terms["ce"]) == pytest.approx(0.1 * float(ce), rel=1e-5)


def test_mlkd_rejects_bad_options_and_lists_its_variants():
    with pytest.raises(ConfigError, match="temperatures"):
        create_method("mlkd", *pair(), temperatures=[4, 0])
    with pytest.raises(ConfigError, match="variant must be 'reference'.*or 'paper'.*got 'code'"):
        create_method("mlkd", *pair(), variant="code")
    listed = methods().split("\nmlkd\n")[1].split("\nnkd\n")[0]
    assert "variant='reference'" in listed and "variant=reference" in listed and "| paper" in listed


# ---------------------------------------------------------------------------- optimisation steps

@pytest.mark.parametrize("name,options,terms", [
    ("ctkd", {}, {"ce", "ctkd"}), ("ctkd", {"mode": "instance"}, {"ce", "ctkd"}),
    ("sdd", {}, {"ce", "sdd_kd"}), ("sdd", {"base": "dkd"}, {"ce", "sdd_dkd"}), ("sdd", {"base": "nkd"}, {"ce", "sdd_nkd"}),
    ("mlkd", {}, {"ce", "mlkd_instance", "mlkd_batch", "mlkd_class"}),
])
@pytest.mark.parametrize("student,teacher", [("resnet8", "resnet14"), ("MobileNetV2", "vgg8")])
def test_two_optimisation_steps(name, options, terms, student, teacher):
    s, t = pair(student, teacher)
    two_steps(create_method(name, s, t, **options), s, t, terms)


def test_mlkd_warns_when_its_class_term_is_far_from_the_reference_scale():
    few_classes = create_method("mlkd", *pair())  # 10 classes, batch 64: the class term is ~100x CIFAR-100's
    assert any("100x" in note for note in few_classes.caveats(64, beta_given=False))
    assert few_classes.caveats(64, beta_given=True) == []
    cifar = create_method("mlkd", create_model("resnet8", num_classes=100), create_model("resnet14", num_classes=100))
    assert cifar.caveats(64, beta_given=False) == []
