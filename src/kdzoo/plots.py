"""Plots of runs (matplotlib, Agg backend: works without a display)."""

from __future__ import annotations

from pathlib import Path

from .engine.logger import read_metrics


def plot_accuracy_curves(runs: dict[str, Path], path: Path, title: str = "Test top-1 per epoch") -> Path:
    """One line per run (label -> run folder) of test top-1 against epoch, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for label, run_dir in runs.items():
        rows = read_metrics(run_dir)
        ax.plot([r["epoch"] for r in rows], [r["test_top1"] for r in rows], marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
