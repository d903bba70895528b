"""Published numbers (``published.yaml`` in this package): tables of CIFAR-100 top-1 by method and pair,
each with its source and protocol. ``kdzoo report`` and the method pages compare with them; a run prints the
released teacher's number beside its own teacher's."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from . import yaml_load
from .errors import ConfigError


def pair_key(teacher: str, student: str) -> str:
    """How pairs are written in tables and reports: ``"resnet32x4 -> resnet8x4"``."""
    return f"{teacher} -> {student}"


@dataclass(frozen=True)
class PublishedTable:
    name: str
    title: str
    source: str
    metric: str            # "best" or "last" epoch
    runs: str              # how the numbers were produced
    dataset: str
    values: dict[tuple[str, str], float]   # (row, pair) -> top-1
    row_metrics: dict[str, str] = field(default_factory=dict)   # rows of another metric than the table's

    def metric_of(self, row: str) -> str:
        """The epoch ("best" or "last") of the row's numbers."""
        return self.row_metrics.get(row, self.metric)

    def lookup(self, dataset: str, row: str, pair: str) -> float | None:
        return self.values.get((row, pair)) if dataset == self.dataset else None


@cache
def published_tables() -> dict[str, PublishedTable]:
    """Every published table, by name, in file order."""
    text = (resources.files("kdzoo") / "published.yaml").read_text(encoding="utf-8")
    tables = {}
    for name, spec in yaml_load.load(text).items():
        values = {}
        for row, cells in spec["rows"].items():
            if len(cells) != len(spec["pairs"]):
                raise ConfigError(f"published.yaml: row {row!r} of {name} has {len(cells)} values for "
                                  f"{len(spec['pairs'])} pairs.")
            values.update({(row, pair): float(v) for pair, v in zip(spec["pairs"], cells, strict=True)
                           if v is not None})
        tables[name] = PublishedTable(name=name, title=spec["title"], source=" ".join(spec["source"].split()),
                                      metric=spec["metric"], runs=spec["runs"], dataset=spec["dataset"], values=values,
                                      row_metrics=spec.get("row_metrics", {}))
    return tables


def select_tables(spec: str | None) -> list[PublishedTable]:
    """``"all"`` (or None), ``"none"``, or comma-separated table names, in that order of precedence."""
    tables = published_tables()
    if spec in (None, "all"):
        return list(tables.values())
    if spec == "none":
        return []
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in tables]
    if unknown:
        raise ConfigError(f"Unknown published table {', '.join(map(repr, unknown))}: use all, none, or some of "
                          f"{', '.join(tables)}.")
    return [tables[n] for n in names]


#: The tables whose "teacher" row is RepDistiller's released CIFAR-100 teachers (its README).
RELEASED_TEACHER_TABLES = ("repdistiller_same_family", "repdistiller_cross_family")


def released_teacher_top1(arch: str, dataset: str) -> float | None:
    """Test top-1 of RepDistiller's released ``arch`` teacher on ``dataset`` (cifar100 only), or None."""
    for name in RELEASED_TEACHER_TABLES:
        table = published_tables()[name]
        for (row, pair), value in table.values.items():
            if row == "teacher" and pair.split(" -> ")[0] == arch and dataset == table.dataset:
                return value
    return None


def lookup(tables: list[PublishedTable], dataset: str, row: str, pair: str) -> tuple[float, PublishedTable] | None:
    """The first table's number for (row, pair) on ``dataset``, with that table."""
    for table in tables:
        value = table.lookup(dataset, row, pair)
        if value is not None:
            return value, table
    return None
