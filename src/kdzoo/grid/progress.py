"""What ``kdzoo bench`` prints as a grid advances: a result line per finished run with the time the rest of
the grid should take, and how many threads each concurrent run gets."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..run_folder import read_summary


def available_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells it, else all)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_job(jobs: int, cores: int) -> tuple[int, str]:
    """Torch threads for each of ``jobs`` concurrent CPU runs on ``cores`` cores, and the line that says so."""
    threads = max(1, cores // jobs)
    text = (f"--jobs {jobs} on {cores} CPU core(s): each run computes with {threads} thread(s) "
            f"(OMP_NUM_THREADS={threads})")
    if jobs > cores:
        text += f"; {jobs} runs still share {cores} core(s), so --jobs {cores} finishes the grid as fast"
    return threads, text + "."


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes} min" if minutes else f"{seconds:.0f} s"


class GridClock:
    """Times the runs this command trains, to estimate how long the ones left take."""

    def __init__(self, total: int):
        self.total = total
        self.start = time.monotonic()
        self.trained = 0

    def result_line(self, name: str, run_dir: Path, error: str | None, done: int) -> str:
        """``name: <result>`` after a run this command trained ended; ``done`` runs of the grid have ended."""
        self.trained += 1
        if error is None:
            summary = read_summary(run_dir) or {}
            text = (f"{name}: done, top-1 last {summary.get('last_top1', float('nan')):.2f}% best "
                    f"{summary.get('best_top1', float('nan')):.2f}%, {summary.get('train_time_s', 0.0):.0f} s")
        else:
            text = f"{name}: FAILED: {error}"
        left = self.total - done
        if left:
            per_run = (time.monotonic() - self.start) / self.trained
            text += f" [{done}/{self.total} runs ended; about {_duration(per_run * left)} for the {left} left]"
        return text
