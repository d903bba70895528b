"""torchrun + DDP on CPU (gloo): 2 processes train 2 steps of KD and of CRD and end with the same
student as one process with the same global batch and seed; a distributed run resumes exactly and
its checkpoints load in a single process; a rank that fails stops the whole job with its error."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from distributed_worker import TinyNoBN
from kdzoo.engine.checkpoint import load_model, read_checkpoint, save_atomic
from kdzoo.models import create_model

pytestmark = pytest.mark.slow  # torchrun jobs: end-to-end

WORKER = str(Path(__file__).with_name("distributed_worker.py"))
# 64 images; global batch 32 = 2 processes x 16: one epoch is 2 optimisation steps.
DATA = ["--dataset", "synthetic", "--dataset-opt", "num_train=64", "--dataset-opt", "num_test=32", "--no-augment",
        "--no-progress", "--no-tensorboard", "--device", "cpu", "--schedule", "constant", "--seed", "3"]


# Each job takes seconds on an idle machine; the limit only catches a hang, with room for a loaded 2-core CI runner
# (a 300 s limit was once hit there while other jobs shared both cores).
HANG_S = 900


def run(args, nproc=1):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable] if nproc == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                     f"--nproc-per-node={nproc}"]
    try:
        return subprocess.run([*launcher, WORKER, *map(str, args)], capture_output=True, text=True, timeout=HANG_S,
                              env=env)
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"the job ran past {HANG_S} s; its output so far:\n{hung.stdout}\n{hung.stderr}")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    path = tmp_path_factory.mktemp("teacher") / "resnet8.pt"
    torch.manual_seed(0)  # a BatchNorm teacher is fine: it runs in eval mode
    save_atomic({"format": "kdzoo", "arch": "resnet8", "num_classes": 10, "in_channels": 3,
                 "model": create_model("resnet8", num_classes=10).state_dict()}, path)
    return path


def student_weights(run_dir):
    return read_checkpoint(Path(run_dir) / "checkpoint_last.pt")["model"]


@pytest.mark.parametrize("method", [["--method", "kd"], ["--method", "crd", "--method-opt", "nce_k=16"]],
                         ids=["kd", "crd"])
def test_two_processes_equal_one_process_with_the_global_batch(teacher, tmp_path, method):
    common = ["distill", "--teacher", teacher, "--student", "tiny_nobn", *method, *DATA, "--epochs", "1",
              "--output-dir", tmp_path]
    one = run([*common, "--batch-size", "32", "--name", "one"])
    assert one.returncode == 0, one.stderr
    two = run([*common, "--batch-size", "16", "--name", "two"], nproc=2)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("done:") == 1  # only rank 0 reports
    a, b = student_weights(tmp_path / "one"), student_weights(tmp_path / "two")
    assert set(a) == set(b)
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5, rtol=1e-4), key
    torch.manual_seed(3)
    untrained = TinyNoBN(10, 3).state_dict()
    assert all(untrained[k].shape == a[k].shape for k in a) and any(not torch.equal(a[k], untrained[k]) for k in a)
    if "crd" in method:  # the memory banks stay identical to the single process's
        banks_one = read_checkpoint(tmp_path / "one" / "checkpoint_last.pt")["objective"]
        banks_two = read_checkpoint(tmp_path / "two" / "checkpoint_last.pt")["objective"]
        assert torch.allclose(banks_one["method.memory.memory_s"], banks_two["method.memory.memory_s"], atol=1e-5)


def test_a_distributed_run_resumes_exactly_and_loads_in_one_process(teacher, tmp_path):
    common = ["distill", "--teacher", teacher, "--student", "resnet8", "--method", "kd", *DATA, "--batch-size", "16",
              "--output-dir", tmp_path]
    full = run([*common, "--epochs", "2", "--name", "full"], nproc=2)
    assert full.returncode == 0, full.stderr
    half = run([*common, "--epochs", "1", "--name", "half"], nproc=2)
    assert half.returncode == 0, half.stderr
    resumed = run(["distill", "--resume", tmp_path / "half", "--epochs", "2", "--extend"], nproc=2)
    assert resumed.returncode == 0, resumed.stderr
    a, b = student_weights(tmp_path / "full"), student_weights(tmp_path / "half")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    model, data = load_model(tmp_path / "full")
    assert data["epoch"] == 2 and not any(k.startswith("module.") for k in data["model"])


def test_a_failing_rank_stops_the_job_with_its_error(teacher, tmp_path):
    result = run(["distill", "--teacher", teacher, "--student", "tiny_fails_on_rank1", "--method", "kd", *DATA,
                  "--batch-size", "16", "--epochs", "1", "--output-dir", tmp_path, "--name", "fail"],
                 nproc=2)
    assert result.returncode != 0
    assert "simulated failure on rank 1" in result.stderr


def test_settings_refused_outside_torchrun(cli, teacher, tmp_path):
    code, _, err = cli("distill", "--teacher", teacher, "--student", "resnet8", "--sync-bn", *DATA, "--epochs", "1",
                       "--output-dir", tmp_path)
    assert code == 2 and "SyncBatchNorm" in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(args):
    """Two torchrun "nodes" on this machine, one process each, meeting at a c10d rendezvous on 127.0.0.1."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
                "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-id", "kdzoo-test",
                "--monitor-interval", "0.1", WORKER, *map(str, args)]
    return [subprocess.Popen(launcher, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                             start_new_session=True) for _ in range(2)]


def node_processes(launcher: subprocess.Popen) -> list[int]:
    """A launcher and its workers (torchrun starts each worker in a session of its own)."""
    tasks = Path(f"/proc/{launcher.pid}/task")
    return [launcher.pid, *(int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split())]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds a node's processes through /proc")
def test_two_nodes_train_like_one_and_a_lost_node_ends_the_job_clearly(teacher, tmp_path):
    common = ["distill", "--teacher", teacher, "--student", "tiny_nobn", "--method", "kd", *DATA, "--batch-size", "16",
              "--output-dir", tmp_path]
    nodes = two_nodes([*common, "--epochs", "100", "--name", "two_nodes"])
    try:
        last = tmp_path / "two_nodes" / "checkpoint_last.pt"
        deadline = time.monotonic() + HANG_S
        while not last.exists():
            assert all(n.poll() is None for n in nodes) and time.monotonic() < deadline, nodes[0].communicate()[0]
            time.sleep(0.05)
        saved = read_checkpoint(last)  # some epoch k >= 1 of the two-node job
        for pid in node_processes(nodes[1]):  # the second node fails: its launcher and its worker die
            os.kill(pid, signal.SIGKILL)
        # The survivor must notice at once (a closed connection), not through the 10-minute collective timeout.
        output, _ = nodes[0].communicate(timeout=480)
    finally:
        for n in nodes:
            n.kill()
    assert nodes[0].returncode != 0
    assert re.search(r"kdzoo: error \(rank \d\): lost contact with another process of the torchrun job", output), output
    assert "]: Traceback" not in output  # the worker's own output: one clear line, no traceback
    # The constant schedule makes epoch k of the 100-epoch job a k-epoch job's end: compare with one node x 2 processes.
    one = run([*common, "--epochs", saved["epoch"], "--name", "one_node"], nproc=2)
    assert one.returncode == 0, one.stderr
    single = student_weights(tmp_path / "one_node")
    assert all(torch.equal(saved["model"][k], single[k]) for k in single)
