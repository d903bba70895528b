"""`kdzoo bench` beside other processes on the same run folders: a folder whose lock another process holds (an orphaned
run of a killed bench, another bench on the same --out) is left alone and reported, never cleared or run twice; the
runs of a bench killed with kill -9 stop with it (Linux); a finished folder that lost files is trained again; grid
seeds stay within the seeds a run takes."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import kdzoo_subprocess, wait_for
from kdzoo.engine.checkpoint import LAST
from kdzoo.errors import ConfigError
from kdzoo.grid.folders import holder
from kdzoo.grid.grid_file import load_grid, parse_grid
from kdzoo.grid.plan import plan
from kdzoo.grid.runner import FINISHED, run_state
from kdzoo.run_folder import read_metrics

COMMON = {"dataset": "synthetic", "dataset_options": {"num_train": 96, "num_test": 64}, "batch_size": 32,
          "progress": False, "tensorboard": False, "device": "cpu", "epochs": 1}
VANILLA, KD = "vanilla_resnet8_seed0", "resnet14-resnet8_kd_seed0"


def write_grid(tmp_path: Path, teacher: Path, epochs: int = 1, **changes) -> Path:
    grid = {"common": {**COMMON, "epochs": epochs}, "teachers": {"resnet14": str(teacher)},
            "pairs": ["resnet14 -> resnet8"], "methods": ["vanilla", "kd"], "seeds": [0], **changes}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid), encoding="utf-8")
    return path


# Holds a run folder's lock as a run that a killed bench left training would; on a line on stdin it "finishes" (puts
# back the last checkpoint and summary it was writing) and ends.
ORPHAN = """
import shutil, sys
from pathlib import Path
from kdzoo.file_lock import FileLock
run, done = Path(sys.argv[1]), Path(sys.argv[2])
lock = FileLock.try_acquire(run / "run.lock")
print("holding", flush=True)
sys.stdin.readline()
for f in done.iterdir():
    shutil.move(f, run / f.name)
"""


@pytest.mark.slow
def test_a_run_held_by_an_orphan_is_left_alone_reported_and_never_run_twice(cli, tmp_path, tiny_teacher):
    grid, out = write_grid(tmp_path, tiny_teacher, epochs=2), tmp_path / "runs"
    code, _, err = cli("bench", "--grid", grid, "--out", out)
    assert code == 0, err
    kd = out / KD
    done = tmp_path / "done"
    done.mkdir()
    for name in (LAST, "summary.json"):  # the orphan is in its first epoch: what it writes later is not there yet
        shutil.move(kd / name, done / name)
    shutil.copy(kd / "metrics.csv", done / "metrics.csv")
    (kd / "metrics.csv").write_text((kd / "metrics.csv").read_text().splitlines(keepends=True)[0])
    kept = {p.name: p.read_bytes() for p in kd.iterdir() if p.is_file() and p.name != "run.lock"}
    orphan = subprocess.Popen([sys.executable, "-c", ORPHAN, kd, done], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert orphan.stdout.readline() == "holding\n"
        code, text, _ = cli("bench", "--grid", grid, "--out", out, "--jobs", "2")
        assert {p.name: p.read_bytes() for p in kd.iterdir() if p.is_file() and p.name != "run.lock"} == kept
        held = f"held by pid {orphan.pid} (another kdzoo bench?)"
        assert code == 1 and f"{KD}: {held}, left alone" in text
        assert "1 of 2 runs finished (1 of them before this command); 1 left alone, held by another process" in text
        assert f"  {KD}: {held}" in text
        code, text, _ = cli("bench", "--grid", grid, "--out", out, "--dry-run")
        assert code == 0 and f"  {KD}: {held}, 2 epochs" in text
    finally:
        orphan.communicate("finish\n", timeout=60)
    code, text, err = cli("bench", "--grid", grid, "--out", out)
    assert code == 0, err
    assert f"{KD}: finished already, skipped" in text
    assert len(read_metrics(kd)) == 2  # the orphan's two epochs, nothing appended
    code, _, err = cli("report", out)
    assert code == 0, err


@pytest.mark.slow
def test_a_finished_run_that_lost_its_config_is_trained_again_not_called_finished(cli, tmp_path, tiny_teacher):
    grid, out = write_grid(tmp_path, tiny_teacher, methods=["vanilla"]), tmp_path / "runs"
    assert cli("bench", "--grid", grid, "--out", out)[0] == 0
    (out / VANILLA / "config.yaml").unlink()  # as a concurrent bench deleted it before this fix
    code, text, _ = cli("bench", "--grid", grid, "--out", out, "--dry-run")
    assert code == 0 and f"  {VANILLA}: damaged (summary.json without config.yaml: to train again), 1 epoch" in text
    code, text, err = cli("bench", "--grid", grid, "--out", out)
    assert code == 0, err
    assert f"{VANILLA}: retraining (its summary.json is there, its config.yaml lost)" in text
    assert run_state(out / VANILLA) == FINISHED and len(read_metrics(out / VANILLA)) == 1
    code, _, err = cli("report", out)
    assert code == 0, err


def gone(pid: int) -> bool:
    """The process ended (a zombie left for its new parent to reap counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_the_runs_of_a_bench_killed_with_kill_9_stop_with_it_and_a_rerun_trains_each_once(cli, tmp_path,
                                                                                           tiny_teacher):
    grid, out = write_grid(tmp_path, tiny_teacher, epochs=3), tmp_path / "runs"
    runs = [out / VANILLA, out / KD]
    bench = kdzoo_subprocess("bench", "--grid", grid, "--out", out, "--jobs", "2")
    for run in runs:  # locked from the grid's look at the folder on, through the run's start: no moment unguarded
        wait_for(run / "bench_config.yaml", bench)
        assert holder(run) is not None
    for run in runs:
        wait_for(run / "config.yaml", bench)  # the run has claimed its folder (its pid is in run.lock)
    children = [int((run / "run.lock").read_text().split()[1]) for run in runs]
    bench.kill()
    bench.wait()
    deadline = time.monotonic() + 120
    while not all(gone(pid) for pid in children):
        assert time.monotonic() < deadline, "the runs of the killed bench are still training"
        time.sleep(0.1)
    for run in runs:
        assert "kdzoo: stopped by SIGTERM." in (run / "output.txt").read_text()
    code, text, err = cli("bench", "--grid", grid, "--out", out)
    assert code == 0, err
    assert all(len(read_metrics(run)) == 3 for run in runs)


@pytest.mark.slow
def test_two_benches_on_one_out_folder_train_each_run_once_and_lose_no_file(cli, tmp_path, tiny_teacher):
    grid = write_grid(tmp_path, tiny_teacher, methods=["vanilla", "kd", "dkd", "nkd"])
    out = tmp_path / "runs"
    first = kdzoo_subprocess("bench", "--grid", grid, "--out", out, "--jobs", "2")
    wait_for(out / VANILLA / "config.yaml", first)
    second = kdzoo_subprocess("bench", "--grid", grid, "--out", out)
    texts = [process.communicate(timeout=900)[0] for process in (first, second)]
    assert all("Traceback" not in text for text in texts), texts
    for job in plan(load_grid(grid), out):
        run = out / job.name
        assert run_state(run) == FINISHED, texts
        assert {"config.yaml", "summary.json", "bench.json", "log.txt"} <= {p.name for p in run.iterdir()}, texts
        assert len(read_metrics(run)) == 1, texts
        assert sum(text.count(f"{job.name}: starting") for text in texts) == 1, texts
    code, _, err = cli("report", out)
    assert code == 0, err


@pytest.mark.parametrize("change,message", [
    ({"seeds": [0, -1]}, "Grid g `seeds:` seed must be a whole number between 0 and 9223372036854775807, got -1."),
    ({"seeds": 2**63}, "Grid g `seeds:` seed must be a whole number between 0 and 9223372036854775807, got "
                       "9223372036854775808."),
    ({"teacher_seed": -3}, "Grid g `teacher_seed:` must be a whole number between 0 and 9223372036854775807, "
                           "got -3."),
])
def test_grid_seeds_outside_what_a_run_takes_are_refused(change, message):
    with pytest.raises(ConfigError) as refused:
        parse_grid({"pairs": ["resnet14 -> resnet8"], "methods": ["vanilla"], **change}, "g")
    assert str(refused.value) == message
