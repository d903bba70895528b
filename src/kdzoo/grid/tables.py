"""The report's cells: finished runs grouped per dataset and images seen (subsets, data seed) into
(row, pair) cells, one value per run; a cell pools only runs whose settings differ in the seed alone. Each table
also says how long its runs trained (:func:`budget`), for its titles."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..published import PublishedTable, lookup, pair_key
from ..run_folder import safe_name
from ..text_table import plural
from .records import Images, Record
from .run_groups import split_rows


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass
class Cell:
    """The runs of one (row, pair): one value per run."""

    best: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    init_time: list[float] = field(default_factory=list)
    speed: list[float] = field(default_factory=list)
    runs: list[Path] = field(default_factory=list)

    def add(self, best: float, last: float, record: Record | None = None) -> None:
        self.best.append(best)
        self.last.append(last)
        if record is not None:
            self.time.append(record.summary["train_time_s"])
            self.init_time.append(record.summary.get("init_time_s", 0.0))
            self.speed.append(record.summary["images_per_s"])
            self.runs.append(record.run_dir)

    def values(self, metric: str) -> list[float]:
        return self.best if metric == "best" else self.last


@dataclass
class DatasetTable:
    """Everything reported for the runs that saw the same images of one dataset."""

    dataset: str
    images: Images
    rows: list[str]
    pairs: list[str]
    cells: dict[tuple[str, str], Cell]
    records: list[Record]

    @property
    def name(self) -> str:
        """The dataset, with the subsets and data seed when the runs took subsets."""
        return self.dataset if self.images.data_seed is None else f"{self.dataset} ({self.images})"

    @property
    def headline(self) -> str:
        """:attr:`name` with the training budget (:func:`budget`): what the report's tables and plots are titled."""
        trained = budget(self.records)
        return f"{self.name}, trained {trained}" if trained else self.name

    @property
    def tag(self) -> str:
        """:attr:`name` as a file-name part."""
        return safe_name("_".join(filter(None, (self.dataset, self.images.tag))))

    def published(self, tables: list[PublishedTable], row: str, pair: str) -> tuple[float, PublishedTable] | None:
        return lookup(tables, self.dataset, row, pair)


def _epochs(record: Record) -> int | None:
    """The epochs a run trained (its saved config's; its summary's for a config without them)."""
    return record.config.get("epochs", record.summary.get("epochs"))


def _counts(values: list[int]) -> str:
    """``4 epochs``, or for several values ``2 or 4 epochs``."""
    if len(values) == 1:
        return plural(values[0], "epoch")
    return f"{', '.join(map(str, values[:-1]))} or {values[-1]} epochs"


def budget(records: list[Record]) -> str | None:
    """How long ``records`` trained, e.g. ``4 epochs (teacher 8 epochs; init stage: ft 2 epochs)``: the students'
    epochs (every run but the teachers'), said to differ when they do, the teachers' when they are not the students',
    and the init stage of each method that ran one (AB, FT, FSP: it trains before the main epochs); None when no run
    says."""
    students = sorted({e for r in records if r.role != "teacher" and (e := _epochs(r)) is not None})
    teachers = sorted({e for r in records if r.role == "teacher" and (e := _epochs(r)) is not None})
    main = students or teachers
    if not main:
        return None
    notes = ["the runs differ"] if len(main) > 1 else []
    if students and teachers and teachers != students:
        notes.append(f"teacher {_counts(teachers)}")
    init: dict[int, list[str]] = defaultdict(list)
    for r in records:
        epochs = r.summary.get("init_epochs")
        if epochs and r.variant not in init[epochs]:
            init[epochs].append(r.variant)
    if init:
        notes.append("init stage: " + ", ".join(f"{', '.join(sorted(m))} {plural(e, 'epoch')}"
                                                for e, m in sorted(init.items())))
    return _counts(main) + (f" ({'; '.join(notes)})" if notes else "")


def build_tables(records: list[Record]) -> list[DatasetTable]:
    """Group runs into cells per dataset and images seen (a mean over runs tested on different images
    would mix the model's variance with the test subset's); teachers, vanilla and self-distilled
    students fill every pair they belong to."""
    out = []
    for dataset, images in dict.fromkeys((r.dataset, r.images) for r in records):
        recs = [r for r in records if r.dataset == dataset and r.images == images]
        pair_order: dict[tuple[str, str], int] = {}
        for r in recs:
            for i, p in enumerate(r.info.get("pairs") or []):
                pair_order.setdefault(tuple(p), i)
        pairs = list(dict.fromkeys(sorted((r.pair for r in recs if r.pair),
                                          key=lambda p: pair_order.get(p, len(pair_order)))))
        members: dict[tuple[str, str], list[Record]] = defaultdict(list)
        for r in recs:
            if r.role == "distill":
                keys = [pair_key(*r.pair)]
            else:
                index = 0 if r.role == "teacher" else 1
                keys = [pair_key(*p) for p in pairs if p[index] == r.summary["model"]] or [r.summary["model"]]
            for key in keys:
                members[(r.label, key)].append(r)
        cells: dict[tuple[str, str], Cell] = defaultdict(Cell)
        order: dict[str, list[int]] = {}
        for (label, key), runs in members.items():
            for row, group in split_rows(label, runs):
                for r in group:
                    cells[(row, key)].add(r.summary["best_top1"], r.summary["last_top1"], r)
                    order[row] = min(order.get(row, r.order), r.order)
        teacher_evals: dict[tuple[str, str], float] = {}   # teacher files: accuracy measured by the distill runs
        for r in recs:
            if (r.role == "distill" and r.summary.get("teacher_top1") is not None
                    and ("teacher", pair_key(*r.pair)) not in cells):
                teacher_evals[(r.summary["teacher"], pair_key(*r.pair))] = r.summary["teacher_top1"]
        for (_, key), top1 in teacher_evals.items():
            cells[("teacher", key)].add(top1, top1)
            order["teacher"] = [0]
        columns = list(dict.fromkeys([pair_key(*p) for p in pairs] + [k for _, k in cells]))
        rows = sorted(order, key=lambda label: (order[label], label))
        out.append(DatasetTable(dataset, images, rows, columns, dict(cells), recs))
    return out
