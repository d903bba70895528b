"""Run a grid's jobs: skip finished runs, resume interrupted ones, start the rest; one after another
in this process, or several at once as ``python -m kdzoo`` subprocesses (one per device slot).

A run folder is *finished* when it holds ``summary.json``, *resumable* when it holds ``config.yaml``
and ``checkpoint_last.pt``, and *unstarted* when it holds ``config.yaml`` only (killed during its
first epoch): then its files are removed and it starts again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import RunConfig
from ..engine import train
from ..engine.checkpoint import BEST, LAST
from ..errors import ConfigError, KdzooError
from ..run_folder import CONFIG, INIT_METRICS, METRICS, RUNTIME_OPTIONS, SUMMARY, load_run_config, read_summary
from ..text_table import plural
from .grid_file import load_grid
from .job import TEACHER, Job
from .plan import plan
from .progress import GridClock, available_cores, threads_per_job
from .records import Images, write_info
from .shared_cache import plan_lines, totals_line

FINISHED, RESUMABLE, UNSTARTED, NEW = "finished", "resumable", "unstarted", "new"
JOB_CONFIG = "bench_config.yaml"   # the job's config, handed to a subprocess
OUTPUT = "output.txt"              # a subprocess's console output


def run_state(run_dir: Path) -> str:
    if (run_dir / SUMMARY).is_file():
        return FINISHED
    if (run_dir / CONFIG).is_file():
        return RESUMABLE if (run_dir / LAST).is_file() else UNSTARTED
    return NEW


def clear_unstarted(run_dir: Path) -> None:
    """Remove what a run killed before its first checkpoint left behind, so it can start afresh."""
    for name in (CONFIG, "log.txt", f"{METRICS}.csv", f"{INIT_METRICS}.csv", BEST, OUTPUT):
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


def run_in_process(run_dir: Path, cfg: RunConfig) -> dict[str, Any]:
    """Reuse the finished run in ``run_dir``, resume it, or start it with ``cfg``; returns its summary."""
    state = run_state(run_dir)
    if state == FINISHED:
        print(f"reusing finished run {run_dir}", flush=True)
        return read_summary(run_dir)
    if state == RESUMABLE:
        return train(resume=run_dir, overrides={"device": cfg.device, "progress": cfg.progress})
    if state == UNSTARTED:
        clear_unstarted(run_dir)
    return train(cfg)


@dataclass
class Outcome:
    job: Job
    state: str                  # the folder's state before this bench ran it
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _command(job: Job, run_dir: Path, device: str | None) -> list[str]:
    verb = "train" if job.cfg.method is None else "distill"
    base = [sys.executable, "-m", "kdzoo", verb]
    if run_state(run_dir) == RESUMABLE:
        args = ["--resume", str(run_dir)]
    else:
        (run_dir / JOB_CONFIG).write_text(yaml.safe_dump(job.cfg.to_dict(), sort_keys=False), encoding="utf-8")
        args = ["--config", str(run_dir / JOB_CONFIG)]
    return base + args + ["--no-progress"] + (["--device", device] if device else [])


def _last_error(run_dir: Path) -> str:
    text = (run_dir / OUTPUT).read_text(encoding="utf-8", errors="replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("kdzoo: error:")]
    return (errors or lines or ["no output"])[-1]


class Runner:
    """Runs jobs in order, each after the jobs it waits for (``Job.after``: a teacher to train, the run that fills
    the teacher cache first)."""

    def __init__(self, jobs: list[Job], out_dir: Path, info: dict[str, dict[str, Any]],
                 slots: list[str | None] | None = None):
        self.jobs = jobs
        self.out_dir = out_dir
        self.info = info            # job name -> bench.json content
        self.slots = slots          # None: in this process; else one subprocess per slot (a device or None)
        self.outcomes: dict[str, Outcome] = {}
        self.clock = GridClock(len(jobs))

    def prepare(self, job: Job) -> tuple[Path, str]:
        run_dir = self.out_dir / job.name
        state = run_state(run_dir)
        if state == UNSTARTED:
            clear_unstarted(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_info(run_dir, self.info[job.name])
        return run_dir, state

    def blocked(self, job: Job) -> str | None:
        """Why ``job`` cannot run: the teacher it needs failed. (When the run that was to fill the teacher cache
        failed, ``job`` runs all the same, and fills the cache itself.)"""
        failed = [name for name in job.after if name in self.outcomes and not self.outcomes[name].ok
                  and self.outcomes[name].job.role == TEACHER]
        return f"its teacher run {failed[0]} failed" if failed else None

    def run(self) -> list[Outcome]:
        if self.slots is None:
            for number, job in enumerate(self.jobs, start=1):
                self.outcomes[job.name] = self.run_here(job, number)
        else:
            self.run_parallel()
        return [self.outcomes[j.name] for j in self.jobs]

    def announce(self, number: int, job: Job, state: str, where: str = "") -> None:
        verb = {FINISHED: "finished already, skipped", RESUMABLE: "resuming", UNSTARTED: "restarting",
                NEW: "starting"}[state]
        print(f"[{number}/{len(self.jobs)}] {job.name}: {verb}{where}", flush=True)

    def run_here(self, job: Job, number: int) -> Outcome:
        reason = self.blocked(job)
        if reason:
            return Outcome(job, NEW, reason)
        run_dir, state = self.prepare(job)
        self.announce(number, job, state)
        try:
            run_in_process(run_dir, job.cfg)
        except KdzooError as exc:
            print(f"kdzoo: error in {job.name}: {exc}", file=sys.stderr, flush=True)
            outcome = Outcome(job, state, str(exc))
        except Exception as exc:  # noqa: BLE001 - one broken run must not stop the grid
            traceback.print_exc()
            outcome = Outcome(job, state, f"{type(exc).__name__}: {exc}")
        else:
            outcome = Outcome(job, state)
        if state != FINISHED:
            print(self.clock.result_line(job.name, run_dir, outcome.error, number), flush=True)
        return outcome

    def run_parallel(self) -> None:
        pending = list(enumerate(self.jobs, start=1))
        running: dict[int, tuple[Job, str, subprocess.Popen, Any]] = {}   # slot -> job, state, process, output file
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if "OMP_NUM_THREADS" in env:
            print(f"each run computes with OMP_NUM_THREADS={env['OMP_NUM_THREADS']} thread(s), as set", flush=True)
        elif all(s in (None, "cpu") for s in self.slots):
            threads, line = threads_per_job(len(self.slots), available_cores())
            env["OMP_NUM_THREADS"] = str(threads)
            print(line, flush=True)
        try:
            while pending or running:
                for slot, (job, state, proc, log) in list(running.items()):
                    if proc.poll() is not None:
                        log.close()
                        ok = proc.returncode == 0 and run_state(self.out_dir / job.name) == FINISHED
                        error = None if ok else _last_error(self.out_dir / job.name)
                        self.outcomes[job.name] = Outcome(job, state, error)
                        print(self.clock.result_line(job.name, self.out_dir / job.name, error, len(self.outcomes)),
                              flush=True)
                        del running[slot]
                for slot in range(len(self.slots)):
                    while slot not in running:
                        ready = next((p for p in pending if all(a in self.outcomes for a in p[1].after)), None)
                        if ready is None:
                            break
                        pending.remove(ready)
                        self.start(ready, slot, running, env)
                time.sleep(0.2)
        except BaseException:
            for _, _, proc, log in running.values():
                proc.terminate()
                proc.wait()
                log.close()
            raise

    def start(self, ready: tuple[int, Job], slot: int, running: dict, env: dict[str, str]) -> None:
        number, job = ready
        reason = self.blocked(job)
        if reason:
            self.outcomes[job.name] = Outcome(job, NEW, reason)
            return
        run_dir, state = self.prepare(job)
        device = self.slots[slot]
        self.announce(number, job, state, f" on {device}" if device else "")
        if state == FINISHED:
            self.outcomes[job.name] = Outcome(job, state)
            return
        log = open(run_dir / OUTPUT, "a", encoding="utf-8")
        proc = subprocess.Popen(_command(job, run_dir, device), stdout=log, stderr=subprocess.STDOUT, env=env)
        running[slot] = (job, state, proc, log)


def device_slots(jobs: int, devices: list[str] | None) -> list[str | None] | None:
    """None (in this process) for one job on one device; else one entry per concurrent subprocess."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}.")
    if not devices:
        return None if jobs == 1 else [None] * jobs
    return [devices[i % len(devices)] for i in range(max(jobs, len(devices)))]


def run_grid(grid_spec: str, out: str | None = None, budget: float | None = None,
             overrides: dict[str, Any] | None = None, teachers: str | None = None, jobs: int = 1,
             devices: list[str] | None = None, dry_run: bool = False, teacher_cache: bool = True) -> list[Outcome]:
    """Plan the grid, check every name and every existing run folder, then run what is not finished (``teacher_cache``:
    the runs it can serve share a teacher cache, :mod:`~kdzoo.grid.shared_cache`)."""
    grid = load_grid(grid_spec)
    out_dir = Path(out) if out else Path("runs") / "bench" / grid.name
    slots = device_slots(jobs, devices)
    job_list = plan(grid, out_dir, budget, overrides, teachers, teacher_cache)
    for job in job_list:
        check_matches(out_dir / job.name, job.cfg)
    states = Counter(run_state(out_dir / job.name) for job in job_list)
    print(f"grid {grid.name}: {len(job_list)} runs in {out_dir} ({states[FINISHED]} finished, "
          f"{states[RESUMABLE]} to resume, {states[NEW] + states[UNSTARTED]} to start)", flush=True)
    images = dict.fromkeys(str(Images.of(job.cfg.to_dict())) for job in job_list)
    print(f"images: {'; '.join(images)} ({'they differ between runs' if len(images) > 1 else 'every run'})", flush=True)
    print("\n".join(plan_lines(job_list, teacher_cache)), flush=True)
    if dry_run:
        for job in job_list:
            after = f", after {', '.join(job.after)}" if job.after else ""
            print(f"  {job.name}: {run_state(out_dir / job.name)}, {plural(job.cfg.epochs, 'epoch')}{after}")
        return []
    outcomes = Runner(job_list, out_dir, {j.name: j.info(grid) for j in job_list}, slots).run()
    failed = [o for o in outcomes if not o.ok]
    before = sum(o.state == FINISHED for o in outcomes)
    print(f"\ngrid {grid.name}: {len(outcomes) - len(failed)} of {len(outcomes)} runs finished ({before} of them "
          f"before this command)" + (f"; {len(failed)} failed:" if failed else "."))
    for outcome in failed:
        print(f"  {outcome.job.name}: {outcome.error}")
    totals = totals_line(out_dir, job_list)
    if totals:
        print(totals)
    print(f"report: kdzoo report {out_dir}")
    return outcomes
