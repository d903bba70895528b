"""A grid's run folders: the state each is in, and the hold the grid takes on one (its ``run.lock``, the lock the run
itself claims, :mod:`kdzoo.engine.run_lock`) before it acts on that state or changes a file there.

A folder is *finished* when it holds ``summary.json`` and ``config.yaml`` (what ``kdzoo report`` reads); *damaged*
when it holds ``summary.json`` without ``config.yaml`` (files lost: it is trained again); *resumable* with
``config.yaml`` and ``checkpoint_last.pt``; *unstarted* with ``config.yaml`` only (killed during its first epoch);
*new* otherwise. Before a run starts afresh (new, unstarted, damaged) what an earlier try left there is removed, so a
new run never appends to an old ``metrics.csv``. A folder whose lock another process holds (another ``kdzoo bench``
on the same folder, a run a killed one left training, a ``--resume`` by hand) is *held*: the grid leaves it alone and
says by whom. The grid keeps the lock from its look at the folder to the run's own claim, handing it over
(:func:`handed_over`, :mod:`~kdzoo.grid.child_runs`), so that no other process finds the folder unguarded between.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..engine.checkpoint import BEST, LAST
from ..engine.run_lock import HANDED_FD, LOCK
from ..errors import ConfigError
from ..file_lock import FileLock, LockBusy
from ..run_folder import CONFIG, INIT_METRICS, METRICS, RUNTIME_OPTIONS, SUMMARY, load_run_config
from .records import read_info, write_info

FINISHED, DAMAGED, RESUMABLE, UNSTARTED, NEW, HELD = "finished", "damaged", "resumable", "unstarted", "new", "held"
JOB_CONFIG = "bench_config.yaml"   # the job's config, handed to a subprocess
OUTPUT = "output.txt"              # a subprocess's console output
#: What a run that starts afresh must not find: the files of an earlier try.
RUN_FILES = (CONFIG, SUMMARY, LAST, BEST, "log.txt", f"{METRICS}.csv", f"{INIT_METRICS}.csv", OUTPUT, JOB_CONFIG)


def run_state(run_dir: Path) -> str:
    """The folder's state from its files (the lock aside)."""
    if (run_dir / SUMMARY).is_file():
        return FINISHED if (run_dir / CONFIG).is_file() else DAMAGED
    if (run_dir / CONFIG).is_file():
        return RESUMABLE if (run_dir / LAST).is_file() else UNSTARTED
    return NEW


def holder(run_dir: Path) -> str | None:
    """``pid N`` of the process that holds the folder's lock, None when none does (a look: nothing is changed)."""
    if not (run_dir / LOCK).is_file():
        return None
    try:
        FileLock.try_acquire(run_dir / LOCK).release()
    except LockBusy as busy:
        return busy.owner
    return None


def held_text(owner: str) -> str:
    return f"held by {owner} (another kdzoo bench?)"


def clear_unstarted(run_dir: Path) -> None:
    """Remove what an earlier try of a run that never finished (or lost files) left, so it can start afresh."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "tensorboard", ignore_errors=True)


def check_matches(run_dir: Path, cfg: RunConfig) -> None:
    """Refuse to reuse a run folder made with other settings (e.g. another budget)."""
    if not (run_dir / CONFIG).is_file():
        return
    saved = load_run_config(run_dir)
    wanted = cfg.to_dict()
    differ = [k for k, v in wanted.items()
              if k not in RUNTIME_OPTIONS and v is not None and k in saved and saved[k] != v]
    if differ:
        details = ", ".join(f"{k}: {saved[k]!r} there, {wanted[k]!r} now" for k in differ)
        older = (" (runs saved before --data-seed existed drew their subsets from their run seed)"
                 if "data_seed" in differ else "")
        raise ConfigError(f"{run_dir} holds a run with other settings ({details}){older}. Use another --out folder, "
                          f"or delete that run folder to redo it.")


@dataclass
class Claim:
    """A run folder as the grid found it: its state and the lock the grid holds on it (None when ``owner``, another
    process, holds it: state :data:`HELD`)."""

    run_dir: Path
    state: str
    lock: FileLock | None = None
    owner: str | None = None

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


def claim_folder(run_dir: Path, cfg: RunConfig, info: dict[str, Any] | None = None) -> Claim:
    """Lock ``run_dir`` (created if missing), then read its state and make it ready: a run that starts afresh finds
    no file of an earlier try, ``bench.json`` holds ``info``. A folder held by another process is left as it is; a
    finished one is only read (and its ``bench.json`` updated)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = FileLock.try_acquire(run_dir / LOCK)
    except LockBusy as busy:
        return Claim(run_dir, HELD, owner=busy.owner)
    try:
        state = run_state(run_dir)
        check_matches(run_dir, cfg)
        if state in (NEW, UNSTARTED, DAMAGED):
            clear_unstarted(run_dir)
        if info is not None and read_info(run_dir) != info:
            write_info(run_dir, info)
    except BaseException:
        lock.release()
        raise
    return Claim(run_dir, state, lock)


@contextmanager
def handed_over(lock: FileLock) -> Iterator[None]:
    """Within the block, the run this process trains takes ``lock`` over when it claims its folder (a ``dup`` of the
    descriptor, :data:`~kdzoo.engine.run_lock.HANDED_FD`); the grid's own hold ends with the block. (Windows, whose
    locks are not shared that way: the grid lets go first.)"""
    if os.name == "nt":
        lock.release()
        yield
        return
    fd = os.dup(lock.fileno())
    os.environ[HANDED_FD] = str(fd)
    try:
        yield
    finally:
        if os.environ.pop(HANDED_FD, None) is not None:  # the run ended before it claimed the folder
            os.close(fd)
        lock.release()
