"""``kdzoo report RUNS_DIR``: the papers' table (rows = methods, columns = pairs) from run folders,
with mean ± std over seeds, the published number and the difference, training cost, and plots. Runs
that saw different images (subsets, data seed) get separate tables: they are never pooled.

Beside each table, the paired gains (:mod:`kdzoo.grid.paired`): per method and pair, the gain over the vanilla
student and over KD, paired by seed, as the mean and its 95 % confidence interval.

Writes ``report.md``, ``report.csv`` (wide: for each pair, seeds, best and last mean/std, published,
differences, training time, images/s, paired gains) and ``plots/*.png``.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

from ..errors import ConfigError
from ..published import PublishedTable, select_tables
from ..text_table import markdown_table, plural
from .paired import BASELINES, MIN_PAIRS, Gain, paired_gains
from .records import load_records
from .report_plots import report_plots
from .tables import Cell, DatasetTable, build_tables, mean_std

METRICS = ("best", "last")


def _fmt(mean: float, std: float, n: int) -> str:
    return f"{mean:.2f} ± {std:.2f}" if n > 1 else f"{mean:.2f}"


def markdown(table: DatasetTable, metric: str, tables: list[PublishedTable], title: str, cost: bool = True) -> str:
    used: dict[str, PublishedTable] = {}
    metrics: set[str] = set()   # the epochs of the published numbers printed
    typical = statistics.mode(len(c.values(metric)) for c in table.cells.values())
    rows = []
    for row in table.rows:
        cells = []
        for pair in table.pairs:
            cell = table.cells.get((row, pair))
            if cell is None:
                cells.append("–")
                continue
            values = cell.values(metric)
            mean, std = mean_std(values)
            text = _fmt(mean, std, len(values))
            found = table.published(tables, row, pair)
            if found:
                used[found[1].name] = found[1]
                metrics.add(found[1].metric_of(row))
                text += f" ({found[0]:.2f}, {mean - found[0]:+.2f})"
            cells.append(text + ("" if len(values) == typical else f" (n={len(values)})"))
        rows.append(f"| {row} | " + " | ".join(cells) + " |")
    brackets = "; in brackets the published number and our difference" if used else ""
    costs = [[cost_cell(table.cells.get((row, p))) for p in table.pairs] for row in table.rows]
    init = any(" init)" in cell for cells in costs for cell in cells)
    runs = plural(typical, "run") + (" (seed)" if typical == 1 else " (seeds)")
    lines = [f"## {title}: {table.headline}: test top-1 (%), {metric} epoch",
             "", f"Cell: mean ± std over {runs} unless marked (n=N){brackets}.", "",
             "| method | " + " | ".join(table.pairs) + " |", "|---" * (len(table.pairs) + 1) + "|", *rows,
             *paired_markdown(table, metric)]
    if cost:
        lines += ["", "### Training cost: training time, images/s (mean over runs)", "",
                  *(["The time includes the init stage of AB, FT and FSP, shown in brackets (`init_time_s` in the "
                     "CSV).", ""] if init else []),
                  "| method | " + " | ".join(table.pairs) + " |", "|---" * (len(table.pairs) + 1) + "|"]
        lines += [f"| {row} | " + " | ".join(cells) + " |" for row, cells in zip(table.rows, costs, strict=True)]
    if used:
        lines += ["", "Published numbers:"] + [f"- {t.name}: {t.title}; {t.runs}. Source: {t.source}"
                                               for t in used.values()]
        if metrics - {metric}:
            lines.append(f"- Some published numbers are {'best' if metric == 'last' else 'last'}-epoch values; "
                         f"compare with `--metric {'best' if metric == 'last' else 'last'}` too.")
    return "\n".join(lines)


PAIRED_HEADER = ("Each run minus the run of the same seed with the vanilla student (or with KD) and otherwise the "
                 "same settings: for one seed both start from the same student weights and see the same batches, so "
                 "the part of the seed's luck that both runs share cancels, and the interval holds however large "
                 "that part is. "
                 "Cell: mean gain over the n pairs (points of top-1) [95 % confidence interval, t distribution with "
                 f"n - 1 degrees of freedom]; * marks an interval that excludes 0. Fewer than {MIN_PAIRS} pairs give "
                 "no interval, nor do differences that are all equal (a zero-width interval would claim a certainty "
                 "that a few seeds never give).")
BASELINE_NAMES = {"vanilla": "vanilla", "kd": "KD"}


def paired_markdown(table: DatasetTable, metric: str) -> list[str]:
    """The paired-gains section of one table: per pair, each method's gain over vanilla and over KD; no lines when
    nothing pairs."""
    gains = paired_gains(table, metric)
    lines = []
    for pair in table.pairs:
        found = {b: {row: g for (row, p, base), g in gains.items() if p == pair and base == b} for b in BASELINES}
        shown = [b for b in BASELINES if any(g.n for g in found[b].values())]
        if not shown:
            continue
        rows = [row for row in table.rows if any(row in found[b] for b in shown)]
        header = ["method"] + [c for b in shown for c in (f"n ({BASELINE_NAMES[b]})",
                                                          f"gain over {BASELINE_NAMES[b]} [95 % CI]")]
        cells = [[row] + [c for b in shown for c in _paired_cells(found[b].get(row))] for row in rows]
        notes = [note for b in shown for row in rows if row in found[b] for note in found[b][row].notes()]
        lines += ["", f"#### {pair}", "", markdown_table(header, cells), *(["", *(f"- {n}" for n in notes)]
                                                                           if notes else [])]
    if not lines:
        return []
    return ["", f"### Paired gains over the vanilla student and over KD, {metric} epoch", "", PAIRED_HEADER, *lines]


def _paired_cells(gain: Gain | None) -> list[str]:
    return ["–", "–"] if gain is None or not gain.n else [str(gain.n), gain.cell()]


def cost_cell(cell: Cell | None) -> str:
    """Mean training time (with the init stage's, when there is one) and images/s of a cell."""
    if not cell or not cell.time:
        return "–"
    init = statistics.fmean(cell.init_time)
    return (f"{statistics.fmean(cell.time):.0f} s{f' ({init:.0f} s init)' if init else ''}, "
            f"{statistics.fmean(cell.speed):.0f} img/s")


PAIRED_FIELDS = tuple(f for b in BASELINES for f in (
    f"gain_{b}_n", *(f"gain_{b}_{m}_{s}" for m in METRICS for s in ("mean", "ci_low", "ci_high", "excludes_0"))))
CSV_FIELDS = ("n", "best_mean", "best_std", "last_mean", "last_std", "published", "published_metric", "published_table",
              "diff_best", "diff_last", "train_time_s", "init_time_s", "images_per_s", *PAIRED_FIELDS)


CSV_IMAGES = ("train_subset", "test_subset", "data_seed")   # blank: the whole split, no seed


def csv_header(pairs: list[str]) -> list[str]:
    return ["dataset", *CSV_IMAGES, "method"] + [f"{pair} | {f}" for pair in pairs for f in CSV_FIELDS]


def csv_rows(table: DatasetTable, tables: list[PublishedTable], pairs: list[str]) -> list[list[object]]:
    """One row per method; for each pair (columns of :func:`csv_header`) its numbers, or blanks."""
    fields = CSV_FIELDS
    gains = {m: paired_gains(table, m) for m in METRICS}
    rows = []
    for row in table.rows:
        values: list[object] = [table.dataset, *(getattr(table.images, f) for f in CSV_IMAGES), row]
        for pair in pairs:
            cell = table.cells.get((row, pair))
            if cell is None:
                values += [""] * len(fields)
                continue
            (bm, bs), (lm, ls) = mean_std(cell.best), mean_std(cell.last)
            found = table.published(tables, row, pair)
            pub = ([found[0], found[1].metric_of(row), found[1].name, round(bm - found[0], 6), round(lm - found[0], 6)]
                   if found else [""] * 5)
            cost = ([round(statistics.fmean(v), 3) for v in (cell.time, cell.init_time, cell.speed)] if cell.time
                    else ["", "", ""])
            values += [len(cell.best), round(bm, 6), round(bs, 6), round(lm, 6), round(ls, 6), *pub, *cost,
                       *paired_csv(gains, row, pair)]
        rows.append(values)
    return rows


def paired_csv(gains: dict[str, dict[tuple[str, str, str], Gain]], row: str, pair: str) -> list[object]:
    """The :data:`PAIRED_FIELDS` of one cell: blanks where nothing pairs; the interval and its mark blank where the
    gain has none (:attr:`Gain.no_interval`)."""
    values: list[object] = []
    for b in BASELINES:
        first = gains[METRICS[0]].get((row, pair, b))
        values.append(first.n if first and first.n else "")
        for m in METRICS:
            gain = gains[m].get((row, pair, b))
            if gain is None or not gain.n:
                values += [""] * 4
                continue
            interval = gain.interval
            values += [round(gain.mean, 6), *((round(v, 6) for v in interval) if interval else ("", "")),
                       "" if gain.excludes_zero is None else gain.excludes_zero]
    return values


def split_notes(datasets: list[DatasetTable]) -> list[str]:
    """A note for every dataset whose runs saw different images, and so have one table per set of images."""
    notes = []
    for dataset in dict.fromkeys(t.dataset for t in datasets):
        kinds = [str(t.images) for t in datasets if t.dataset == dataset]
        if len(kinds) > 1:
            notes.append(f"Note: the {dataset} runs saw {len(kinds)} different sets of images ({'; '.join(kinds)}), "
                         f"so each set has its own table: a mean over runs tested on different images would mix the "
                         f"models' variance with the test subsets'. Give every run the same --data-seed and subsets "
                         f"to compare them in one table.")
    return notes


def write_report(runs_dir: Path, out: Path | None = None, metric: str = "last", published: str | None = None,
                 make_plots: bool = True, cost: bool = True) -> tuple[str, list[Path]]:
    """Write ``report.md``, ``report.csv`` and ``plots/`` for the runs under ``runs_dir``; returns the
    Markdown and the paths written. Without ``cost``, the training-cost table and plot are left out (times from a
    busy machine are noise, not measurements); the CSV keeps the recorded times."""
    if metric not in METRICS:
        raise ConfigError(f"--metric must be best or last, got {metric!r}.")
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ConfigError(f"{runs_dir} is not a folder. Pass the folder that holds the run folders "
                          f"(e.g. runs/bench/<grid>).")
    records, unfinished = load_records(runs_dir)
    if not records:
        raise ConfigError(f"No finished run under {runs_dir} (a finished run folder holds summary.json). "
                          f"Run `kdzoo bench --grid ...` or `kdzoo train|distill` first.")
    grid_published = next((r.info.get("published") for r in records if r.info.get("published")), None)
    tables = select_tables(published or grid_published)
    out = Path(out) if out else runs_dir
    out.mkdir(parents=True, exist_ok=True)
    datasets = build_tables(records)
    text = "\n\n".join([*split_notes(datasets), *(markdown(t, metric, tables, runs_dir.name, cost) for t in datasets)])
    if unfinished:
        text += f"\n\n{plural(len(unfinished), 'unfinished run')} left out: " + ", ".join(p.name for p in unfinished)
    (out / "report.md").write_text(text + "\n", encoding="utf-8")
    with open(out / "report.csv", "w", newline="", encoding="utf-8") as f:
        pairs = list(dict.fromkeys(p for t in datasets for p in t.pairs))
        csv.writer(f).writerows([csv_header(pairs)] + [row for t in datasets for row in csv_rows(t, tables, pairs)])
    written = [out / "report.md", out / "report.csv"]
    if make_plots:
        for t in datasets:
            written += report_plots(t, metric, out / "plots", cost)
    return text, written
