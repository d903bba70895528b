"""Paired comparisons: a method's gain over the vanilla student (and over KD), run by run, paired by seed.

For one seed every run starts from the same student weights and sees the same batches whatever the method
(the Distiller builds the method on random numbers of its own: ``distiller.own_rng``), so "method minus vanilla"
of one seed is a paired difference: the part of the seed's luck that both runs share cancels, and the differences
spread less than either run's accuracy as far as the two runs' accuracies are correlated over the seeds (not at all
when they are not: docs/results.md measures it). A run's partner is the run of the baseline (the vanilla student;
plain KD) with the same dataset and images, student (and teacher, for KD), seed and every other setting but the
method's own (method, its options and weights, temperatures, the teacher; DOT counts as SGD). The gain is the mean
of the n differences with its 95 % confidence interval from the t distribution with n - 1 degrees of freedom. Fewer
than :data:`MIN_PAIRS` pairs give no interval, nor do differences that are all equal: their standard deviation of 0
would make a zero-width interval, a certainty that a few seeds never give. Runs without a partner, or with several, are
left out and named.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from scipy.stats import t as student_t

from ..config import RUN_OPTIONS, Role, fields_with
from ..published import pair_key
from .records import Record
from .run_groups import NOT_SETTINGS, settings
from .tables import DatasetTable

#: Settings that belong to the method, not to the student's training: a run and its partner may differ in them
#: (:attr:`Role.METHOD <kdzoo.config.Role.METHOD>`).
METHOD_SETTINGS = fields_with(Role.METHOD)
BASELINES = ("vanilla", "kd")
#: The fewest pairs that give an interval (with two, t_{0.975, 1} = 12.7 times a standard deviation of two values).
MIN_PAIRS = 3
#: Differences (points of top-1) closer than this are equal: a float's rounding, never a test set's resolution.
EQUAL_DIFFERENCES = 1e-9
#: Every run option's default (for the keys an older run did not save).
DEFAULTS = {name: option.default for name, option in RUN_OPTIONS.items()}


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t distribution with ``df`` degrees of freedom (scipy's)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    return float(student_t.ppf(0.975, df))


@dataclass
class Gain:
    """One method's gain over one baseline on one pair: the per-seed differences and their summary."""

    row: str
    pair: str
    baseline: str                       # "vanilla" or "kd"
    metric: str                         # "best" or "last"
    seeds: list[int] = field(default_factory=list)
    diffs: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)   # the method's own top-1 of each paired seed
    missing: list[int] = field(default_factory=list)     # seeds of runs without a partner
    ambiguous: list[int] = field(default_factory=list)   # seeds of runs with several possible partners

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.diffs) if self.diffs else None

    @property
    def no_interval(self) -> str | None:
        """Why the gain has no interval (fewer than :data:`MIN_PAIRS` pairs; differences all equal), or None."""
        if self.n < MIN_PAIRS:
            return f"n={self.n}: no interval"
        if max(self.diffs) - min(self.diffs) <= EQUAL_DIFFERENCES:
            return "all differences equal: no interval"
        return None

    @property
    def half_width(self) -> float | None:
        """Half the 95 % interval: t_{0.975, n-1} * sd / sqrt(n); None without an interval (:attr:`no_interval`)."""
        if self.no_interval:
            return None
        return t_quantile_975(self.n - 1) * statistics.stdev(self.diffs) / math.sqrt(self.n)

    @property
    def interval(self) -> tuple[float, float] | None:
        half = self.half_width
        return None if half is None else (self.mean - half, self.mean + half)

    @property
    def excludes_zero(self) -> bool | None:
        """Whether the interval lies wholly above or below 0 (None without an interval)."""
        interval = self.interval
        return None if interval is None else interval[0] > 0 or interval[1] < 0

    def cell(self) -> str:
        """``+1.23 [+0.45, +2.01] *`` (``*``: the interval excludes 0), or the mean and why it has no interval:
        ``+1.23 (n=2: no interval)``."""
        if not self.n:
            return "–"
        if self.no_interval:
            return f"{self.mean:+.2f} ({self.no_interval})"
        low, high = self.interval
        return f"{self.mean:+.2f} [{low:+.2f}, {high:+.2f}]" + (" *" if self.excludes_zero else "")

    def notes(self) -> list[str]:
        name = "the vanilla student" if self.baseline == "vanilla" else "KD"
        seeds = ", ".join
        return ([f"{self.row}: no run of {name} for seed {seeds(map(str, self.missing))} (not paired)"]
                if self.missing else []) + (
            [f"{self.row}: several runs of {name} could pair with seed {seeds(map(str, self.ambiguous))} (not paired)"]
            if self.ambiguous else [])


def recipe(record: Record) -> str:
    """The settings a run shares with its partners: all but the seed (and runtime options) and the method's."""
    values: dict[str, Any] = {**DEFAULTS, **settings(record)}   # a key a run did not save has its default
    values = {k: v for k, v in values.items() if k not in METHOD_SETTINGS | NOT_SETTINGS}
    if values.get("optimizer") == "dot":   # DOT is SGD with a momentum offset for the distillation terms
        values["optimizer"] = "sgd"
    return json.dumps({**values, "dataset": record.dataset, "images": str(record.images)}, sort_keys=True,
                      default=str)


def _is_plain_kd(record: Record) -> bool:
    return record.role == "distill" and record.summary.get("method") == "kd" and record.variant == "kd"


def _temperatures(record: Record) -> tuple[Any, Any]:
    return record.config.get("t_student"), record.config.get("t_teacher")


def _is_baseline(record: Record, baseline: str, pair: str) -> bool:
    """Whether ``record`` is a run of ``baseline`` (the vanilla student of ``pair``, or plain KD on it)."""
    if baseline == "vanilla":
        return record.role == "vanilla" and record.summary["model"] == pair.split(" -> ")[-1]
    return _is_plain_kd(record) and pair_key(*record.pair) == pair


def partners(record: Record, baseline: str, pair: str, records: list[Record]) -> list[Record]:
    """The runs of ``baseline`` that pair with ``record`` on ``pair``: same student (for KD the same teacher), seed
    and recipe; of several KD runs (a temperature axis), those at ``record``'s temperatures."""
    key, seed = recipe(record), record.config.get("seed")
    found = [r for r in records if _is_baseline(r, baseline, pair) and r is not record
             and r.config.get("seed") == seed and recipe(r) == key]
    if len(found) > 1 and baseline == "kd":
        found = [r for r in found if _temperatures(r) == _temperatures(record)] or found
    return found


def paired_gains(table: DatasetTable, metric: str) -> dict[tuple[str, str, str], Gain]:
    """``(row, pair, baseline) -> Gain`` for every method row of ``table`` (not the teacher or vanilla rows, nor
    plain KD over itself) with at least one run, over each baseline that has some run on the pair."""
    by_dir = {r.run_dir: r for r in table.records}
    gains = {}
    for (row, pair), cell in table.cells.items():
        runs = [by_dir[d] for d in cell.runs if d in by_dir]
        if not runs or all(r.role in ("teacher", "vanilla") for r in runs):  # "vanilla (epochs=3)" too
            continue
        for baseline in BASELINES:
            if not any(_is_baseline(r, baseline, pair) for r in table.records) or (
                    baseline == "kd" and all(_is_plain_kd(r) for r in runs)):
                continue
            gain = Gain(row, pair, baseline, metric)
            for r in sorted(runs, key=lambda r: r.config.get("seed", 0)):
                found = partners(r, baseline, pair, table.records)
                seed = r.config.get("seed")
                if len(found) == 1:
                    gain.seeds.append(seed)
                    gain.values.append(r.summary[f"{metric}_top1"])
                    gain.diffs.append(gain.values[-1] - found[0].summary[f"{metric}_top1"])
                else:
                    (gain.missing if not found else gain.ambiguous).append(seed)
            gains[(row, pair, baseline)] = gain
    return gains
