"""The speed benchmark (and so benchmarks/gpu.sh, which runs it) works end to end, on tiny sizes on the CPU."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ONE_THREAD

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


@pytest.mark.slow
def test_the_speed_benchmark_runs_every_eager_variant():
    """With CRD, which also reads features and sample indices (KD's path is a subset of it)."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / "speed.py"), "--dry", "--device", "cpu", "--method", "crd",
                           "--variants", "baseline", "kdzoo", "kdzoo-fp32", "floor"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, **ONE_THREAD})
    assert done.returncode == 0, done.stderr
    table = done.stdout.splitlines()
    for variant in ("baseline", "kdzoo", "kdzoo-fp32", "floor"):
        assert any(line.startswith(variant + " ") for line in table), done.stdout
