"""Finished runs as the report sees them, read from run folders alone.

The runner leaves ``bench.json`` in every run folder it makes (role, report row, pair, seed, axis
values, order). Run folders made by hand (``kdzoo train``/``distill``) are understood too: a
distillation run's row is its method (``+ls`` with ``logit_std``, ``+dot`` with the DOT optimizer);
a trained network is the "teacher" row when some distillation run used it as teacher, else the
"vanilla" row. Each run also says which images it saw (:class:`Images`): runs that saw different ones
are never pooled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic_text import write_text_atomic
from ..config import draws_subset
from ..run_folder import CONFIG, SUMMARY, load_run_config, read_summary

INFO = "bench.json"
LAST_ORDER = [10**6]   # rows of hand-made runs come after the grid's


def write_info(run_dir: Path, info: dict[str, Any]) -> None:
    """``bench.json``, written whole (a reader never sees half of it)."""
    write_text_atomic(Path(run_dir) / INFO, json.dumps(info, indent=2))


def read_info(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / INFO
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


@dataclass(frozen=True)
class Images:
    """Which images a run trained and was tested on: its subset sizes (None: the whole split) and the data
    seed that drew them (None when it drew no subset, since no seed then changes the images)."""

    train_subset: int | None
    test_subset: int | None
    data_seed: int | None

    @classmethod
    def of(cls, config: dict[str, Any]) -> Images:
        """The images of a run with the (saved, completed) options ``config``."""
        return cls(config.get("train_subset"), config.get("test_subset"),
                   config["data_seed"] if draws_subset(config) else None)

    def __str__(self) -> str:
        if self.data_seed is None:
            return "whole splits"
        return (f"{self.train_subset or 'all'} train / {self.test_subset or 'all'} test images, "
                f"data seed {self.data_seed}")

    @property
    def tag(self) -> str:
        """A file-name part: empty for whole splits, else e.g. ``train4000_test1000_data0``."""
        if self.data_seed is None:
            return ""
        return f"train{self.train_subset or 'all'}_test{self.test_subset or 'all'}_data{self.data_seed}"


@dataclass
class Record:
    """One finished run: its folder, summary, saved config and bench information."""

    run_dir: Path
    summary: dict[str, Any]
    config: dict[str, Any]
    info: dict[str, Any]
    role: str                      # teacher, vanilla, distill or self (self-distillation)
    label: str                     # report row
    variant: str                   # the row without axis values (e.g. "kd" for "kd T=4")
    pair: tuple[str, str] | None   # (teacher arch, student) of distillation runs
    order: list[int]

    @property
    def dataset(self) -> str:
        return self.summary["dataset"]

    @property
    def images(self) -> Images:
        return Images.of(self.config)

    @property
    def temperature(self) -> float | None:
        """The distillation temperature when student and teacher share one."""
        ts, tt = self.config.get("t_student"), self.config.get("t_teacher")
        return float(ts) if ts is not None and ts == tt else None


def _is_teacher_of(run_dir: Path, teacher: str | None) -> bool:
    if not teacher:
        return False
    path = Path(teacher)
    return path.name == run_dir.name or run_dir.resolve() in (path.resolve(), path.resolve().parent)


def _record(run_dir: Path, summary: dict[str, Any], teachers: list[str]) -> Record:
    config = load_run_config(run_dir)
    info = read_info(run_dir)
    if summary.get("kind") == "distill":
        role = "distill" if summary.get("teacher_arch") else "self"
        label = (summary["method"] + ("+ls" if config.get("logit_std") else "")
                 + ("+dot" if config.get("optimizer") == "dot" else ""))
        pair = (summary["teacher_arch"], summary["model"]) if role == "distill" else None
    else:
        role = "teacher" if any(_is_teacher_of(run_dir, t) for t in teachers) else "vanilla"
        label, pair = role, None
    role = info.get("role", role)
    order = info.get("order") or {"teacher": [0], "vanilla": [1]}.get(role, LAST_ORDER)
    return Record(run_dir=run_dir, summary=summary, config=config, info=info, role=role,
                  label=info.get("label", label), variant=info.get("variant", label),
                  pair=tuple(info["pair"]) if info.get("pair") else pair, order=order)


def load_records(runs_dir: Path) -> tuple[list[Record], list[Path]]:
    """Finished runs under ``runs_dir`` (at any depth), and the folders of unfinished ones."""
    runs_dir = Path(runs_dir)
    finished = {p.parent: read_summary(p.parent) for p in sorted(runs_dir.rglob(SUMMARY))}
    unfinished = sorted(p.parent for p in runs_dir.rglob(CONFIG) if p.parent not in finished)
    teachers = [s.get("teacher") for s in finished.values() if s.get("kind") == "distill"]
    return [_record(d, s, teachers) for d, s in finished.items()], unfinished
