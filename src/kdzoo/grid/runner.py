"""Run a grid's jobs: skip finished runs, resume interrupted ones, start the rest; one after another
in this process, or several at once as subprocesses (one per device slot, :mod:`~kdzoo.grid.child_runs`).

Each run folder is claimed first (:mod:`~kdzoo.grid.folders`: its lock, its state); one that another process holds
is left alone and reported, and the grid's lock passes on to the run itself.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..atomic_text import write_text_atomic
from ..config import RunConfig
from ..engine import train
from ..errors import ConfigError, KdzooError
from ..run_folder import read_summary
from ..text_table import plural
from . import child_runs
from .folders import (
    DAMAGED,
    FINISHED,
    HELD,
    JOB_CONFIG,
    NEW,
    OUTPUT,
    RESUMABLE,
    UNSTARTED,
    Claim,
    check_matches,
    claim_folder,
    handed_over,
    held_text,
    holder,
    run_state,
)
from .grid_file import load_grid
from .job import TEACHER, Job
from .plan import plan
from .progress import GridClock, available_cores, threads_per_job
from .records import Images
from .shared_cache import plan_lines, totals_line


def train_claimed(claim: Claim, cfg: RunConfig) -> dict[str, Any]:
    """Resume the run in a claimed folder, or start it with ``cfg``, in this process, which takes the claim's lock
    over; returns its summary."""
    with handed_over(claim.lock):
        if claim.state == RESUMABLE:
            return train(resume=claim.run_dir, overrides={"device": cfg.device, "progress": cfg.progress})
        return train(cfg)


def run_in_process(run_dir: Path, cfg: RunConfig) -> dict[str, Any]:
    """Reuse the finished run in ``run_dir``, resume it, or start it with ``cfg``; returns its summary. Refused
    while another process holds the folder."""
    claim = claim_folder(run_dir, cfg)
    if claim.state == HELD:
        raise ConfigError(f"Run folder {run_dir} is {held_text(claim.owner)}; it is left alone. Run this again once "
                          f"that process ends.")
    if claim.state == FINISHED:
        claim.release()
        print(f"reusing finished run {run_dir}", flush=True)
        return read_summary(run_dir)
    return train_claimed(claim, cfg)


@dataclass
class Outcome:
    job: Job
    state: str                  # the folder's state before this bench ran it
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _command(job: Job, claim: Claim, device: str | None) -> list[str]:
    """The run's ``kdzoo`` arguments; a run to start gets its config as ``bench_config.yaml`` (written under the
    claim's lock)."""
    verb = "distill" if job.cfg.has_method else "train"
    if claim.state == RESUMABLE:
        args = ["--resume", str(claim.run_dir)]
    else:
        write_text_atomic(claim.run_dir / JOB_CONFIG, yaml.safe_dump(job.cfg.to_dict(), sort_keys=False))
        args = ["--config", str(claim.run_dir / JOB_CONFIG)]
    return [verb, *args, "--no-progress", *(["--device", device] if device else [])]


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

    def prepare(self, job: Job) -> Claim | Outcome:
        """The job's folder claimed (:func:`~kdzoo.grid.folders.claim_folder`), or the outcome of a job that does not
        run: its folder held by another process, finished already, or holding a run with other settings."""
        try:
            claim = claim_folder(self.out_dir / job.name, job.cfg, self.info[job.name])
        except KdzooError as exc:
            return Outcome(job, NEW, str(exc))
        if claim.state == HELD:
            return Outcome(job, HELD, held_text(claim.owner))
        if claim.state == FINISHED:
            claim.release()
            return Outcome(job, FINISHED)
        return claim

    def blocked(self, job: Job) -> str | None:
        """Why ``job`` cannot run: the teacher it needs failed or is held by another process. (When the run that was
        to fill the teacher cache failed, ``job`` runs all the same, and fills the cache itself.)"""
        failed = [self.outcomes[name] for name in job.after if name in self.outcomes and not self.outcomes[name].ok
                  and self.outcomes[name].job.role == TEACHER]
        if not failed:
            return None
        why = f"is {failed[0].error}" if failed[0].state == HELD else "failed"
        return f"its teacher run {failed[0].job.name} {why}"

    def run(self) -> list[Outcome]:
        if self.slots is None:
            for number, job in enumerate(self.jobs, start=1):
                self.outcomes[job.name] = self.run_here(job, number)
        else:
            self.run_parallel()
        return [self.outcomes[j.name] for j in self.jobs]

    def announce(self, number: int, job: Job, claim: Claim | Outcome, where: str = "") -> None:
        verb = {FINISHED: "finished already, skipped", RESUMABLE: "resuming", UNSTARTED: "restarting",
                DAMAGED: "retraining (its summary.json is there, its config.yaml lost)", NEW: "starting"}
        if isinstance(claim, Outcome):
            text = verb[FINISHED] if claim.ok else (f"{claim.error}, left alone" if claim.state == HELD
                                                      else f"FAILED: {claim.error}")
        else:
            text = verb[claim.state] + where
        print(f"[{number}/{len(self.jobs)}] {job.name}: {text}", flush=True)

    def run_here(self, job: Job, number: int) -> Outcome:
        reason = self.blocked(job)
        if reason:
            return Outcome(job, NEW, reason)
        claim = self.prepare(job)
        self.announce(number, job, claim)
        if isinstance(claim, Outcome):
            return claim
        try:
            train_claimed(claim, job.cfg)
        except KdzooError as exc:
            print(f"kdzoo: error in {job.name}: {exc}", file=sys.stderr, flush=True)
            outcome = Outcome(job, claim.state, str(exc))
        except Exception as exc:  # noqa: BLE001 - one broken run must not stop the grid
            traceback.print_exc()
            outcome = Outcome(job, claim.state, f"{type(exc).__name__}: {exc}")
        else:
            outcome = Outcome(job, claim.state)
        print(self.clock.result_line(job.name, claim.run_dir, outcome.error, number), flush=True)
        return outcome

    def run_parallel(self) -> None:
        """Each slot runs one subprocess at a time; a pool thread waits on each (no polling), and as one ends the
        next job whose ``after`` jobs all have an outcome starts in its slot, in the grid's order."""
        pending = list(enumerate(self.jobs, start=1))
        running: dict[Future, tuple[int, Job, str, Any, Any]] = {}   # a run's wait -> slot, job, state, process, log
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if "OMP_NUM_THREADS" in env:
            print(f"each run computes with OMP_NUM_THREADS={env['OMP_NUM_THREADS']} thread(s), as set", flush=True)
        elif all(s in (None, "cpu") for s in self.slots):
            threads, line = threads_per_job(len(self.slots), available_cores())
            env["OMP_NUM_THREADS"] = str(threads)
            print(line, flush=True)
        with ThreadPoolExecutor(max_workers=len(self.slots), thread_name_prefix="kdzoo-run") as pool:
            try:
                while pending or running:
                    busy = {slot for slot, *_ in running.values()}
                    for slot in (s for s in range(len(self.slots)) if s not in busy):
                        started = None
                        while started is None:
                            ready = next((p for p in pending if all(a in self.outcomes for a in p[1].after)), None)
                            if ready is None:
                                break
                            pending.remove(ready)
                            started = self.start(ready, slot, env)
                        if started is not None:
                            job, state, proc, log = started
                            running[pool.submit(proc.wait)] = (slot, job, state, proc, log)
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        _, job, state, proc, log = running.pop(future)
                        log.close()
                        ok = proc.returncode == 0 and run_state(self.out_dir / job.name) == FINISHED
                        error = None if ok else _last_error(self.out_dir / job.name)
                        self.outcomes[job.name] = Outcome(job, state, error)
                        print(self.clock.result_line(job.name, self.out_dir / job.name, error, len(self.outcomes)),
                              flush=True)
            except BaseException:
                for _, _, _, proc, log in running.values():
                    child_runs.stop(proc)
                    log.close()
                raise

    def start(self, ready: tuple[int, Job], slot: int, env: dict[str, str]) -> tuple[Job, str, Any, Any] | None:
        """Start ``ready`` in ``slot`` (its job, state, process and output file), or None when it does not run (its
        outcome recorded: blocked, held, finished already)."""
        number, job = ready
        reason = self.blocked(job)
        if reason:
            self.outcomes[job.name] = Outcome(job, NEW, reason)
            return None
        claim = self.prepare(job)
        device = self.slots[slot]
        self.announce(number, job, claim, f" on {device}" if device else "")
        if isinstance(claim, Outcome):
            self.outcomes[job.name] = claim
            return None
        try:
            command = child_runs.run_command(_command(job, claim, device))
            log = open(claim.run_dir / OUTPUT, "a", encoding="utf-8")
        except BaseException:
            claim.release()
            raise
        try:
            proc = child_runs.start(command, claim.lock, log, env)
        except BaseException:
            log.close()
            raise
        return job, claim.state, proc, log

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
    held = {job.name: owner for job in job_list if (owner := holder(out_dir / job.name))}
    for job in job_list:
        if job.name not in held:  # a held folder is left alone (its config may be being written)
            check_matches(out_dir / job.name, job.cfg)
    states = Counter(run_state(out_dir / job.name) for job in job_list if job.name not in held)
    print(f"grid {grid.name}: {len(job_list)} runs in {out_dir} ({states[FINISHED]} finished, "
          f"{states[RESUMABLE]} to resume, {states[NEW] + states[UNSTARTED] + states[DAMAGED]} to start"
          + (f", {len(held)} held by another process" if held else "") + ")", flush=True)
    images = dict.fromkeys(str(Images.of(job.cfg.to_dict())) for job in job_list)
    print(f"images: {'; '.join(images)} ({'they differ between runs' if len(images) > 1 else 'every run'})", flush=True)
    print("\n".join(plan_lines(job_list, teacher_cache)), flush=True)
    if dry_run:
        for job in job_list:
            after = f", after {', '.join(job.after)}" if job.after else ""
            state = held_text(held[job.name]) if job.name in held else _state_text(out_dir / job.name)
            print(f"  {job.name}: {state}, {plural(job.cfg.epochs, 'epoch')}{after}")
        return []
    outcomes = Runner(job_list, out_dir, {j.name: j.info(grid) for j in job_list}, slots).run()
    print("\n" + "\n".join(end_lines(grid.name, outcomes)))
    totals = totals_line(out_dir, job_list)
    if totals:
        print(totals)
    print(f"report: kdzoo report {out_dir}")
    return outcomes


def _state_text(run_dir: Path) -> str:
    state = run_state(run_dir)
    return f"{state} (summary.json without config.yaml: to train again)" if state == DAMAGED else state


def end_lines(grid_name: str, outcomes: list[Outcome]) -> list[str]:
    """The grid's end summary: how many runs are finished, then each run left to another process and each failure."""
    held = [o for o in outcomes if o.state == HELD]
    failed = [o for o in outcomes if not o.ok and o.state != HELD]
    before = sum(o.state == FINISHED for o in outcomes)
    parts = [f"{len(held)} left alone, held by another process (run this command again once it ends)"] if held else []
    parts += [f"{len(failed)} failed"] if failed else []
    lines = [f"grid {grid_name}: {len(outcomes) - len(held) - len(failed)} of {len(outcomes)} runs finished ({before} "
             f"of them before this command)" + (f"; {'; '.join(parts)}:" if parts else ".")]
    return lines + [f"  {o.job.name}: {o.error}" for o in held + failed]
