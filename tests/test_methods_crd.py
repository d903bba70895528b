"""CRD: loss maths against naive loops, the class-aware sampler, memory/Z state, resume, models, engine."""

import math
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import TINY, docs_page_with
from kdzoo.engine.checkpoint import LAST
from kdzoo.engine.trainer import Trainer
from kdzoo.errors import ConfigError, KdzooError
from kdzoo.losses import crd_loss, crd_memory_update, crd_scores
from kdzoo.methods import create_method, method_class
from kdzoo.methods.crd_memory import ContrastMemory, bank_bytes
from kdzoo.methods.options import check_method_options
from kdzoo.models import create_model
from kdzoo.models.features import Features, extract

CRD = method_class("crd")
ROOT = Path(__file__).resolve().parents[1]


def pooled(b, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Features(torch.zeros(b, 10), [torch.randn(b, d, generator=g)])


def build(labels, d_s=6, d_t=5, **options):
    return CRD(pooled(2, d_s), pooled(2, d_t), train_labels=labels, **options)


def naive_eq18(p, n_data):
    b, k1 = len(p), len(p[0])
    m = k1 - 1
    c = m * (1.0 / n_data)
    total = 0.0
    for i in range(b):
        total += math.log(p[i][0] / (p[i][0] + c + 1e-7))
        for k in range(1, k1):
            total += math.log(c / (p[i][k] + c + 1e-7))
    return -total / b


def naive_embed(x, linear):
    w, bias = linear.weight.detach().double().numpy(), linear.bias.detach().double().numpy()
    e = x.double().numpy() @ w.T + bias
    return e / np.sqrt((e ** 2).sum(1, keepdims=True))


# -- loss maths ----------------------------------------------------------------------------------
def test_crd_loss_matches_eq18_loops_and_averages_over_the_batch():
    p = torch.rand(3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.2
    assert crd_loss(p, 20).item() == pytest.approx(naive_eq18(p.tolist(), 20), rel=1e-12)
    assert crd_loss(torch.cat([p, p]), 20).item() == pytest.approx(crd_loss(p, 20).item(), rel=1e-12)  # mean over B
    # hand value, B = 1, K = 1, N = 4: m P_n = 0.25
    hand = -(math.log(0.5 / (0.75 + 1e-7)) + math.log(0.25 / (0.25 + 0.25 + 1e-7)))
    assert crd_loss(torch.tensor([[0.5, 0.25]], dtype=torch.float64), 4).item() == pytest.approx(hand, rel=1e-12)
    assert crd_loss(p.float(), 20).dim() == 0


@pytest.mark.parametrize("n", [10, 30])  # (K+1)*D = 12: all N dot products (10), then row gathering (30)
def test_crd_scores_match_loops(n):
    g = torch.Generator().manual_seed(1)
    memory, anchors = torch.randn(n, 4, generator=g), torch.randn(2, 4, generator=g)
    idx = torch.randint(0, n, (2, 3), generator=g)
    got = crd_scores(anchors, memory, idx, 0.5)
    for i in range(2):
        for k in range(3):
            dot = sum(memory[idx[i, k], c].item() * anchors[i, c].item() for c in range(4))
            assert got[i, k].item() == pytest.approx(math.exp(dot / 0.5), rel=1e-5)


def test_crd_memory_update_follows_the_momentum_rule():
    g = torch.Generator().manual_seed(2)
    memory, z = torch.randn(6, 3, generator=g), torch.randn(2, 3, generator=g)
    before = memory.clone()
    crd_memory_update(memory, torch.tensor([4, 1]), z, 0.3)
    for row in range(6):
        if row in (4, 1):
            v = 0.3 * before[row].numpy() + 0.7 * z[[4, 1].index(row)].numpy()
            np.testing.assert_allclose(memory[row].numpy(), v / np.linalg.norm(v), rtol=1e-6)
        else:
            assert torch.equal(memory[row], before[row])


def test_crd_forward_matches_a_naive_computation_and_sets_z_once():
    labels = torch.arange(40) % 4
    method = build(labels, nce_k=8)
    s, t = pooled(3, 6, seed=3), pooled(3, 5, seed=4)
    batch = SimpleNamespace(index=torch.tensor([5, 17, 30]), labels=labels[[5, 17, 30]])
    assert method.memory.z.tolist() == [-1.0, -1.0]
    torch.manual_seed(9)
    idx = method.sampler(batch.index)
    mem_s, mem_t = method.memory.memory_s.double().numpy().copy(), method.memory.memory_t.double().numpy().copy()
    torch.manual_seed(9)
    loss = method(s, t, batch)["crd"]

    zs, zt = naive_embed(s.pooled, method.embed_s.linear), naive_embed(t.pooled, method.embed_t.linear)
    e_s = np.exp(np.einsum("bkd,bd->bk", mem_t[idx.numpy()], zs) / 0.07)  # student anchor, teacher memory
    e_t = np.exp(np.einsum("bkd,bd->bk", mem_s[idx.numpy()], zt) / 0.07)
    z_s, z_t = e_s.mean() * 40, e_t.mean() * 40
    expected = naive_eq18((e_s / z_s).tolist(), 40) + naive_eq18((e_t / z_t).tolist(), 40)
    assert loss.item() == pytest.approx(expected, rel=1e-4)
    np.testing.assert_allclose(method.memory.z.numpy(), [z_s, z_t], rtol=1e-4)

    z_after_first = method.memory.z.clone()
    method(pooled(3, 6, seed=5), pooled(3, 5, seed=6), batch)
    assert torch.equal(method.memory.z, z_after_first)  # fixed after the first forward


def test_method_updates_only_the_batch_rows_of_both_banks():
    labels = torch.arange(30) % 3
    method = build(labels, nce_k=4, nce_m=0.5)
    s, t = pooled(2, 6, seed=1), pooled(2, 5, seed=2)
    index = torch.tensor([3, 11])
    old_s, old_t = method.memory.memory_s.clone(), method.memory.memory_t.clone()
    method(s, t, SimpleNamespace(index=index, labels=labels[index]))
    for old, new, z in ((old_s, method.memory.memory_s, naive_embed(s.pooled, method.embed_s.linear)),
                        (old_t, method.memory.memory_t, naive_embed(t.pooled, method.embed_t.linear))):
        v = 0.5 * old[index].double().numpy() + 0.5 * z
        np.testing.assert_allclose(new[index].numpy(), v / np.linalg.norm(v, axis=1, keepdims=True), atol=1e-6)
        rest = torch.ones(30, dtype=torch.bool)
        rest[index] = False
        assert torch.equal(new[rest], old[rest])


# -- sampler ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("replacement", [False, True])
def test_exact_mode_positive_is_the_sample_and_negatives_are_other_classes(replacement):
    labels = torch.randperm(2000, generator=torch.Generator().manual_seed(0)) % 10
    method = build(labels, nce_k=500, replacement=replacement)
    index = torch.randint(0, 2000, (64,))
    idx = method.sampler(index)
    assert idx.shape == (64, 501)
    assert torch.equal(idx[:, 0], index)
    assert not (labels[idx[:, 1:]] == labels[index][:, None]).any()
    if not replacement:
        assert all(len(set(row.tolist())) == 500 for row in idx[:, 1:])


def test_relax_mode_positive_is_a_random_sample_of_the_class():
    labels = torch.randperm(300, generator=torch.Generator().manual_seed(0)) % 3
    method = build(labels, nce_k=50, mode="relax")
    index = torch.randint(0, 300, (256,))
    idx = method.sampler(index)
    assert torch.equal(labels[idx[:, 0]], labels[index])
    assert (idx[:, 0] != index).float().mean() > 0.9
    assert not (labels[idx[:, 1:]] == labels[index][:, None]).any()
    assert len(set(idx[:, 0].tolist())) > 150  # spread over the classes, not a few favourites


def test_pools_smaller_than_k_are_drawn_with_replacement():
    labels = torch.cat([torch.zeros(80), torch.arange(20) % 4 + 1]).long()[torch.randperm(100)]
    method = build(labels, nce_k=30)  # class 0: pool 20 < 30 (with replacement); others: pool 95
    index = torch.arange(100)
    idx = method.sampler(index)
    assert not (labels[idx[:, 1:]] == labels[index][:, None]).any()
    for row, y in zip(idx[:, 1:], labels, strict=True):
        assert (len(set(row.tolist())) == 30) == (y != 0)  # distinct exactly where the pool allows
    many = build(labels, nce_k=500).sampler(index)  # K > N: every row with replacement
    assert not (labels[many[:, 1:]] == labels[index][:, None]).any()


@pytest.mark.parametrize("replacement", [False, True])
def test_negatives_are_uniform_over_the_other_classes(replacement):
    labels = torch.randperm(30, generator=torch.Generator().manual_seed(0)) % 3
    method = build(labels, nce_k=5, replacement=replacement)
    index = torch.full((4000,), 7)
    torch.manual_seed(0)
    drawn = method.sampler(index)[:, 1:].flatten()
    counts = torch.bincount(drawn, minlength=30)
    other = labels != labels[7]
    assert (counts[~other] == 0).all()
    expected = drawn.numel() / int(other.sum())
    assert ((counts[other] - expected).abs() < 0.15 * expected).all()  # 1000 per index, sd < 32


# -- state and resume -----------------------------------------------------------------------------
def test_state_dict_round_trip_continues_identically():
    labels = torch.arange(60) % 5
    torch.manual_seed(0)
    a = build(labels, nce_k=16)
    opt = torch.optim.SGD(a.parameters(), lr=0.1)
    batches = [SimpleNamespace(index=torch.randperm(60)[:4]) for _ in range(6)]

    def step(method, optimizer, i):
        loss = method(pooled(4, 6, seed=i), pooled(4, 5, seed=100 + i), batches[i])["crd"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    for i in range(3):
        step(a, opt, i)
    state = {k: v.clone() for k, v in a.state_dict().items()}
    assert {"memory.memory_s", "memory.memory_t", "memory.z"} <= set(state)
    assert not any(k.startswith("sampler.") for k in state)  # rebuilt from train_labels
    torch.manual_seed(123)
    b = build(labels, nce_k=16)
    b.load_state_dict(state)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1)
    opt_b.load_state_dict(opt.state_dict())
    rng = torch.get_rng_state()
    losses_a = [step(a, opt, i) for i in range(3, 6)]
    torch.set_rng_state(rng)
    losses_b = [step(b, opt_b, i) for i in range(3, 6)]
    assert losses_a == losses_b
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


def test_engine_resume_matches_an_uninterrupted_run(cli, tiny_teacher, tmp_path, monkeypatch):
    args = ["distill", "--teacher", tiny_teacher, "--student", "resnet8", "--method", "crd", "--method-opt",
            "nce_k=64", "--alpha", "1", *TINY, "--epochs", "2", "--no-eval-teacher", "--deterministic",
            "--output-dir", tmp_path]
    code, _, err = cli(*args, "--name", "straight")
    assert code == 0, err
    assert "train_crd" in (tmp_path / "straight" / "metrics.csv").read_text()

    save = Trainer.save

    def save_then_die(self, top1, improved):
        save(self, top1, improved)
        raise RuntimeError("killed after epoch 1")

    monkeypatch.setattr(Trainer, "save", save_then_die)
    with pytest.raises(RuntimeError, match="killed"):
        cli(*args, "--name", "killed")
    monkeypatch.setattr(Trainer, "save", save)
    code, _, err = cli("distill", "--resume", tmp_path / "killed")
    assert code == 0, err
    a = torch.load(tmp_path / "straight" / LAST, weights_only=True)
    b = torch.load(tmp_path / "killed" / LAST, weights_only=True)
    for part in ("model", "objective"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), (part, key)
    assert (a["objective"]["method.memory.z"] > 0).all()


# -- with real models ------------------------------------------------------------------------------
def small_pair(student="resnet8", teacher="resnet14", n=50):
    torch.manual_seed(0)
    s, t = create_model(student, num_classes=10), create_model(teacher, num_classes=10)
    method = create_method("crd", s, t, train_labels=torch.arange(n) % 10, nce_k=32)
    return s, t, method


def images_and_batch(b, n=50, seed=0):
    """``b`` random images and their batch: ``b`` distinct dataset indices of an ``n``-sample set, labels index % 10
    (conftest's :func:`batch_of` gives the batch alone, with indices 0..b-1)."""
    g = torch.Generator().manual_seed(seed)
    index = torch.randperm(n, generator=g)[:b]
    return torch.randn(b, 3, 32, 32, generator=g), SimpleNamespace(index=index, labels=index % 10)


def test_gradients_reach_student_and_both_embeddings_never_the_teacher():
    s, t, method = small_pair()
    x, batch = images_and_batch(4)
    with torch.no_grad():
        ft = extract(t, x)
    method(extract(s, x), ft, batch)["crd"].backward()
    backbone = [p for name, p in s.named_parameters() if not name.startswith("fc.")]  # CRD does not use logits
    assert all(p.grad is not None for p in backbone)
    assert s.conv1.weight.grad.abs().sum() > 0
    for embed in (method.embed_s, method.embed_t):  # the teacher-anchor term trains embed_t
        assert embed.linear.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in t.parameters())


def test_loss_is_finite_for_batch_2_and_a_short_last_batch_of_3():
    s, t, method = small_pair()
    for b in (2, 3):
        x, batch = images_and_batch(b, seed=b)
        with torch.no_grad():
            ft = extract(t, x)
        assert torch.isfinite(method(extract(s, x), ft, batch)["crd"])


@pytest.mark.parametrize("teacher,student,d_s,d_t", [
    ("resnet32x4", "resnet8x4", 256, 256), ("resnet32x4", "ShuffleV2", 1024, 256), ("vgg13", "MobileNetV2", 1280, 512),
])
def test_embedding_shapes_match_repdistiller(teacher, student, d_s, d_t):
    method = create_method("crd", create_model(student), create_model(teacher), train_labels=torch.arange(100))
    assert tuple(method.embed_s.linear.weight.shape) == (128, d_s)
    assert tuple(method.embed_t.linear.weight.shape) == (128, d_t)
    assert method.memory.memory_s.shape == method.memory.memory_t.shape == (100, 128)


# Two optimisation steps (alone and with KD): test_method_contracts.py


def test_packaged_crd_kd_config():
    from kdzoo.config import read_yaml

    cfg = read_yaml("cifar100/crd_kd")
    assert (cfg["method"], cfg["gamma"], cfg["alpha"], cfg["beta"]) == ("crd", 1.0, 1.0, 0.8)
    w = CRD.default_weights  # the config adds KD (alpha 1) to CRD's own weights
    assert (w.gamma, w.alpha, w.beta) == (1.0, 0.0, 0.8)


# -- refusals --------------------------------------------------------------------------------------
def test_refusals():
    labels = torch.arange(50_000) % 100
    with pytest.raises(KdzooError, match=r"0\.0512 GB.*max_memory_gb=0\.01.*subset"):
        build(labels, max_memory_gb=0.01)  # 2 x 50000 x 128 x 4 bytes
    with pytest.raises(KdzooError, match="mode"):
        build(torch.arange(10) % 2, mode="approx")
    with pytest.raises(KdzooError, match="single class"):
        build(torch.zeros(10, dtype=torch.long))
    with pytest.raises(ConfigError, match="nce_k must be a whole number >= 1"):
        check_method_options(CRD, "crd", {"nce_k": 0})


def test_the_banks_sizes_in_the_docs_come_from_the_memorys_formula():
    """The guide's (docs/guide/methods.md) and crd.py's (so docs/methods/crd.md's) bank sizes are what bank_bytes
    gives, as printed."""
    memory = ContrastMemory(10, 8)
    assert bank_bytes(10, 8) == memory.memory_s.nbytes + memory.memory_t.nbytes
    cifar, five_m, imagenet = (bank_bytes(n, 128) for n in (50_000, 5_000_000, 1_281_167))
    readme = " ".join(docs_page_with("N × 128 floats").read_text(encoding="utf-8").split())
    found = re.search(r"N × 128 floats \(N = training-set size; (\S+) MB for CIFAR-100, (\S+) GB for 5 M images\)",
                      readme)
    assert found and found.groups() == (f"{cifar / 1e6:.0f}", f"{five_m / 1e9:.1f}")  # 51 MB, 5.1 GB
    doc = " ".join(sys.modules[CRD.__module__].__doc__.split())
    assert f"({cifar / 1e6:.0f} MB for CIFAR-100, {imagenet / 1e9:.1f} GB for ImageNet)" in doc  # 51 MB, 1.3 GB


# -- scale -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("replacement", [False, True])
def test_cifar_scale_forward_on_cpu(replacement, capsys):
    """Batch 64, N = 50000, K = 16384 (the reference setting): time one forward + backward."""
    labels = torch.randperm(50_000, generator=torch.Generator().manual_seed(0)) % 100
    method = build(labels, d_s=256, d_t=256, replacement=replacement)
    s, t = pooled(64, 256, seed=1), pooled(64, 256, seed=2)
    s.feats[-1].requires_grad_()
    batch = SimpleNamespace(index=torch.randperm(50_000)[:64])
    start = time.perf_counter()
    torch.manual_seed(0)
    idx = method.sampler(batch.index)
    sampled = time.perf_counter()
    loss = method(s, t, batch)["crd"]
    loss.backward()
    total = time.perf_counter() - sampled
    with capsys.disabled():
        print(f"\nCRD CPU, B=64 N=50000 K=16384 replacement={replacement}: sampling {1e3 * (sampled - start):.0f} ms,"
              f" forward+backward (sampling included) {1e3 * total:.0f} ms, {torch.get_num_threads()} threads")
    assert torch.isfinite(loss) and s.feats[-1].grad is not None
    assert idx.shape == (64, 16385)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    labels = torch.arange(1000) % 10
    method = build(labels, nce_k=256).cuda()
    s, t = pooled(8, 6), pooled(8, 5)
    s, t = Features(s.logits.cuda(), [s.pooled.cuda()]), Features(t.logits.cuda(), [t.pooled.cuda()])
    index = torch.arange(8, device="cuda") * 7
    idx = method.sampler(index)
    assert not (method.sampler.labels[idx[:, 1:]] == method.sampler.labels[index][:, None]).any()
    assert torch.isfinite(method(s, t, SimpleNamespace(index=index))["crd"])
