"""DOT against a naive two-momentum reference, MLKD's strong view in the data layer, the head map
of every model, packaged configs, and the newer logit methods from the CLI (logit standardization,
DOT with an exact resume, the learned temperature in metrics.csv)."""

import csv
import json

import pytest
import torch

from conftest import TINY
from kdzoo.config import build_config, packaged_configs, read_yaml
from kdzoo.data import build_data
from kdzoo.data.augment import cutout
from kdzoo.engine import train
from kdzoo.engine.checkpoint import read_checkpoint, save_atomic
from kdzoo.engine.dot import DOT
from kdzoo.methods import create_method
from kdzoo.models import create_model, extract, list_models

# ------------------------------------------------------------------------------------------------ DOT


def naive_dot(p0, grads, lr, mu, delta, wd):
    """Plain-Python DOT on one scalar per parameter: (task grad or None, distill grad or None) per step."""
    p, b_task, b_kd = p0, None, None
    for g_task, g_kd in grads:
        both = g_task is not None and g_kd is not None
        if g_task is not None:
            d = g_task + wd * p
            b_task = d if b_task is None else (mu - delta if both else mu) * b_task + d
            p -= lr * b_task
        if g_kd is not None:
            d = g_kd if both or b_kd is None else g_kd + wd * p  # mdistiller: the first buffer is the raw gradient
            b_kd = d if b_kd is None else (mu + delta if both else mu) * b_kd + d
            p -= lr * b_kd
    return p


@pytest.mark.parametrize("pattern", ["both", "task only", "distill only"])
def test_dot_matches_a_naive_two_momentum_update(pattern):
    lr, mu, delta, wd = 0.1, 0.9, 0.075, 5e-4
    steps = [(0.5, -0.3), (0.2, 0.4), (-0.1, 0.7)]
    steps = [(t if pattern != "distill only" else None, k if pattern != "task only" else None) for t, k in steps]
    p = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = DOT([p], lr=lr, momentum=mu, delta=delta, weight_decay=wd)
    for g_task, g_kd in steps:
        opt.zero_grad(set_to_none=True)
        if g_kd is not None:
            (g_kd * p).sum().backward()
            opt.store_distill_grads()
        if g_task is not None:
            (g_task * p).sum().backward()
        opt.step()
    assert float(p.detach()) == pytest.approx(naive_dot(1.0, steps, lr, mu, delta, wd), rel=1e-12)


def test_dot_distill_only_parameter_decays_from_its_second_step_as_mdistiller():
    p = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    opt = DOT([p], lr=0.1, momentum=0.9, delta=0.075, weight_decay=0.5)
    for _ in range(2):
        opt.zero_grad(set_to_none=True)
        (0.25 * p).sum().backward()
        opt.store_distill_grads()
        opt.step()
    first = 2.0 - 0.1 * 0.25  # raw gradient: no weight decay yet
    assert float(p.detach()) == pytest.approx(first - 0.1 * (0.9 * 0.25 + 0.25 + 0.5 * first), rel=1e-12)


def test_dot_state_round_trips_through_a_state_dict():
    p = torch.nn.Parameter(torch.ones(3))
    opt = DOT([p], lr=0.1)
    (p.sum()).backward()
    opt.store_distill_grads()
    (2 * p.sum()).backward()
    opt.step()
    state = opt.state_dict()["state"][0]
    assert set(state) == {"momentum_buffer", "distill_momentum_buffer"}  # no gradient left behind
    fresh = DOT([torch.nn.Parameter(p.detach().clone())], lr=0.1)
    fresh.load_state_dict(opt.state_dict())
    assert torch.equal(fresh.state_dict()["state"][0]["momentum_buffer"], state["momentum_buffer"])


def test_dot_rejects_a_delta_above_the_momentum():
    with pytest.raises(ValueError, match="delta"):
        DOT([torch.nn.Parameter(torch.ones(1))], lr=0.1, momentum=0.5, delta=0.6)


# -------------------------------------------------------------------------------------- strong view

def synthetic(**kwargs):
    return build_data("synthetic", batch_size=8, num_train=16, num_test=8, seed=3, **kwargs)


def test_strong_view_is_reproducible_and_differs_from_the_weak_view():
    first = next(synthetic(strong_view=True).train.epoch(1))
    again = next(synthetic(strong_view=True).train.epoch(1))
    plain = next(synthetic().train.epoch(1))
    assert first.strong_images.shape == first.images.shape and first.strong_images.dtype == torch.float32
    assert torch.equal(first.strong_images, again.strong_images)
    assert torch.equal(first.images, plain.images)  # the weak view is unchanged by adding the strong one
    assert plain.strong_images is None
    assert not torch.allclose(first.strong_images, first.images)
    other_epoch = next(synthetic(strong_view=True).train.epoch(2))
    assert not torch.equal(other_epoch.strong_images, first.strong_images)


def test_test_batches_have_no_strong_view():
    assert next(synthetic(strong_view=True).test.epoch(0)).strong_images is None


def test_cutout_zeroes_one_clipped_square_per_image():
    images = torch.ones(64, 2, 8, 8)
    out = cutout(images, 4, torch.Generator().manual_seed(0))
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert torch.all(zeros >= 4) and torch.all(zeros <= 16) and (zeros == 16).any()  # 2x2 in a corner at least
    assert torch.equal(out[:, 0] == 0, out[:, 1] == 0)  # every channel
    rows = (out[:, 0] == 0).any(dim=2).sum(dim=1)
    assert torch.all(rows <= 4)


# --------------------------------------------------------------------------------------- head map

@pytest.mark.parametrize("name", [n for n in list_models() if n not in ("tv_resnet34", "tv_resnet50")])
def test_head_map_pools_into_the_classifier(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10).eval()
    with torch.no_grad():
        f = extract(model, torch.randn(2, 3, 32, 32), head_map=True)
        assert torch.allclose(f.head_map.mean(dim=(2, 3)), f.pooled, atol=1e-5)
        assert torch.allclose(model.get_classifier()(f.pooled), f.logits, atol=1e-5)


# ---------------------------------------------------------------------------------- packaged configs

@pytest.mark.parametrize("name", [n for n in packaged_configs() if n.startswith("cifar100/") and n != "cifar100/teacher"])
def test_packaged_method_configs_build(name):
    cfg = build_config(name, {"teacher": "t.pt", "model": read_yaml(name).get("model", "resnet8")})
    student = create_model(cfg.model, num_classes=100)
    method = create_method(cfg.method, student, create_model("resnet32x4", num_classes=100),
                           train_labels=torch.arange(100), logit_std=cfg.logit_std, **cfg.method_options)
    assert method.method_name == cfg.method


# ------------------------------------------------------------------------------------------- CLI

TWO_EPOCHS = [*TINY, "--dataset-opt", "num_train=64", "--dataset-opt", "num_test=32", "--epochs", "2",
              "--schedule", "constant"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    path = tmp_path_factory.mktemp("teacher") / "resnet14.pt"
    torch.manual_seed(0)
    save_atomic({"format": "kdzoo", "arch": "resnet14", "num_classes": 10, "in_channels": 3,
                 "model": create_model("resnet14", num_classes=10).state_dict()}, path)
    return path


def test_logit_std_from_the_cli(cli, teacher, tmp_path):
    code, out, err = cli("distill", "--teacher", teacher, "--student", "resnet8", "--logit-std", *TWO_EPOCHS,
                         "--output-dir", tmp_path, "--name", "run")
    assert code == 0, err
    assert "alpha 9, beta 0, T_s 2, T_t 2, logit standardization" in out
    code, out, err = cli("distill", "--teacher", teacher, "--student", "resnet8", "--method", "at", "--logit-std",
                         *TWO_EPOCHS, "--output-dir", tmp_path, "--name", "at")
    assert code == 2 and "has none" in err and "Traceback" not in err


def test_ctkd_logs_its_learned_temperature(cli, teacher, tmp_path):
    code, out, err = cli("distill", "--teacher", teacher, "--student", "resnet8", "--method", "ctkd", *TWO_EPOCHS,
                         "--output-dir", tmp_path, "--name", "run")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert [float(r["stat_reversal"]) for r in rows] == pytest.approx([-0.0244717, -0.0954915], rel=1e-5)
    assert all(1.0 < float(r["stat_temperature"]) < 21.0 for r in rows)
    assert "temperature " in out


def test_dot_run_resumes_exactly(cli, teacher, tmp_path):
    common = ["--teacher", teacher, "--student", "resnet8", "--method", "dkd", "--optimizer", "dot", *TWO_EPOCHS]
    code, _, err = cli("distill", *common, "--output-dir", tmp_path, "--name", "full")
    assert code == 0, err
    cfg = build_config(None, {"teacher": str(teacher), "model": "resnet8", "method": "dkd", "optimizer": "dot",
                              "dataset": "synthetic", "dataset_options": {"num_train": 64, "num_test": 32},
                              "epochs": 1, "schedule": "constant", "batch_size": 32, "eval_batch_size": 64,
                              "output_dir": str(tmp_path), "name": "half", "progress": False, "tensorboard": False,
                              "device": "cpu"})
    train(cfg)
    train(resume=tmp_path / "half", overrides={"epochs": 2}, extend=True)
    full = read_checkpoint(tmp_path / "full" / "checkpoint_last.pt")
    resumed = read_checkpoint(tmp_path / "half" / "checkpoint_last.pt")
    assert "distill_momentum_buffer" in next(iter(full["optimizer"]["state"].values()))
    for key, value in full["model"].items():
        assert torch.equal(value, resumed["model"][key]), key


def test_mlkd_and_sdd_from_the_cli(cli, teacher, tmp_path):
    for method in ("mlkd", "sdd"):
        code, _, err = cli("distill", "--teacher", teacher, "--student", "vgg8", "--method", method, *TWO_EPOCHS,
                           "--output-dir", tmp_path, "--name", method)
        assert code == 0, err
        summary = json.loads((tmp_path / method / "summary.json").read_text())
        assert summary["method"] == method


def test_dot_needs_a_teacher(cli, tmp_path):
    code, _, err = cli("train", "--model", "resnet8", "--optimizer", "dot", *TWO_EPOCHS, "--output-dir", tmp_path)
    assert code == 2 and "needs a teacher" in err
