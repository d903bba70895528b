"""The report's plots, from its cells: accuracy curves per pair, gains over the vanilla student (paired by seed),
accuracy against training time, accuracy against the temperature, and ``stat_*`` columns per epoch."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from ..plots import mean_curve, plot_accuracy_curves, plot_grouped_bars, plot_lines, plot_scatter
from ..published import pair_key
from ..run_folder import read_metrics, safe_name
from .paired import MIN_PAIRS, paired_gains
from .tables import DatasetTable, mean_std


def curves(table: DatasetTable, out: Path, tag: str) -> list[Path]:
    written = []
    for pair in table.pairs:
        runs = {row: cell.runs for row in table.rows
                if (cell := table.cells.get((row, pair))) is not None and cell.runs}
        if runs:
            name = safe_name(pair.replace(" -> ", "-"))
            written.append(plot_accuracy_curves(runs, out / f"curves_{tag}_{name}.png",
                                                f"{table.headline}, {pair}: test top-1 per epoch"))
    return written


def gains(table: DatasetTable, metric: str, out: Path, tag: str) -> list[Path]:
    """Each method's gain over the vanilla student, paired by seed (:mod:`kdzoo.grid.paired`), one bar per pair,
    grouped by method in the report's row order (readable with every method of the zoo in one grid); the error bars
    are the 95 % confidence intervals, none where a gain has no interval (:attr:`~kdzoo.grid.paired.Gain.no_interval`:
    the title says so)."""
    groups: dict[str, dict[str, tuple[float, float | None]]] = {}
    found = paired_gains(table, metric)
    gains = [g for row in table.rows for pair in table.pairs if (g := found.get((row, pair, "vanilla"))) and g.n]
    for gain in gains:
        groups.setdefault(gain.row, {})[gain.pair] = (gain.mean, gain.half_width)
    if not groups:
        return []
    bare = (f"; no error bar: no interval (n < {MIN_PAIRS} or all differences equal)"
            if any(g.no_interval for g in gains) else "")
    return [plot_grouped_bars(groups, out / f"gains_{tag}.png", f"{metric} top-1 gain (points), 95 % CI",
                              f"{table.headline}: gain over the vanilla student, paired by seed{bare}",
                              xlabel="method, in the report's row order")]


def cost(table: DatasetTable, metric: str, out: Path, tag: str) -> list[Path]:
    points = {pair: [(row, statistics.fmean(cell.time), statistics.fmean(cell.values(metric))) for row in table.rows
                     if (cell := table.cells.get((row, pair))) is not None and cell.time] for pair in table.pairs}
    points = {pair: items for pair, items in points.items() if items}
    if not points:
        return []
    return [plot_scatter(points, out / f"cost_{tag}.png",
                         "training time (s, mean over seeds, init stage included): cheaper to the left",
                         f"{metric} top-1 (%), mean over seeds", f"{table.headline}: accuracy against training cost")]


def temperature(table: DatasetTable, metric: str, out: Path, tag: str) -> list[Path]:
    """Accuracy against T for every method and pair run at two or more (equal) temperatures."""
    by_t: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in table.records:
        if r.role == "distill" and r.temperature is not None:
            by_t[f"{r.variant}, {pair_key(*r.pair)}"][r.temperature].append(r.summary[f"{metric}_top1"])
    series = {}
    for name, values in by_t.items():
        ts = sorted(values)
        if len(ts) > 1:
            stats = [mean_std(values[t]) for t in ts]
            series[name] = (ts, [m for m, _ in stats], [s for _, s in stats])
    if not series:
        return []
    return [plot_lines(series, out / f"temperature_{tag}.png", "temperature T (student = teacher)",
                       f"{metric} top-1 (%)", f"{table.headline}: accuracy against the KD temperature", logx=True)]


def stats(table: DatasetTable, out: Path, tag: str) -> list[Path]:
    """One plot per ``stat_*`` column of ``metrics.csv`` (e.g. CTKD's learned temperature)."""
    names = dict.fromkeys(k for r in table.records for row in read_metrics(r.run_dir)[:1] for k in row
                          if k.startswith("stat_"))
    written = []
    for stat in names:
        series = {}
        for (row, pair), cell in table.cells.items():
            x, y = mean_curve(cell.runs, stat)
            if x:
                series[f"{row}, {pair}"] = (x, y, None)
        label = stat.removeprefix("stat_")
        written.append(plot_lines(series, out / f"{safe_name(stat)}_{tag}.png", "epoch", label,
                                  f"{table.headline}: {label} per epoch"))
    return written


def report_plots(table: DatasetTable, metric: str, out: Path, with_cost: bool = True) -> list[Path]:
    """Every plot of one table, as PNG files in ``out`` (the cost plot only ``with_cost``)."""
    tag = table.tag
    return (curves(table, out, tag) + gains(table, metric, out, tag)
            + (cost(table, metric, out, tag) if with_cost else [])
            + temperature(table, metric, out, tag) + stats(table, out, tag))
