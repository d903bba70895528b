"""Extra parameters: the trainable parameters a method adds to the student (connectors, embeddings, heads, exits),
never the frozen teacher, as mdistiller counts them; in `kdzoo list methods`, the run header and summary.json."""

import json
import re

import pytest

from conftest import TINY
from kdzoo import Distiller
from kdzoo.commands.list import methods as list_methods_text
from kdzoo.models import create_model


def distiller(method: str, student: str = "resnet8", teacher: str | None = "resnet32x4", **options) -> Distiller:
    """``method`` on CIFAR-100 shapes: resnet8 (16/16/32/64 channels) from resnet32x4 (32/64/128/256)."""
    return Distiller(create_model(student, num_classes=100),
                     create_model(teacher, num_classes=100) if teacher else None, method, input_shape=(3, 32, 32),
                     **options)


def test_kd_adds_nothing():
    assert distiller("kd").extra_parameters() == 0


def test_fitnet_counts_its_regressor():
    """The hint feat[2] is resnet8's 32-channel and resnet32x4's 128-channel map, both 16x16: a 1x1 conv with bias
    (32*128 weights + 128 biases) and a BatchNorm (128 weights + 128 biases)."""
    assert distiller("fitnet", hint_layer=2).extra_parameters() == 32 * 128 + 128 + 2 * 128


def test_cc_counts_both_embeddings():
    """Linear(64 -> 128) on resnet8's pooled vector and Linear(256 -> 128) on resnet32x4's, with biases."""
    assert distiller("cc", feat_dim=128).extra_parameters() == (64 * 128 + 128) + (256 * 128 + 128)


def test_ctkd_counts_its_learned_temperature():
    assert distiller("ctkd").extra_parameters() == 1


def test_simkd_counts_its_projector_but_not_the_reused_frozen_classifier():
    """The projector from resnet8's last stage (64 channels) to resnet32x4's (256), factor 2 (128 in the middle):
    1x1 64->128, 3x3 128->128, 1x1 128->256, bias-free, each with a BatchNorm."""
    projector = 64 * 128 + 2 * 128 + 9 * 128 * 128 + 2 * 128 + 128 * 256 + 2 * 256
    assert distiller("simkd").extra_parameters() == projector


def test_kdzoo_list_methods_counts_on_resnet32x4_to_resnet8x4():
    text = list_methods_text()
    assert "here for resnet32x4 -> resnet8x4 on CIFAR-100" in text
    blocks, name = {}, None
    for line in text.splitlines():
        if re.fullmatch(r"[a-z_]+", line):
            name = line
            blocks[name] = []
        elif name and line.startswith("    "):
            blocks[name].append(line.strip())
    assert "extra params: 0" in blocks["kd"]
    assert "extra params: 16,768" in blocks["fitnet"]  # resnet8x4's feat[2]: 1x1 conv 128 -> 128 and a BatchNorm


@pytest.mark.parametrize("method", [None, "fitnet"])
def test_runs_report_the_extra_parameters(cli, tiny_teacher, tmp_path, method):
    """resnet8 from the tiny resnet14 teacher: FitNet's hint maps have 32 channels on both sides (16x16)."""
    args = ["distill", "--teacher", tiny_teacher, "--method", method] if method else ["train"]
    code, out, err = cli(*args, "--model", "resnet8", *TINY, "--epochs", "1", "--output-dir", tmp_path, "--name", "r")
    assert code == 0, err
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    expected = 32 * 32 + 32 + 2 * 32 if method else 0
    assert summary["extra_params"] == expected
    student = sum(p.numel() for p in create_model("resnet8", num_classes=10).parameters())
    line = f"extra parameters: fitnet adds {expected:,} trainable parameters to resnet8's {student:,}"
    assert (line in out) == bool(method), out
