"""The speed benchmark (and so benchmarks/gpu.sh, which runs it), its teacher-cache variants, and the method-overhead
benchmark work end to end, on tiny sizes on the CPU."""

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
    assert any(line.startswith("no loop that runs this arithmetic") for line in table), done.stdout  # the ceiling


@pytest.mark.slow
def test_the_speed_benchmark_fills_and_reads_the_teacher_cache_on_fashion_mnist_shaped_data():
    """cache-fill computes every timed batch, cache-read and cache-unverified read every one back (KD: a logit
    method), the first verifying one batch, the second none."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / "speed.py"), "--dry", "--device", "cpu",
                           "--dataset-shape", "fashion_mnist", "--variants", "baseline", "kdzoo", "cache-fill",
                           "cache-read", "cache-unverified"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, **ONE_THREAD})
    assert done.returncode == 0, done.stderr
    table = done.stdout.splitlines()
    assert "fashion_mnist-shaped data (10 classes, 1 x 32 x 32)" in table[0]
    for variant in ("baseline", "kdzoo", "cache-fill", "cache-read", "cache-unverified"):
        assert any(line.startswith(variant + " ") for line in table), done.stdout
    assert "cache-fill: 0 batches read from the teacher cache (hits), 2 computed" in done.stdout
    assert "cache-read: 2 batches read from the teacher cache (hits), 0 computed" in done.stdout
    assert "cache-unverified: 2 batches read from the teacher cache (hits), 0 computed and written (misses) in the " \
           "timed epochs (--teacher-cache-verify none)" in done.stdout


@pytest.mark.slow
def test_the_method_overhead_benchmark_prints_time_flops_and_memory_over_kd():
    done = subprocess.run([sys.executable, str(BENCHMARKS / "method_overhead.py"), "--teacher", "resnet8", "--student",
                           "resnet8", "--methods", "kd", "fitnet", "--batch-size", "8", "--steps", "1", "--warmup", "0",
                           "--rounds", "1", "--num-data", "64", "--device", "cpu"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, **ONE_THREAD})
    assert done.returncode == 0, done.stderr
    lines = map(str.split, done.stdout.splitlines())
    rows = {cells[0]: cells[1:] for cells in lines if cells[:1] in (["kd"], ["fitnet"])}
    assert float(rows["kd"][2]) == 1.0  # FLOPs / KD of KD itself
    assert float(rows["fitnet"][2]) > 1.0  # FitNet's regressor adds convolutions to KD's step
