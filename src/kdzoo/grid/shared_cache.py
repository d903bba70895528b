"""The teacher cache a grid's runs share (``kdzoo bench`` keeps one in ``<out>/teacher_cache`` unless
``--no-teacher-cache``): which runs use it, which run fills each key's cache before the others read it, and what the
grid's runs saved."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..config import RunConfig
from ..engine.teacher_cache import cache_refusal, shared_key
from ..resolved import resolve_run
from ..run_folder import read_summary
from .job import Job

FOLDER = "teacher_cache"  # in the grid's output folder


def cache_folder(cfg: RunConfig, default: str | None) -> str | None:
    """A grid run's teacher cache: none where the cache cannot serve it (:func:`cache_refusal`) or when ``default``
    is None (``--no-teacher-cache``), else the folder the grid names (``common:``, ``--set``, a ``methods:`` item),
    else ``default``."""
    if default is None or cache_refusal(resolve_run(cfg)) is not None:
        return None
    return cfg.teacher_cache or default


def fill_first(jobs: list[Job]) -> None:
    """Make each run that would read a cache key's outputs wait for the first run of that key (its filler, which
    computes and writes them): in grid order, which is also the order of ``--jobs 1``. Keys are compared on what
    the configs tell (:func:`shared_key`): runs it puts together whose teacher files differ only miss."""
    fillers: dict[str, str] = {}
    for job in jobs:
        if job.cfg.teacher_cache is not None:
            key = shared_key(job.cfg)
            if key in fillers:
                job.after += (fillers[key],)
            else:
                fillers[key] = job.name


def plan_lines(jobs: list[Job], enabled: bool) -> list[str]:
    """What the grid prints of its teacher cache before it runs: the folder, the runs that fill and read it, and
    which runs do without it and why."""
    if not enabled:
        return ["teacher cache: off (--no-teacher-cache)"]
    users = [j for j in jobs if j.cfg.teacher_cache is not None]
    lines = []
    if users:
        fillers = len({shared_key(j.cfg) for j in users})
        folders = ", ".join(dict.fromkeys(j.cfg.teacher_cache for j in users))
        lines.append(f"teacher cache: {folders} for the {len(users)} runs of {_labels(users)}; per teacher, seed "
                     f"and data the first run fills it, the others then read it ({fillers} fill, "
                     f"{len(users) - fillers} read)")
    refused: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        reason = cache_refusal(resolve_run(job.cfg))
        if reason is not None:
            refused[reason].append(job)
    lines += [f"teacher cache: not used by {_labels(runs)}: {reason}" for reason, runs in refused.items()]
    return lines


def _labels(jobs: list[Job]) -> str:
    return ", ".join(dict.fromkeys(j.variant for j in jobs))


def totals_line(out_dir: Path, jobs: list[Job]) -> str | None:
    """The grid's teacher-cache totals over its finished runs (``summary.json``'s ``teacher_cache``), None when none
    used it."""
    records = [s["teacher_cache"] for j in jobs if (s := read_summary(out_dir / j.name)) and s.get("teacher_cache")]
    if not records:
        return None
    saved = sum(r["teacher_time_saved_s"] for r in records)
    failed = sum(r.get("write_error") is not None for r in records)
    return (f"teacher cache: {sum(r['hits'] for r in records)} batches read (hits), "
            f"{sum(r['misses'] for r in records)} computed (misses) by {len(records)} runs; {saved:.1f} s of teacher "
            f"forwards saved" + (f"; {failed} run(s) could not write to it (their summary.json says why)"
                                 if failed else ""))
