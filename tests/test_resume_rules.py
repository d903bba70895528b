"""What --resume may change, --extend of a finished run, and a run folder that a refused resume leaves as it was."""

import csv
import json

import pytest
import torch

from conftest import TINY
from kdzoo.engine.checkpoint import LAST

ONE_EPOCH = [*TINY, "--dataset-opt", "num_train=64", "--dataset-opt", "num_test=32"]


def test_a_refused_method_change_leaves_the_run_resumable(cli, tiny_teacher, tmp_path):
    run = tmp_path / "kd"
    code, _, err = cli("distill", "--teacher", tiny_teacher, "--student", "resnet8", *ONE_EPOCH, "--epochs", "1",
                       "--output-dir", tmp_path, "--name", "kd")
    assert code == 0, err
    config = (run / "config.yaml").read_bytes()
    code, _, err = cli("distill", "--resume", run, "--method", "crd")
    assert code == 2 and "method: 'kd' in the checkpoint, 'crd' now" in err and "Traceback" not in err, err
    assert (run / "config.yaml").read_bytes() == config
    code, out, err = cli("distill", "--resume", run, "--epochs", "2", "--extend")
    assert code == 0, err


def test_a_checkpoint_that_does_not_fit_is_refused_before_config_yaml_is_written(cli, tmp_path):
    run = tmp_path / "run"
    code, _, err = cli("train", "--model", "resnet8", *ONE_EPOCH, "--epochs", "1", "--output-dir", tmp_path,
                       "--name", "run")
    assert code == 0, err
    (run / "summary.json").unlink()  # as if stopped before the summary
    data = torch.load(run / LAST, weights_only=True)
    data["optimizer"] = {"state": {}, "param_groups": []}
    torch.save(data, run / LAST)
    config = (run / "config.yaml").read_bytes()
    code, _, err = cli("train", "--resume", run, "--epochs", "2")
    assert code == 2 and f"{run / LAST} does not fit the run" in err and "Traceback" not in err, err
    assert (run / "config.yaml").read_bytes() == config


def test_extend_trains_a_finished_run_on_at_its_last_lr(cli, tmp_path):
    run = tmp_path / "run"
    code, _, err = cli("train", "--model", "resnet8", *ONE_EPOCH, "--epochs", "2", "--output-dir", tmp_path,
                       "--name", "run")
    assert code == 0, err
    code, _, err = cli("train", "--resume", run, "--epochs", "1")
    assert code == 2 and "already trained 2 epochs" in err, err
    code, out, err = cli("train", "--resume", run, "--epochs", "4", "--extend")
    assert code == 0, err
    assert "Epochs 3-4 extend its 2-epoch lr schedule at the lr of its last epoch, 0.005." in out
    rates = [float(row["lr"]) for row in csv.DictReader((run / "metrics.csv").open())]
    assert rates == pytest.approx([0.05, 0.005, 0.005, 0.005])  # step schedule of 2 epochs: x0.1 after epoch 1
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["epochs"], summary["schedule_epochs"]) == (4, 2)
