"""End-to-end on real Fashion-MNIST files (Debian's dataset-fashion-mnist): teacher, KD, eval, demo."""

import json
from pathlib import Path

import pytest

from kdzoo.data import build_data
from kdzoo.errors import KdzooError


def _have_fashion_mnist() -> bool:
    try:
        build_data("fashion_mnist", test_subset=1, train_subset=1)
    except KdzooError:
        return False
    return True


pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not _have_fashion_mnist(),
                                 reason="Fashion-MNIST files not installed (apt-get install dataset-fashion-mnist)")]

SMALL = ["--dataset", "fashion_mnist", "--train-subset", "640", "--test-subset", "320", "--batch-size", "64",
         "--epochs", "1", "--no-progress", "--no-tensorboard", "--device", "cpu"]


def test_teacher_then_kd_then_eval_on_fashion_mnist(cli, tmp_path):
    code, out, err = cli("train", "--model", "resnet14", *SMALL, "--output-dir", tmp_path, "--name", "teacher")
    assert code == 0, err
    code, out, err = cli("distill", "--teacher", tmp_path / "teacher", "--student", "resnet8", "--method", "kd",
                         *SMALL, "--output-dir", tmp_path, "--name", "kd")
    assert code == 0, err
    assert "Teacher test top-1" in out
    summary = json.loads((tmp_path / "kd" / "summary.json").read_text())
    assert summary["dataset"] == "fashion_mnist" and summary["teacher_top1"] is not None
    code, out, err = cli("eval", tmp_path / "kd" / "checkpoint_best.pt", "--device", "cpu")
    assert code == 0, err
    assert f"top-1 {summary['best_top1']:.2f}%" in out  # eval reproduces the best epoch's test accuracy


@pytest.mark.slow
def test_quick_demo_prints_the_table_and_writes_the_plot(cli, tmp_path):
    code, out, err = cli("demo", "--quick", "--output-dir", tmp_path / "demo", "--device", "cpu")
    assert code == 0, err
    for label in ("teacher", "vanilla student (CE)", "KD student", "best top-1", "images/s"):
        assert label in out
    plot = Path(tmp_path / "demo" / "accuracy.png")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a second run reuses the finished runs instead of training again
    code, out, _ = cli("demo", "--quick", "--output-dir", tmp_path / "demo", "--device", "cpu")
    assert code == 0 and out.count("reusing finished run") == 3
