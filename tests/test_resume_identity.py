"""A run's identity is its config, its teacher's bytes and its data; run folders get names of their own; a full disk
and a killed writer leave nothing behind (issue 32: items 2, 3, 9 and the auto-named folders)."""

import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import TINY, one_paragraph_error
from kdzoo.config import build_config
from kdzoo.engine.checkpoint import LAST
from kdzoo.engine.run_lock import LOCK, RunLock
from kdzoo.file_lock import FileLock
from kdzoo.run_folder import CONFIG, create_run_dir

ONE_EPOCH = [*TINY, "--dataset-opt", "num_train=64", "--dataset-opt", "num_test=32", "--epochs", "1"]


def other_teacher(teacher_run, path):
    """A teacher file at ``path`` with the architecture of ``teacher_run``'s but other weights."""
    data = torch.load(teacher_run / LAST, weights_only=True)
    data["model"] = {k: v + 1 if v.is_floating_point() else v for k, v in data["model"].items()}
    torch.save(data, path)
    return path


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def kd_run(cli, tiny_teacher, tmp_path):
    """A one-epoch KD run from the teacher file ``tmp_path/t.pt`` (a copy of the tiny teacher's checkpoint)."""
    teacher = tmp_path / "t.pt"
    shutil.copy(tiny_teacher / LAST, teacher)
    code, _, err = cli("distill", "--teacher", teacher, "--student", "resnet8", *ONE_EPOCH,
                       "--output-dir", tmp_path, "--name", "kd")
    assert code == 0, err
    return tmp_path / "kd"


def test_resume_with_another_teacher_is_refused(cli, kd_run, tiny_teacher, tmp_path):
    config = (kd_run / CONFIG).read_bytes()
    other = other_teacher(tiny_teacher, tmp_path / "other.pt")
    code, _, err = cli("distill", "--resume", kd_run, "--epochs", "2", "--extend", "--teacher", other)
    one_paragraph_error(code, err)
    assert f"teacher: '{tmp_path / 't.pt'}' in the checkpoint, '{other}' now" in err
    assert (kd_run / CONFIG).read_bytes() == config


def test_resume_with_other_teacher_bytes_at_the_same_path_is_refused(cli, kd_run, tiny_teacher, tmp_path):
    teacher, config = tmp_path / "t.pt", (kd_run / CONFIG).read_bytes()
    before = sha256(teacher)
    other_teacher(tiny_teacher, teacher)  # replaced in place: same path, other weights
    code, _, err = cli("distill", "--resume", kd_run, "--epochs", "2", "--extend")
    one_paragraph_error(code, err)
    assert f"SHA-256 {before} in the checkpoint" in err and f"SHA-256 {sha256(teacher)} now" in err, err
    assert (kd_run / CONFIG).read_bytes() == config


@pytest.mark.parametrize("flag", [["--data-root", "elsewhere"], ["--seed", "1"], ["--dataset-opt", "num_train=32"]],
                         ids=["data-root", "seed", "dataset-opt"])
def test_resume_with_other_data_or_a_non_runtime_option_is_refused(cli, kd_run, flag):
    config = (kd_run / CONFIG).read_bytes()
    code, _, err = cli("distill", "--resume", kd_run, "--epochs", "2", "--extend", *flag)
    one_paragraph_error(code, err)
    assert "would change settings the run was trained with" in err, err
    assert (kd_run / CONFIG).read_bytes() == config


def test_a_runtime_override_keeps_the_teacher_and_data_in_config_yaml(cli, kd_run, tmp_path):
    before = yaml.safe_load((kd_run / CONFIG).read_text())
    assert before["teacher_file"] == {"file": str(tmp_path / "t.pt"), "sha256": sha256(tmp_path / "t.pt")}
    code, _, err = cli("distill", "--resume", kd_run, "--epochs", "2", "--extend", "--num-workers", "1",
                       "--no-eval-teacher")
    assert code == 0, err
    after = yaml.safe_load((kd_run / CONFIG).read_text())
    assert {k: after[k] for k in ("teacher", "data_root", "dataset_options", "teacher_file")} == \
        {k: before[k] for k in ("teacher", "data_root", "dataset_options", "teacher_file")}
    assert (after["epochs"], after["num_workers"], after["eval_teacher"]) == (2, 1, False)  # what was overridden


def test_auto_named_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda fmt, *t: "20260101-120000")  # both runs start in this second
    cfg = build_config(None, {"model": "resnet8", "dataset": "synthetic", "output_dir": str(tmp_path)})
    first = create_run_dir(cfg, None)
    (first / CONFIG).write_text("model: resnet8\n")  # the first run has started
    second = create_run_dir(cfg, None)
    assert first != second and second.name == first.name + "-2" and ":" not in second.name
    RunLock.claim(second, new=True).release()  # the second run starts too, in a folder of its own


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs, filled up (needs the right to mount: root on Linux)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        (disk / "runs").mkdir()
        with open(disk / "fill", "wb", buffering=0) as f, pytest.raises(OSError, match="No space left"):
            while True:
                f.write(b"\0" * 4096)
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)  # lazy: even with a file still open there


def test_a_full_disk_at_the_first_write_names_the_path_and_leaves_no_lock_file(cli, full_disk):
    code, _, err = cli("train", "--model", "resnet8", *ONE_EPOCH, "--output-dir", full_disk / "runs",
                       "--name", "run")
    one_paragraph_error(code, err)
    lock = full_disk / "runs" / "run" / LOCK
    assert f"Could not write {lock} (No space left on device)" in err and "Free some space" in err, err
    assert "--output-dir" in err and not lock.exists()


def test_a_lock_file_that_cannot_be_written_is_named_and_kept_when_it_was_there():
    full = Path("/dev/full")  # refuses every write with ENOSPC: a full disk without mounting one
    if not full.exists():
        pytest.skip("no /dev/full")
    with pytest.raises(OSError, match="No space left") as caught:
        FileLock.try_acquire(full)
    assert caught.value.filename == str(full) and full.exists()  # not created by the lock, so not removed


HOLD = "import sys; from kdzoo.file_lock import FileLock; lock = FileLock.try_acquire(sys.argv[1]); print('held', " \
       "flush=True); sys.stdin.read()"


def test_leftover_temporaries_are_removed_on_resume_but_not_while_the_lock_is_held(cli, tmp_path):
    run = tmp_path / "run"
    code, _, err = cli("train", "--model", "resnet8", *ONE_EPOCH, "--output-dir", tmp_path, "--name", "run")
    assert code == 0, err
    (run / "summary.json").unlink()  # as if killed after its epoch was saved
    leftovers = [run / "checkpoint_last.pt0a1b2c3d.tmp", run / "config.yamlk_9x8y7z.tmp"]
    for path in leftovers:
        path.write_bytes(b"\0" * 650)
    mine = run / "notes.tmp"
    mine.write_text("not kdzoo's")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run / LOCK)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        code, _, err = cli("train", "--resume", run, "--epochs", "2")
        assert code == 2 and "is in use by another kdzoo process" in err, err
        assert all(path.exists() for path in leftovers)  # its writer may be alive
    finally:
        holder.communicate("")
    code, _, err = cli("train", "--resume", run, "--epochs", "2")
    assert code == 0, err
    assert not any(path.exists() for path in leftovers) and mine.read_text() == "not kdzoo's"
