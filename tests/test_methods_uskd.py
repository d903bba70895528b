"""USKD: its three terms against hand values and naive float64 loops, Zipf soft labels ranked as the
official code (log-probabilities) and as the paper (probabilities), the weak head on the stage before
the last, the total objective, option checks; runs from the CLI are in test_methods_cli.py."""

import math
from types import SimpleNamespace

import pytest
import torch

from conftest import images, randn, softmax
from kdzoo.errors import ConfigError
from kdzoo.losses import uskd_non_target_loss, uskd_target_loss, uskd_weak_loss, zipf_soft_labels
from kdzoo.methods import Objective, create_method, method_class
from kdzoo.models import create_model, extract


def naive_zipf(z, w, t, rank_by):
    """Zipf soft labels of one sample over the classes != t, in class order."""
    s, p = softmax(z), softmax(w)
    s = [math.log(v) for v in s] if rank_by == "log_prob" else s
    score = [p[i] / (1 - p[t] + 1e-6) + s[i] / (1 - s[t] + 1e-6) for i in range(len(z))]
    order = sorted(range(len(z)), key=lambda i: -score[i])
    zipf = [1 / (order.index(i) + 1) for i in range(len(z)) if i != t]
    return [v / sum(zipf) for v in zipf]


def test_target_loss_hand_value():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.7, 0.1]]))
    # S_t = 0.5, 0.2; S_t^2 = 0.25, 0.04 (mean 0.145); p_t = 1.105, 0.895
    expected = -(1.105 * math.log(0.5) + 0.895 * math.log(0.2)) / 2
    assert float(uskd_target_loss(logits, torch.tensor([0, 0]))) == pytest.approx(expected, rel=1e-6)


def test_target_loss_matches_a_naive_loop_and_its_soft_target_is_detached():
    logits, target = (3 * randn(6, 7)).requires_grad_(), torch.tensor([0, 3, 6, 2, 2, 5])
    labels = target.tolist()
    s_t = [softmax(row)[t] for row, t in zip(logits.tolist(), labels, strict=True)]
    mean = sum(v * v for v in s_t) / 6
    expected = -sum((v * v - mean + 1) * math.log(v) for v in s_t) / 6
    loss = uskd_target_loss(logits, target)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()  # d/dz of -p_t log S_t with p_t constant: p_t (S - onehot) / B
    grad = [[(s_t[b] ** 2 - mean + 1) * (q - (c == labels[b])) / 6 for c, q in enumerate(softmax(row))]
            for b, row in enumerate(logits.tolist())]
    assert torch.allclose(logits.grad, torch.tensor(grad), atol=1e-6)


def test_zipf_labels_rank_as_the_code_and_as_the_paper():
    # target 0; network S = (0.5, 0.3, 0.15, 0.05), weak head W = (0.3, 0.05, 0.05, 0.6)
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    weak = torch.log(torch.tensor([[0.3, 0.05, 0.05, 0.6]]))
    target = torch.tensor([0])
    # paper, W_i/0.7 + S_i/0.5: 1.43, 0.67, 0.37, 0.96 -> classes 1, 2, 3 ranked 3, 4, 2
    paper = zipf_soft_labels(logits, weak, target, "prob")
    assert paper[0].tolist() == pytest.approx([4 / 13, 3 / 13, 6 / 13], rel=1e-5)
    # code, W_i/0.7 + log S_i/(1 - log 0.5): 0.02, -0.64, -1.05, -0.91 -> ranked 2, 4, 3
    code = zipf_soft_labels(logits, weak, target, "log_prob")
    assert code[0].tolist() == pytest.approx([6 / 13, 3 / 13, 4 / 13], rel=1e-5)


@pytest.mark.parametrize("rank_by", ["log_prob", "prob"])
def test_non_target_loss_matches_a_naive_loop(rank_by):
    logits, weak, target = 2 * randn(5, 6, seed=1), 2 * randn(5, 6, seed=2), torch.tensor([1, 0, 5, 3, 3])
    expected = 0.0
    for z, w, t in zip(logits.tolist(), weak.tolist(), target.tolist(), strict=True):
        others = softmax([v for i, v in enumerate(z) if i != t])
        expected -= sum(q * math.log(s) for q, s in zip(naive_zipf(z, w, t, rank_by), others, strict=True))
    assert float(uskd_non_target_loss(logits, weak, target, rank_by)) == pytest.approx(expected / 5, rel=1e-5)


def test_weak_loss_is_label_smoothed_cross_entropy():
    weak, target = randn(3, 4, seed=3), torch.tensor([2, 0, 3])
    expected = -sum(sum((0.9 * (c == t) + 0.1 / 4) * math.log(q) for c, q in enumerate(softmax(row)))
                    for row, t in zip(weak.tolist(), target.tolist(), strict=True)) / 3
    assert float(uskd_weak_loss(weak, target)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name,channels", [("resnet8", 32), ("tv_resnet18", 256), ("vgg8", 512), ("MobileNetV2", 48)])
def test_weak_head_reads_the_stage_before_the_last(name, channels):
    method = create_method("uskd", create_model(name, num_classes=10), None)
    assert (method.weak_head.in_features, method.weak_head.out_features) == (channels, 10)


def test_objective_is_ce_plus_the_weighted_terms():
    assert not method_class("uskd").reads.needs_teacher
    torch.manual_seed(0)
    student = create_model("resnet8", num_classes=10)
    method = create_method("uskd", student, None, alpha=0.2, beta=0.3, mu=0.4, rank_by="prob")
    s = extract(student, images(4))
    batch = SimpleNamespace(labels=torch.tensor([1, 5, 9, 0]))
    terms = Objective(method, method.reference_weights())(s, None, batch)
    assert set(terms) == {"ce", "uskd_target", "uskd_non_target", "uskd_weak"}
    weak = method.weak_head(s.stages[-2].mean(dim=(2, 3)))
    expected = (torch.nn.functional.cross_entropy(s.logits, batch.labels)
                + 0.2 * uskd_target_loss(s.logits, batch.labels)
                + 0.3 * uskd_non_target_loss(s.logits, weak, batch.labels, "prob")
                + 0.4 * uskd_weak_loss(weak, batch.labels))
    total = sum(terms.values())
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    total.backward()
    assert method.weak_head.weight.grad is not None and student.layer2[0].conv1.weight.grad is not None


@pytest.mark.parametrize("options,message", [({"rank_by": "rank"}, "rank_by"), ({"mu": -1}, "mu"),
                                             ({"alpha": "x"}, "alpha")])
def test_options_are_checked(options, message):
    with pytest.raises(ConfigError, match=message):
        create_method("uskd", create_model("resnet8", num_classes=10), None, **options)
