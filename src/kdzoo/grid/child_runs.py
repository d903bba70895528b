"""The runs ``kdzoo bench --jobs N`` starts as subprocesses: each holds its run folder's lock from its first instant
(inherited from the grid, :data:`~kdzoo.engine.run_lock.HANDED_FD`), runs in its own process group (a Ctrl-C reaches
the grid alone, which then stops its runs, :func:`stop`), and ends with the grid where the OS allows it: on Linux the
run asks at start for SIGTERM when its parent dies (``kdzoo.commands.bench_run``), so a grid killed with ``kill -9``
leaves no run training on. Elsewhere such an orphan keeps its folder's lock, and a rerun of the grid leaves it alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import IO

from ..engine.run_lock import HANDED_FD
from ..file_lock import FileLock

#: The module a run subprocess runs: ``kdzoo ARGS`` after ``follow_parent(PARENT_PID)``.
ENTRY = "kdzoo.commands.bench_run"


def run_command(args: list[str]) -> list[str]:
    """The command line of a run subprocess doing ``kdzoo ARGS``, ended with this process."""
    return [sys.executable, "-m", ENTRY, str(os.getpid()), *args]


def start(command: list[str], lock: FileLock, log: IO[str], env: dict[str, str]) -> subprocess.Popen:
    """Start ``command`` with its output in ``log``, handing it ``lock`` (its descriptor kept open in the child),
    then let the grid's own hold go. (Windows: the grid lets go first, and the run claims the folder anew.)"""
    if os.name == "nt":
        lock.release()
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        fd = lock.fileno()
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**env, HANDED_FD: str(fd)},
                                pass_fds=(fd,), start_new_session=True)
    finally:
        lock.release()


def stop(process: subprocess.Popen) -> None:
    """Stop a run as Ctrl-C would (SIGTERM to its process group: the run writes no half checkpoint) and wait."""
    if process.poll() is None:
        try:
            if os.name == "nt":
                process.terminate()
            else:
                os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    process.wait()
