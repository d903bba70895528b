import os
import subprocess
import sys
from pathlib import Path

import pytest

from kdzoo.cli import main

# Small, fast settings for end-to-end runs on the synthetic dataset.
TINY = ["--dataset", "synthetic", "--dataset-opt", "num_train=96", "--dataset-opt", "num_test=64",
        "--batch-size", "32", "--no-progress", "--no-tensorboard", "--device", "cpu"]


@pytest.fixture
def cli(capsys):
    """Run ``kdzoo ARGS`` in-process; returns (exit code, stdout, stderr)."""

    def run(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def kdzoo_subprocess(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "kdzoo", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> Path:
    """A kdzoo run folder holding a resnet14 trained for 1 epoch on the tiny synthetic data."""
    out = tmp_path_factory.mktemp("teacher")
    assert main(["train", "--model", "resnet14", *TINY, "--epochs", "1", "--output-dir", str(out), "--name", "t"]) == 0
    return out / "t"
