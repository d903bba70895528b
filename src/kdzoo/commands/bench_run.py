"""``python -m kdzoo.commands.bench_run PARENT_PID ARGS...``: ``kdzoo ARGS`` as ``kdzoo bench --jobs N`` starts each
of its runs (:mod:`kdzoo.grid.child_runs`): on Linux it first asks for SIGTERM when its parent, the grid, dies (the
parent-death signal), and stops at once if the grid has ended already."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def follow_parent(parent: int) -> None:
    """SIGTERM this process when its parent ends (Linux; elsewhere nothing: the run folder's lock shows an orphan to a
    rerun of the grid); at once when ``parent`` is no longer its parent (it ended before this call)."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    follow_parent(int(sys.argv[1]))
    from . import main

    sys.exit(main(sys.argv[2:]))
