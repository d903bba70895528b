"""Faults a run survives: a failed checkpoint write (disk full), SIGTERM or Ctrl-C during an epoch or during a
checkpoint write, and a second process on the same run folder. (kill -9 then --resume: tests/test_cli.py.)"""

import errno
import os
import signal
from pathlib import Path

import pytest
import torch

from conftest import ONE_THREAD, TINY, kdzoo_subprocess, wait_for
from kdzoo import Distiller
from kdzoo.engine import trainer
from kdzoo.engine.checkpoint import LAST, read_checkpoint, save_atomic
from kdzoo.engine.finite_watch import NonFiniteWatch
from kdzoo.engine.interrupts import Interrupted, catch_signals
from kdzoo.engine.run_lock import LOCK


def test_a_failed_checkpoint_write_keeps_the_previous_one_and_the_run_resumes(cli, tmp_path, monkeypatch, one_thread):
    real_save = torch.save

    def disk_full_at_epoch_2(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("epoch") == 2 and "optimizer" in obj:
            f.write(b"the first bytes of a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_at_epoch_2)
    run = tmp_path / "full"
    code, _, err = cli("train", "--model", "resnet8", *TINY, "--epochs", "2", "--output-dir", tmp_path,
                       "--name", "full")
    assert code == 2 and "Traceback" not in err
    assert f"Could not write {run / LAST} (No space left on device)" in err and f"--resume {run}" in err
    assert read_checkpoint(run / LAST)["epoch"] == 1  # the previous checkpoint, whole
    assert not list(run.glob("*.tmp"))
    monkeypatch.undo()  # space freed
    code, out, err = cli("train", "--resume", run)
    assert code == 0, err
    assert f"Resuming {run} after epoch 1 of 2" in out and read_checkpoint(run / LAST)["epoch"] == 2


def test_sigterm_during_a_checkpoint_write_waits_for_the_whole_file(tmp_path, monkeypatch):
    real_save = torch.save

    def terminated_while_saving(obj, f, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to this process while the file is half written
        f.write(b"half")
        f.seek(0)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", terminated_while_saving)
    path = tmp_path / LAST
    with catch_signals(), pytest.raises(Interrupted) as caught:
        save_atomic({"model": {"w": torch.arange(3.0)}}, path)
    assert caught.value.signal_name == "SIGTERM"
    assert torch.equal(read_checkpoint(path)["model"]["w"], torch.arange(3.0))
    assert [p.name for p in tmp_path.iterdir()] == [LAST]  # no temporary file left behind


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stopped_run_keeps_its_finished_epochs_and_one_writer_at_a_time(cli, tmp_path, sig, one_thread):
    args = ["train", "--model", "resnet8", *TINY, "--epochs", "40", "--output-dir", tmp_path, "--name", "run"]
    run = tmp_path / "run"
    victim = kdzoo_subprocess(*args, env=ONE_THREAD)
    wait_for(run / LAST, victim)
    if sig == signal.SIGTERM:  # while it runs, a second process on its folder is refused
        for second in (["train", "--resume", run], args):
            code, _, err = cli(*second)
            assert code == 2 and f"in use by another kdzoo process (pid {victim.pid}" in err, err
        assert (run / LOCK).read_text().strip() == f"pid {victim.pid}"
    victim.send_signal(sig)
    output, _ = victim.communicate(timeout=120)
    assert victim.returncode == 128 + sig and "Traceback" not in output, output
    assert f"Every finished epoch is saved in {run}; continue with `kdzoo train --resume {run}`" in output
    done = read_checkpoint(run / LAST)["epoch"]
    assert 1 <= done < 40 and not list(run.glob("*.tmp"))
    code, out, err = cli("train", "--resume", run, "--epochs", done + 1)  # the lock went with the process
    assert code == 0, err
    assert f"Resuming {run} after epoch {done} of {done + 1}" in out


def test_non_finite_watch_keeps_the_first_bad_step_and_its_terms():
    watch = NonFiniteWatch(torch.device("cpu"), every=4)
    for step in range(6):
        bad = float("nan") if step >= 2 else 1.0
        watch.record(step, {"ce": torch.tensor(bad * (step + 1)), "kd": torch.tensor(float(step))})
        if step == 1:
            assert watch.first_bad() is None
    step, values = watch.first_bad()
    assert step == 2 and values["kd"] == 2.0 and values["ce"] != values["ce"]  # NaN
    assert [watch.due(s) for s in range(8)] == [False, False, False, True] * 2


def test_a_non_finite_loss_stops_within_one_logging_interval_and_keeps_the_last_good_epoch(
        cli, tiny_teacher, tmp_path, monkeypatch):
    """The host looks at the loss every LOG_EVERY steps only (no device sync per step); a NaN from epoch 2's second
    step stops the run at that interval's end, and epoch 1 stays saved."""
    monkeypatch.setattr(trainer, "LOG_EVERY", 4)
    calls = {"steps": 0, "backward": 0}
    step, backward_step = Distiller.step, trainer.Trainer.backward_step

    def poisoned(self, batch, teacher_out=None):
        calls["steps"] += 1
        terms, student_out = step(self, batch, teacher_out)
        if calls["steps"] > 12 + 1:  # 12 steps per epoch: epoch 2 from its second step
            terms = {name: value * float("nan") for name, value in terms.items()}
        return terms, student_out

    def counted(self, terms, loss):
        calls["backward"] += 1
        backward_step(self, terms, loss)

    monkeypatch.setattr(Distiller, "step", poisoned)
    monkeypatch.setattr(trainer.Trainer, "backward_step", counted)
    args = [a if a != "32" else "8" for a in TINY]  # batch 8: 12 steps per epoch
    code, _, err = cli("distill", "--teacher", tiny_teacher, "--student", "resnet8", *args, "--epochs", "3",
                       "--output-dir", tmp_path, "--name", "nan")
    assert code != 0 and "non-finite at epoch 2, step 2 " in err, err
    assert calls["backward"] == 12 + 4  # stopped at the end of epoch 2's first interval of 4 steps
    assert read_checkpoint(tmp_path / "nan" / LAST)["epoch"] == 1
    assert len((tmp_path / "nan" / "metrics.csv").read_text().splitlines()) == 2


def test_an_interrupted_demo_is_continued_by_running_the_demo_again(monkeypatch, capsys):
    """`kdzoo demo` has no --resume: it resumes its unfinished run when run again, and the message says so."""
    from kdzoo.commands import demo, main

    def interrupted(**_):
        raise Interrupted("SIGTERM", Path("runs/demo/teacher"))

    monkeypatch.setattr(demo, "run_demo", interrupted)
    assert main(["demo"]) == 143
    message = capsys.readouterr().err
    assert "`kdzoo demo`" in message and "runs/demo/teacher" in message and "--resume" not in message
    to_train = Interrupted("SIGINT", Path("runs/demo/teacher")).message("train")
    assert "`kdzoo train --resume runs/demo/teacher`" in to_train
