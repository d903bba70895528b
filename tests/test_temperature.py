"""The temperature tool: softened probabilities sum to one, entropy rises with T, T = 1 is the softmax;
the command prints the table and writes plots, for given logits and for a real teacher and student."""

import math

import pytest
import torch

from conftest import TINY
from kdzoo.temperature import entropy, kl_divergence, kl_matrix, soften, standardized

PNG = b"\x89PNG\r\n\x1a\n"
TEMPERATURES = [0.5, 1.0, 2.0, 4.0, 10.0, 100.0]


def logits(seed=0, shape=(8, 10)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 3


def test_softened_probabilities_sum_to_one_and_t1_is_softmax():
    z = logits()
    for t in TEMPERATURES:
        assert torch.allclose(soften(z, t).sum(dim=1), torch.ones(8, dtype=torch.float64))
    assert torch.allclose(soften(z, 1.0), torch.softmax(z.double(), dim=1))
    p = soften(torch.tensor([1.0, 4.0, 3.0, 1.0]), 4.0)  # by hand: exp(z/4) / sum
    e = [math.exp(v / 4) for v in (1, 4, 3, 1)]
    assert p.tolist() == pytest.approx([v / sum(e) for v in e])


def test_entropy_rises_with_temperature_towards_log_k():
    z = logits()
    h = torch.stack([entropy(soften(z, t)) for t in TEMPERATURES])
    assert bool((h[1:] > h[:-1]).all())
    assert torch.allclose(h[-1], torch.full((8,), math.log(10), dtype=torch.float64), atol=1e-3)
    assert float(entropy(torch.tensor([1.0, 0.0]))) == 0.0
    assert float(entropy(torch.tensor([0.5, 0.5]))) == pytest.approx(math.log(2))


def test_kl_matrix_and_standardized_logits():
    zs, zt = logits(1), logits(2)
    m = kl_matrix(zs, zt, [1.0, 4.0])
    p_t, log_p_s = soften(zt, 4.0), soften(zs, 1.0).log()
    naive = float((p_t * (p_t.log() - log_p_s)).sum(dim=1).mean())  # KL(teacher at T_t=4 || student at T_s=1)
    assert m[0][1] == pytest.approx(naive) and m[0][0] == pytest.approx(kl_divergence(zs, zt, 1.0, 1.0))
    assert kl_divergence(zt, zt, 3.0, 3.0) == pytest.approx(0.0, abs=1e-12)
    z = standardized(zt)
    assert torch.allclose(z.mean(dim=1), torch.zeros(8, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(z.std(dim=1), torch.ones(8, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(standardized(zt * 5 + 2), z, atol=1e-6)  # invariant to scale and shift


def test_classic_example_from_the_command_line(cli, tmp_path):
    code, out, err = cli("temperature", "--out", tmp_path / "t.png")
    assert code == 0, err
    assert "cat" in out and "donkey" in out and "entropy (nats)" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].isdigit()}
    assert set(lines) == {"1", "4", "10", "100"}
    assert sum(map(float, lines["1"][1:5])) == pytest.approx(1.0, abs=2e-4)
    softmax = torch.softmax(torch.tensor([1.0, 4.0, 3.0, 1.0]), 0)
    assert float(lines["1"][2]) == pytest.approx(float(softmax[1]), abs=1e-4)
    assert (tmp_path / "t.png").read_bytes().startswith(PNG)
    code, _, err = cli("temperature", "--logits", "1", "2", "--classes", "a", "--out", tmp_path / "u.png")
    assert code == 2 and "one name per logit" in err


def test_teacher_and_student_on_a_test_batch(cli, tiny_teacher, tmp_path):
    student = tmp_path / "s"
    assert cli("train", "--model", "resnet8", *TINY, "--epochs", "1", "--output-dir", tmp_path, "--name", "s")[0] == 0
    out_png = tmp_path / "real.png"
    code, out, err = cli("temperature", "--teacher", tiny_teacher, "--student", student, "--class", "class3",
                         "--temperatures", "1", "4", "--out", out_png, "--device", "cpu")
    assert code == 0, err
    assert "synthetic test image 3 (class class3)" in out and "class3" in out.splitlines()[1]
    assert "KL(teacher || student), mean over the batch of 64 test images" in out
    assert "KL standardized" in out
    for path in (out_png, tmp_path / "real_kl.png", tmp_path / "real_standardized.png"):
        assert path.read_bytes().startswith(PNG)
    code, _, err = cli("temperature", "--teacher", tiny_teacher, "--class", "dog", "--device", "cpu", "--out", out_png)
    assert code == 2 and "--class 'dog' is not a class of synthetic" in err


def test_the_plot_goes_under_runs_by_default_and_its_path_is_printed(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("temperature")
    assert code == 0, err
    assert (tmp_path / "runs" / "temperature" / "temperature.png").is_file()
    assert not (tmp_path / "temperature.png").exists()
    assert "plot: runs/temperature/temperature.png" in out
