"""Every registered method runs 2 optimisation steps end to end from the CLI, on a same-family and
a cross-family pair (tiny synthetic data, CPU); pairs a method cannot handle are refused up front.
Self-distillation methods refuse a teacher and run on both pairs' students without one. Method settings from the
CLI: logit standardization, CTKD's learned temperature in metrics.csv, MLKD's strong view and SDD's head map."""

import csv
import json

import pytest
import torch

from conftest import TINY
from kdzoo.engine.checkpoint import save_atomic
from kdzoo.methods import list_methods, method_needs
from kdzoo.models import create_model

# 64 training images in batches of 32: one epoch = 2 optimisation steps.
TWO_STEPS = [*TINY, "--dataset-opt", "num_train=64", "--dataset-opt", "num_test=32", "--epochs", "1"]
# Options that keep the tiny runs tiny: one init epoch, and few CRD negatives for 64 samples.
SMALL_OPTIONS = {"ab": ["init_epochs=1"], "ft": ["init_epochs=1"], "fsp": ["init_epochs=1"], "crd": ["nce_k=16"]}
PAIRS = {"same-family": ("resnet14", "resnet8"), "cross-family": ("vgg8", "MobileNetV2")}
#: Methods that need equal channel counts at every tapped layer (RepDistiller's FSP "N/A").
EQUAL_CHANNELS_ONLY = {"fsp", "kdsvd"}
SELF_DISTILLATION = [m for m in list_methods() if not method_needs(m).needs_teacher]
TWO_EPOCHS = [*TINY, "--dataset-opt", "num_train=64", "--dataset-opt", "num_test=32", "--epochs", "2",
              "--schedule", "constant"]


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """Untrained teachers saved as kdzoo checkpoints (2 steps do not need a good teacher)."""
    root = tmp_path_factory.mktemp("teachers")
    paths = {}
    for arch in {t for t, _ in PAIRS.values()}:
        torch.manual_seed(0)
        model = create_model(arch, num_classes=10)
        paths[arch] = root / f"{arch}.pt"
        save_atomic({"format": "kdzoo", "arch": arch, "num_classes": 10, "in_channels": 3,
                     "model": model.state_dict()}, paths[arch])
    return paths


@pytest.mark.parametrize("pair", list(PAIRS))
@pytest.mark.parametrize("method", list_methods())
def test_two_steps_from_the_cli(cli, teachers, tmp_path, method, pair):
    teacher, student = PAIRS[pair]
    options = [arg for opt in SMALL_OPTIONS.get(method, []) for arg in ("--method-opt", opt)]
    code, out, err = cli("distill", "--teacher", teachers[teacher], "--student", student, "--method", method,
                         *options, *TWO_STEPS, "--output-dir", tmp_path, "--name", "run")
    if method in SELF_DISTILLATION:
        assert code == 2 and err.startswith("kdzoo: error: ") and "uses no teacher" in err
        return
    if method in EQUAL_CHANNELS_ONLY and pair == "cross-family":
        assert code == 2 and err.startswith("kdzoo: error: ") and "Traceback" not in err
        assert "channel" in err
        return
    assert code == 0, err
    assert_two_steps(tmp_path / "run", method)


@pytest.mark.parametrize("student", [student for _, student in PAIRS.values()])
@pytest.mark.parametrize("method", SELF_DISTILLATION)
def test_self_distillation_two_steps_from_the_cli(cli, tmp_path, method, student):
    code, out, err = cli("distill", "--student", student, "--method", method, *TWO_STEPS, "--output-dir", tmp_path,
                         "--name", "run")
    assert code == 0, err
    assert "self-distilling" in out
    assert_two_steps(tmp_path / "run", method)


def assert_two_steps(run_dir, method):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["method"] == method and summary["epochs"] == 1
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and "nan" not in rows[1]


@pytest.mark.parametrize("method,args,warning", [
    ("sp", ["--batch-size", "16"], "tuned for batch 64"),
    ("ab", ["--beta", "2", "--method-opt", "init_epochs=1"], "--beta has no effect"),
])
def test_settings_that_change_a_method_are_flagged(cli, teachers, tmp_path, method, args, warning):
    code, out, err = cli("distill", "--teacher", teachers["resnet14"], "--student", "resnet8", "--method", method,
                         *TWO_STEPS, *args, "--output-dir", tmp_path, "--name", "run")
    assert code == 0, err
    assert "warning: " in out and warning in out


def test_logit_std_from_the_cli(cli, teachers, tmp_path):
    teacher = teachers["resnet14"]  # untrained: the runs check settings, not accuracy
    code, out, err = cli("distill", "--teacher", teacher, "--student", "resnet8", "--logit-std", *TWO_EPOCHS,
                         "--output-dir", tmp_path, "--name", "run")
    assert code == 0, err
    assert "alpha 9, beta 0, T_s 2, T_t 2, logit standardization" in out
    code, out, err = cli("distill", "--teacher", teacher, "--student", "resnet8", "--method", "at", "--logit-std",
                         *TWO_EPOCHS, "--output-dir", tmp_path, "--name", "at")
    assert code == 2 and "has none" in err and "Traceback" not in err


def test_ctkd_logs_its_learned_temperature(cli, teachers, tmp_path):
    teacher = teachers["resnet14"]  # untrained: the runs check settings, not accuracy
    code, out, err = cli("distill", "--teacher", teacher, "--student", "resnet8", "--method", "ctkd", *TWO_EPOCHS,
                         "--output-dir", tmp_path, "--name", "run")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert [float(r["stat_reversal"]) for r in rows] == pytest.approx([-0.0244717, -0.0954915], rel=1e-5)
    assert all(1.0 < float(r["stat_temperature"]) < 21.0 for r in rows)
    assert "temperature " in out


def test_mlkd_and_sdd_from_the_cli(cli, teachers, tmp_path):
    teacher = teachers["resnet14"]  # untrained: the runs check settings, not accuracy
    for method in ("mlkd", "sdd"):
        code, _, err = cli("distill", "--teacher", teacher, "--student", "vgg8", "--method", method, *TWO_EPOCHS,
                           "--output-dir", tmp_path, "--name", method)
        assert code == 0, err
        summary = json.loads((tmp_path / method / "summary.json").read_text())
        assert summary["method"] == method
