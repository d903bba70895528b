"""The DOT optimizer (Zhao et al., "DOT: A Distillation-Oriented Trainer", ICCV 2023): against a naive
two-momentum reference, its state dict, its refusals, and from the CLI (an exact resume, a teacher needed)."""

import pytest
import torch

from conftest import TINY
from kdzoo.config import build_config
from kdzoo.engine import train
from kdzoo.engine.checkpoint import read_checkpoint, save_atomic
from kdzoo.engine.dot import DOT
from kdzoo.models import create_model

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


# ------------------------------------------------------------------------------------ from the CLI

TWO_EPOCHS = [*TINY, "--dataset-opt", "num_train=64", "--dataset-opt", "num_test=32", "--epochs", "2",
              "--schedule", "constant"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    path = tmp_path_factory.mktemp("teacher") / "resnet14.pt"
    torch.manual_seed(0)
    save_atomic({"format": "kdzoo", "arch": "resnet14", "num_classes": 10, "in_channels": 3,
                 "model": create_model("resnet14", num_classes=10).state_dict()}, path)
    return path


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


def test_dot_needs_a_teacher(cli, tmp_path):
    code, _, err = cli("train", "--model", "resnet8", "--optimizer", "dot", *TWO_EPOCHS, "--output-dir", tmp_path)
    assert code == 2 and "needs a teacher" in err
