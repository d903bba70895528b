"""Run logging: ``metrics.csv`` (always; ``init_metrics.csv`` for init stages), TensorBoard events
(optional, imported lazily), ``log.txt``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ..run_folder import METRICS


class RunLogger:
    """Appends one row per epoch to ``<table>.csv`` and mirrors scalars to TensorBoard. Disabled
    (``enabled=False``) it writes nothing: the other ranks of a distributed run."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, quiet: bool = False, enabled: bool = True):
        self.run_dir = run_dir
        self.quiet = quiet
        self.enabled = enabled
        self._writer = None
        if tensorboard and enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.info("TensorBoard is not installed; writing metrics.csv only (pip install tensorboard).")
            else:
                self._writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def info(self, message: str) -> None:
        if not self.enabled:
            return
        if not self.quiet:
            print(message, flush=True)
        with open(self.run_dir / "log.txt", "a", encoding="utf-8") as f:
            f.write(message + "\n")

    def epoch(self, row: dict[str, Any], table: str = METRICS) -> None:
        """Append ``row`` (its first entry is the epoch counter, the TensorBoard step)."""
        if not self.enabled:
            return
        path = self.run_dir / f"{table}.csv"
        new = not path.exists()
        with open(path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self._writer is not None:
            (_, step), *values = row.items()
            for key, value in values:
                if isinstance(value, (int, float)):
                    tag = key.replace("_", "/", 1) if table == METRICS else f"init/{key.removeprefix('init_')}"
                    self._writer.add_scalar(tag, value, int(step))
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def rewrite_metrics(run_dir: Path, rows: list[dict[str, Any]], table: str = METRICS) -> None:
    """Replace ``<table>.csv`` with ``rows`` (on resume: drop rows of epochs never checkpointed)."""
    path = Path(run_dir) / f"{table}.csv"
    path.unlink(missing_ok=True)
    if rows:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
