"""Plots of runs, benchmark reports and temperatures (matplotlib, Agg backend: works without a display).

Every function writes one PNG and returns its path; titles are wrapped to fit their figure.
"""

from __future__ import annotations

import math
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .run_folder import read_metrics

if TYPE_CHECKING:
    from torch import Tensor

#: label -> (x values, y values, error bars or None)
Series = dict[str, tuple[Sequence[float], Sequence[float], Sequence[float] | None]]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fit_titles(fig)
    fig.savefig(path)
    _pyplot().close(fig)
    return path


def title_fits(fig, title) -> bool:
    """Whether the drawn ``title`` (a matplotlib ``Text``) lies inside the figure."""
    fig.canvas.draw()
    box, page = title.get_window_extent(), fig.bbox
    return page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1


def fit_titles(fig) -> None:
    """Wrap each axes' title (textwrap, at spaces; a pair "a -> b" stays on one line) onto as many lines as it
    needs to lie inside the figure."""
    for ax in fig.axes:
        text = ax.title.get_text().replace(" -> ", "\u00a0->\u00a0")
        width = len(text)
        while width > 12 and not title_fits(fig, ax.title):
            width = int(width * min(0.9, fig.bbox.width / ax.title.get_window_extent().width))
            ax.title.set_text(textwrap.fill(text, width))
            fig.tight_layout()


def mean_curve(run_dirs: Sequence[Path], column: str) -> tuple[list[float], list[float]]:
    """``column`` of the runs' ``metrics.csv`` against epoch, averaged over the runs that have the epoch."""
    by_epoch: dict[float, list[float]] = defaultdict(list)
    for run_dir in run_dirs:
        for row in read_metrics(run_dir):
            if column in row and not math.isnan(row[column]):
                by_epoch[row["epoch"]].append(row[column])
    epochs = sorted(by_epoch)
    return epochs, [sum(by_epoch[e]) / len(by_epoch[e]) for e in epochs]


def plot_lines(series: Series, path: Path, xlabel: str, ylabel: str, title: str, logx: bool = False) -> Path:
    """One line per label, with error bars where given; whole-number ticks when ``xlabel`` is "epoch"."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for label, (x, y, err) in series.items():
        ax.errorbar(x, y, yerr=err, marker="o", markersize=3, capsize=3 if err is not None else 0, label=label)
    if logx:
        ax.set_xscale("log", base=2)
        ticks = sorted({float(v) for x, _, _ in series.values() for v in x})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    if xlabel == "epoch":  # whole epochs; a single one gets a unit-wide axis around it
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        epochs = {float(v) for x, _, _ in series.values() for v in x}
        if len(epochs) == 1:
            ax.set_xlim(min(epochs) - 0.5, min(epochs) + 0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_accuracy_curves(runs: dict[str, Path | Sequence[Path]], path: Path,
                         title: str = "Test top-1 per epoch") -> Path:
    """Test top-1 against epoch, one line per label (label -> run folder, or several averaged)."""
    series = {label: (*mean_curve([dirs] if isinstance(dirs, Path) else dirs, "test_top1"), None)
              for label, dirs in runs.items()}
    return plot_lines(series, path, "epoch", "test top-1 (%)", title)


def plot_grouped_bars(groups: dict[str, dict[str, tuple[float, float | None]]], path: Path, ylabel: str, title: str,
                      xlabel: str | None = None) -> Path:
    """Bars of (value, error) per label, grouped by the outer key (e.g. gains per method per pair), the groups in the
    order given; an error of None draws no error bar."""
    plt = _pyplot()
    labels = list(dict.fromkeys(label for bars in groups.values() for label in bars))
    width = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(max(6.4, 1.5 + 0.3 * len(groups) * max(len(labels), 1)), 4.2), dpi=120)
    for i, label in enumerate(labels):
        xs = [g for g, bars in enumerate(groups.values()) if label in bars]
        values = [bars[label] for bars in groups.values() if label in bars]
        errors = [math.nan if e is None else e for _, e in values]  # NaN: no bar, no caps
        ax.bar([x + (i - (len(labels) - 1) / 2) * width for x in xs], [v for v, _ in values], width,
               yerr=errors if any(e for _, e in values) else None, capsize=2, label=label)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(groups)), list(groups), rotation=30 if len(groups) > 6 else 20, ha="right",
                  fontsize="small")
    ax.set_xlim(-0.6, len(groups) - 0.4)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize="small", ncol=2)
    return _save(fig, path)


def plot_scatter(points: dict[str, list[tuple[str, float, float]]], path: Path, xlabel: str, ylabel: str,
                 title: str) -> Path:
    """Labelled points (name, x, y), one colour per group (e.g. accuracy against training time per pair)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    for group, items in points.items():
        ax.scatter([x for _, x, _ in items], [y for _, _, y in items], label=group)
        for name, x, y in items:
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 3), fontsize="x-small")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_distributions(distributions: dict[str, Sequence[float]], classes: Sequence[str], path: Path,
                       title: str) -> Path:
    """Grouped bars of probability per class, one bar colour per distribution (e.g. per temperature)."""
    groups = {c: {label: (float(p[i]), 0.0) for label, p in distributions.items()} for i, c in enumerate(classes)}
    return plot_grouped_bars(groups, path, "probability", title)


def plot_heatmap(matrix: Sequence[Sequence[float]], rows: Sequence[str], columns: Sequence[str], path: Path,
                 xlabel: str, ylabel: str, title: str) -> Path:
    """A matrix of values with each cell written in it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.6), dpi=120)
    image = ax.imshow(matrix, cmap="viridis")
    fig.colorbar(image, ax=ax)
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, f"{value:.3g}", ha="center", va="center", color="white", fontsize="x-small")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _save(fig, path)


def plot_run_columns(run_dirs: Sequence[Path], columns: Sequence[str], path: Path, title: str) -> Path:
    """Columns of each run's ``metrics.csv`` against epoch, one line per run and column (e.g. CTKD's learned
    ``stat_temperature``, or DKD's ``train_dkd_tckd`` and ``train_dkd_nckd``)."""
    series = {(column if len(run_dirs) == 1 else f"{Path(run).name}: {column}"):
              (*mean_curve([Path(run)], column), None) for run in run_dirs for column in columns}
    ylabel = columns[0] if len(columns) == 1 else "value"
    return plot_lines(series, path, "epoch", ylabel, title)


def plot_attention_maps(image: Tensor, rows: dict[str, list[Tensor]], path: Path, title: str) -> Path:
    """One row per network (label -> its H x W maps, stage by stage): the C x H x W image, then each stage's map,
    each scaled to its own range."""
    plt = _pyplot()
    columns = 1 + max(len(maps) for maps in rows.values())
    fig, axes = plt.subplots(len(rows), columns, figsize=(2.1 * columns, 2.2 * len(rows) + 0.4), dpi=120,
                             squeeze=False)
    picture = image.detach().float().cpu()
    picture = ((picture - picture.min()) / (picture.max() - picture.min() + 1e-12)).permute(1, 2, 0)
    gray = picture.shape[-1] == 1
    for r, (label, maps) in enumerate(rows.items()):
        axes[r][0].imshow(picture[..., 0] if gray else picture, cmap="gray" if gray else None)
        axes[r][0].set_ylabel(label)
        for c, attention in enumerate(maps, start=1):
            axes[r][c].imshow(attention.detach().float().cpu(), cmap="jet")
            axes[r][c].set_title(f"stage {c} ({attention.shape[0]}x{attention.shape[1]})", fontsize="small")
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in axes[r][1 + len(maps):]:
            ax.axis("off")
    axes[0][0].set_title("image", fontsize="small")
    fig.suptitle(title, fontsize="medium")
    return _save(fig, path)
