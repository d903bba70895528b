"""Multi-exit networks and their methods: exit shapes on the registered models, BYOT's layout,
the BYOT and exit-KD losses against naive float64 loops and hand values, exit costs against hand
FLOP counts, early exit (threshold 0 = first exit, 1 = deepest) against a per-sample loop, and a
BYOT run that resumes, reloads (``load_model``, ``--teacher``) and reports through ``kdzoo eval``."""

import csv
import math
from types import SimpleNamespace

import pytest
import torch

from conftest import TINY, images, kl, randn, softmax
from kdzoo.data import build_data
from kdzoo.engine.checkpoint import load_model, read_checkpoint
from kdzoo.engine.early_exit import chosen_exits, count_exit_costs, early_exit_report
from kdzoo.engine.evaluate import evaluate
from kdzoo.errors import ConfigError
from kdzoo.losses import byot_hint_loss, byot_kd_loss
from kdzoo.methods import Objective, create_method, method_class
from kdzoo.models import MultiExitNet, create_model, extract, list_models
from kdzoo.models.features import Features


def cross_entropy(z, y):
    return -math.log(softmax(z)[y])


def with_exits(name, num_classes=10, input_shape=(3, 32, 32)):
    torch.manual_seed(0)
    return MultiExitNet.build(create_model(name, num_classes=num_classes, in_channels=input_shape[0]), input_shape)


@pytest.mark.parametrize("name", [n for n in list_models() if n not in ("tv_resnet34", "tv_resnet50")])  # (for time)
def test_every_stage_but_the_last_gets_an_exit_of_the_right_shape(name):
    net = with_exits(name).eval()
    with torch.no_grad():
        out = extract(net, images(3), exits=True)
        plain = net.backbone(images(3))
    stages, pooled = out.stages, out.pooled
    assert net.num_exits == len(stages) == len(out.exits)
    for e in out.exits:
        assert e.logits.shape == (3, 10) and e.pooled.shape == pooled.shape
    assert torch.equal(out.exits[-1].logits, out.logits) and torch.equal(out.exits[-1].pooled, pooled)
    assert torch.equal(net(images(3)), plain) and torch.equal(out.logits, plain)  # the zoo contract: the deepest exit
    assert net.get_classifier() is net.backbone.get_classifier()


def test_byot_exit_layout_and_size():
    net = with_exits("resnet8")
    first = net.exit_heads[0]
    kinds = [type(m).__name__ for m in first.bottleneck]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU"] * 3
    assert [m.kernel_size for m in first.bottleneck if isinstance(m, torch.nn.Conv2d)] == [(1, 1), (4, 4), (1, 1)]
    assert first.bottleneck[3].stride == (4, 4) and net.exit_heads[1].bottleneck[3].stride == (2, 2)
    # stage 1: 16 channels -> 64/4 = 16 -> 64; 1x1, 4x4, 1x1 convs (no bias), three BNs, Linear(64, 10)
    expected = 16 * 16 + 16 * 16 * 16 + 16 * 64 + 2 * (16 + 16 + 64) + 64 * 10 + 10
    assert sum(p.numel() for p in first.parameters()) == expected


def test_maps_that_do_not_divide_the_last_size_are_pooled_first():
    net = with_exits("resnet8", input_shape=(3, 30, 30))  # stage maps 30, 15, 8
    assert [(h.spec["kernel"], h.spec["pool_to"]) for h in net.exit_heads] == [((3, 3), (24, 24)), ((1, 1), (8, 8))]
    out = extract(net, randn(2, 3, 30, 30), exits=True)
    assert all(e.logits.shape == (2, 10) for e in out.exits)


def test_exit_costs_match_hand_counts():
    costs = count_exit_costs(with_exits("resnet8"), (3, 32, 32))
    macs = lambda hw, c_in, c_out, k: hw * hw * c_in * c_out * k * k  # noqa: E731
    stage1 = macs(32, 3, 16, 3) + 2 * macs(32, 16, 16, 3)
    stage2 = stage1 + macs(16, 16, 32, 3) + macs(16, 32, 32, 3) + macs(16, 16, 32, 1)
    full = stage2 + macs(8, 32, 64, 3) + macs(8, 64, 64, 3) + macs(8, 32, 64, 1) + 64 * 10
    head1 = macs(32, 16, 16, 1) + 8 * 8 * 16 * 16 * 16 + macs(8, 16, 64, 1) + 64 * 10
    head2 = macs(16, 32, 16, 1) + 8 * 8 * 16 * 16 * 4 + macs(8, 16, 64, 1) + 64 * 10
    assert costs.stages == [2 * stage1, 2 * stage2, 2 * full]  # FlopCounterMode: 2 FLOPs per multiply-add
    assert costs.heads == [2 * head1, 2 * head2, 0]
    assert costs.alone(1) == 2 * (stage2 + head2) and costs.leaving_at(2) == 2 * (full + head1 + head2)


def test_chosen_exits_at_thresholds():
    confidence = torch.tensor([[0.3, 0.6, 0.9], [0.95, 0.2, 0.1], [0.2, 0.3, 1.0], [1.0, 1.0, 1.0]])
    assert chosen_exits(confidence, 0.0).tolist() == [0, 0, 0, 0]
    assert chosen_exits(confidence, 0.5).tolist() == [1, 0, 2, 0]
    assert chosen_exits(confidence, 0.99).tolist() == [2, 2, 2, 0]
    assert chosen_exits(confidence, 1.0).tolist() == [2, 2, 2, 2]  # always the deepest, even at probability 1


def test_early_exit_report_matches_a_per_sample_loop():
    net = with_exits("resnet8").eval()
    bundle = build_data("synthetic", num_train=32, num_test=40, eval_batch_size=16)
    probs, labels = [], []  # per sample: every exit's probabilities, one image at a time
    with torch.no_grad():
        for batch in bundle.test.epoch(0):
            for x, y in zip(batch.images, batch.labels.tolist(), strict=True):
                outputs = extract(net, x[None], exits=True).exits
                probs.append([softmax(e.logits[0].tolist()) for e in outputs])
                labels.append(y)
    n = len(labels)
    middle = sorted(max(p[0]) for p in probs)[n // 2]  # a threshold that sends about half the samples out early
    thresholds = (0.0, middle, 1.0)
    report = early_exit_report(net, bundle.test, (3, 32, 32), thresholds=thresholds)
    costs = count_exit_costs(net, (3, 32, 32))
    right = lambda p, y: p.index(max(p)) == y  # noqa: E731
    for e, row in enumerate(report.exits):
        assert row.top1 == pytest.approx(100 * sum(right(p[e], y) for p, y in zip(probs, labels, strict=True)) / n)
        assert row.flops == costs.alone(e)
    for tau, row in zip(thresholds, report.thresholds, strict=True):
        leave = [2 if tau >= 1 else next((e for e in range(2) if max(p[e]) >= tau), 2) for p in probs]
        flops = [costs.full if tau >= 1 else costs.stages[e] + sum(costs.heads[: e + 1]) for e in leave]
        right_count = sum(right(p[e], y) for p, e, y in zip(probs, leave, labels, strict=True))
        assert row.top1 == pytest.approx(100 * right_count / n)
        assert row.flops == pytest.approx(sum(flops) / n)
        assert row.shares == pytest.approx([leave.count(e) / n for e in range(3)])
    assert report.thresholds[0].shares == [1, 0, 0] and report.thresholds[-1].shares == [0, 0, 1]
    assert 0 < report.thresholds[1].shares[0] < 1  # the middle threshold really splits the samples
    assert report.thresholds[0].top1 == report.exits[0].top1 and report.thresholds[-1].top1 == report.exits[-1].top1
    assert report.full_flops == costs.full == report.exits[-1].flops


# -- losses ----------------------------------------------------------------------------------------

def test_byot_kd_loss_matches_a_naive_loop():
    exits = [randn(4, 5, seed=i) * 2 for i in range(3)]
    t = 3.0
    expected = sum(t * t * kl(softmax([v / t for v in exits[-1][b].tolist()]),
                              softmax([v / t for v in exits[i][b].tolist()]))
                   for i in range(2) for b in range(4)) / 4
    assert float(byot_kd_loss(exits, t)) == pytest.approx(expected, rel=1e-5)
    assert float(byot_kd_loss([exits[0], exits[0]], t)) == pytest.approx(0.0, abs=1e-6)


def test_byot_hint_masked_and_plain():
    feats = [torch.tensor([[-1.0, 2.0]]), torch.tensor([[-0.5, 0.5]]), torch.tensor([[-0.5, 1.0]])]
    # masked: (-1, -0.5) and (-0.5, -0.5) are both non-positive -> dropped; (2-1)^2 + (0.5-1)^2
    assert float(byot_hint_loss(feats, masked=True)) == pytest.approx(1.0 + 0.25)
    assert float(byot_hint_loss(feats, masked=False)) == pytest.approx(0.25 + 1.0 + 0.0 + 0.25)
    feats = [randn(3, 6, seed=i) for i in range(3)]
    expected = sum((a - b) ** 2 * (a > 0 or b > 0) for i in range(2)
                   for ra, rb in zip(feats[i].tolist(), feats[-1].tolist(), strict=True)
                   for a, b in zip(ra, rb, strict=True))
    assert float(byot_hint_loss(feats)) == pytest.approx(expected, rel=1e-5)


def exit_features(batch=4, classes=5, exits=3):
    """A multi-exit student's outputs: every exit's logits (with gradients) and post-ReLU feature."""
    outputs = [Features((2 * randn(batch, classes, seed=i)).requires_grad_(), [randn(batch, 8, seed=10 + i).relu()])
               for i in range(exits)]
    return Features(outputs[-1].logits, [], exits=outputs)


def test_byot_objective_is_the_papers_total():
    net = with_exits("resnet8", num_classes=5)
    method = create_method("byot", net, None, alpha=0.3, temperature=2.0, feature_weight=0.01)
    s = exit_features()
    labels = [0, 3, 1, 4]
    terms = Objective(method, method.reference_weights())(s, None, SimpleNamespace(labels=torch.tensor(labels)))
    assert set(terms) == {"ce", "byot_ce_exits", "byot_kd", "byot_hint"}
    z = [e.logits.tolist() for e in s.exits]
    f = [e.pooled.tolist() for e in s.exits]
    ce = sum(cross_entropy(z[i][b], labels[b]) for i in range(3) for b in range(4)) / 4
    kd = sum(4 * kl(softmax([v / 2 for v in z[2][b]]), softmax([v / 2 for v in z[i][b]]))
             for i in range(2) for b in range(4)) / 4
    hint = sum((a - c) ** 2 for i in range(2) for b in range(4) for a, c in zip(f[i][b], f[2][b], strict=True))
    total = sum(terms.values())
    assert total.item() == pytest.approx(0.7 * ce + 0.3 * kd + 0.01 * hint, rel=1e-5)
    total.backward()
    ce_grad = [[0.7 * (q - (c == labels[b])) / 4 for c, q in enumerate(softmax(z[2][b]))] for b in range(4)]
    # the deepest exit: CE only, KD target detached
    assert torch.allclose(s.exits[-1].logits.grad, torch.tensor(ce_grad), atol=1e-6)


def test_exit_kd_is_kd_at_every_exit():
    student, teacher = with_exits("resnet8", num_classes=5), create_model("resnet14", num_classes=5).eval()
    method = create_method("exit_kd", student, teacher)
    assert method.reference_weights().gamma == 0 and method.reference_weights().alpha == 0
    s, t = exit_features(), Features(randn(4, 5, seed=7), [])
    labels = [2, 0, 4, 1]
    terms = method(s, t, SimpleNamespace(labels=torch.tensor(labels)))
    z, zt = [e.logits.tolist() for e in s.exits], t.logits.tolist()
    ce = sum(cross_entropy(z[i][b], labels[b]) for i in range(3) for b in range(4)) / 4
    kd = sum(16 * kl(softmax([v / 4 for v in zt[b]]), softmax([v / 4 for v in z[i][b]]))
             for i in range(3) for b in range(4)) / 4
    assert terms["exit_ce"].item() == pytest.approx(0.1 * ce, rel=1e-5)
    assert terms["exit_kd"].item() == pytest.approx(0.9 * kd, rel=1e-5)


@pytest.mark.parametrize("options,message", [({"alpha": 1.5}, "between 0 and 1"), ({"hint": "l1"}, "'masked'"),
                                             ({"feature_weight": -1}, "feature_weight")])
def test_byot_options_are_checked(options, message):
    with pytest.raises(ConfigError, match=message):
        create_method("byot", with_exits("resnet8"), None, **options)


def test_exit_methods_need_a_multi_exit_student():
    assert method_class("byot").reads.student.exits and not method_class("byot").reads.needs_teacher
    with pytest.raises(ConfigError, match="MultiExitNet"):
        create_method("byot", create_model("resnet8", num_classes=10), None)
    with pytest.raises(ConfigError, match="MultiExitNet"):
        create_method("exit_kd", create_model("resnet8", num_classes=10), create_model("resnet14", num_classes=10))


# -- end to end ------------------------------------------------------------------------------------

def test_a_byot_run_resumes_reloads_and_reports_early_exit(cli, tmp_path):
    run = tmp_path / "byot"
    code, out, err = cli("distill", "--student", "resnet8", "--method", "byot", *TINY, "--epochs", "1",
                         "--output-dir", tmp_path, "--name", "byot")
    assert code == 0, err
    assert "self-distilling resnet8 with byot (gamma 0.9, alpha 0, beta 1)" in out
    assert "feature_weight=4e-06" in out  # batch 32 instead of the reimplementation's 128
    code, out, err = cli("distill", "--resume", run, "--epochs", "2", "--extend")
    assert code == 0, err
    data = read_checkpoint(run / "checkpoint_last.pt")
    assert len(data["exits"]["specs"]) == 2 and not any(k.startswith("backbone.") for k in data["model"])
    header = next(csv.reader((run / "metrics.csv").open()))
    assert {"train_ce", "train_byot_ce_exits", "train_byot_kd", "train_byot_hint"} <= set(header)

    model, _ = load_model(run)
    assert isinstance(model, MultiExitNet)
    bundle = build_data("synthetic", num_train=96, num_test=64, eval_batch_size=256)
    last = list(csv.DictReader((run / "metrics.csv").open()))[-1]
    assert evaluate(model, bundle.test, torch.device("cpu"))["top1"] == pytest.approx(float(last["test_top1"]))

    code, out, err = cli("eval", run, "--thresholds", "0", "0.5", "1")
    assert code == 0, err
    assert f"top-1 {float(last['test_top1']):.2f}%" in out and "3 (deepest)" in out
    assert "100 / 0 / 0" in out and "0 / 0 / 100" in out  # thresholds 0 and 1
    assert (run / "early_exit.png").read_bytes().startswith(b"\x89PNG")

    code, out, err = cli("distill", "--teacher", run, "--student", "resnet8", *TINY, "--epochs", "1",
                         "--output-dir", tmp_path, "--name", "kd")
    assert code == 0, err  # a multi-exit teacher distils through its deepest exit
    code, out, err = cli("eval", tmp_path / "kd", "--plot", tmp_path / "p.png")
    assert code == 2 and "without exits" in err
