"""The hints a new user meets: several methods for one run, a method name in capitals, a teacher folder without a
checkpoint (only files that exist are suggested), a KD temperature given as a method option, and the count of timm
names a listing call gives. Each refusal happens before any training."""

import re

import pytest
import torch

from conftest import one_paragraph_error
from kdzoo import Distiller
from kdzoo.commands import build_parser, main
from kdzoo.commands.run_options import run_overrides
from kdzoo.config import build_config
from kdzoo.engine.build import run_data, run_distiller
from kdzoo.engine.checkpoint import resolve_checkpoint_path
from kdzoo.errors import CheckpointError, ConfigError
from kdzoo.models import create_model, model_info

DISTILL = ["distill", "--student", "resnet8", "--dataset", "synthetic", "--dataset-opt", "num_train=20",
           "--dataset-opt", "num_test=10", "--device", "cpu", "--no-progress"]


def refusal(capsys, *args) -> str:
    """The one-line error ``kdzoo ARGS`` stops with."""
    code = main(list(args))
    err = capsys.readouterr().err
    one_paragraph_error(code, err)
    return err


# -- method names -------------------------------------------------------------------------------------------
def test_several_methods_for_one_run_point_to_kdzoo_bench(capsys):
    err = refusal(capsys, *DISTILL, "--teacher", "t.pt", "--method", "kd,dkd")
    assert "One run takes one method; 'kd,dkd' names 2." in err
    assert "kdzoo bench --grid FILE" in err and "`methods:` list" in err


def test_a_method_name_in_capitals_suggests_the_name_in_lower_case(capsys):
    err = refusal(capsys, *DISTILL, "--teacher", "t.pt", "--method", "KD")
    assert "Unknown method 'KD'. Did you mean 'kd'? Known methods:" in err


# -- a teacher folder without a checkpoint ------------------------------------------------------------------
def named_paths(message: str, folder) -> list[str]:
    """The paths below ``folder`` a message names."""
    return re.findall(rf"{re.escape(str(folder))}/[^\s,:]*[^\s,.:]", message)


def test_a_tutorial_folder_suggests_only_the_run_folders_below_it(capsys, tmp_path):
    tutorial = tmp_path / "runs" / "tutorial"
    for run in ("teacher", "kd"):
        (tutorial / run).mkdir(parents=True)
        (tutorial / run / "checkpoint_last.pt").write_bytes(b"")
    (tutorial / "notes").mkdir()  # a folder without a checkpoint is no run
    err = refusal(capsys, *DISTILL, "--teacher", str(tutorial))
    named = named_paths(err, tutorial)
    assert sorted(named) == [str(tutorial / "kd"), str(tutorial / "teacher")], err


def test_a_folder_of_checkpoint_files_suggests_them(tmp_path):
    (tmp_path / "ckpt_epoch_240.pth").write_bytes(b"")
    (tmp_path / "README.txt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError) as caught:
        resolve_checkpoint_path(tmp_path)
    assert named_paths(str(caught.value), tmp_path) == [str(tmp_path / "ckpt_epoch_240.pth")]


def test_an_empty_folder_suggests_no_file(tmp_path):
    with pytest.raises(CheckpointError, match="Pass a kdzoo run folder") as caught:
        resolve_checkpoint_path(tmp_path)
    assert named_paths(str(caught.value), tmp_path) == []


# -- a KD temperature given as a method option --------------------------------------------------------------
def networks():
    return create_model("resnet8", num_classes=10), create_model("resnet20", num_classes=10)


@pytest.mark.parametrize("option", ["temprature", "temperature", "T", "tau", "t_student"])
def test_a_temperature_for_a_method_without_one_points_to_the_run_options(option):
    with pytest.raises(ConfigError, match=rf"no option {option}\..* The KD temperatures are run options, not a "
                                          r"method's: --t-student T --t-teacher T"):
        Distiller(*networks(), "kd", method_options={option: 4})


@pytest.mark.parametrize("method,option,own", [("dkd", "temprature", "temperature"), ("dkd", "T", "temperature"),
                                               ("dist", "T", "tau"), ("mlkd", "temp", "temperatures")])
def test_a_temperature_for_a_method_with_its_own_suggests_that_option(method, option, own):
    with pytest.raises(ConfigError, match=rf"no option {option}\..* Did you mean {own}\?$"):
        Distiller(*networks(), method, method_options={option: 4})


def test_the_temperature_hint_reaches_the_command_line():
    args = build_parser().parse_args([*DISTILL, "--teacher", "t.pt", "--method-opt", "temprature=4"])
    cfg = build_config(args.config, run_overrides(args))
    student, teacher = networks()
    with pytest.raises(ConfigError, match="--t-student T --t-teacher T"):
        run_distiller(cfg, student, teacher, run_data(cfg, torch.device("cpu")), torch.device("cpu"))


# -- timm's names --------------------------------------------------------------------------------------------
def test_the_timm_typo_hint_counts_what_each_listing_call_lists():
    timm = pytest.importorskip("timm")
    with pytest.raises(ConfigError) as caught:
        model_info("timm/mobilenetv3_smal")
    message = str(caught.value)
    pattern, count = re.search(r"timm\.list_models\('([^']+)'\) lists the (\d+) names that match", message).groups()
    assert int(count) == len(timm.list_models(pattern)) < len(timm.list_models())
    assert f"timm.list_models() lists all {len(timm.list_models())} names." in message
