"""``kdzoo plot``: columns of run folders' ``metrics.csv`` against epoch (e.g. CTKD's learned temperature)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..plots import plot_run_columns
from ..run_folder import read_metrics


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plot", help="plot columns of run folders' metrics.csv against epoch (e.g. CTKD's "
                                           "learned temperature, DKD's TCKD and NCKD)")
    p.add_argument("run_dirs", nargs="+", help="kdzoo run folders")
    p.add_argument("--columns", nargs="+", required=True,
                   help="metrics.csv columns, e.g. stat_temperature, or train_dkd_tckd train_dkd_nckd")
    p.add_argument("--out", default="metrics.png", help="plot file")
    p.add_argument("--title", help="plot title (default: the columns)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for run_dir in args.run_dirs:
        rows = read_metrics(Path(run_dir))
        if not rows:
            raise ConfigError(f"{run_dir} has no metrics.csv: give kdzoo run folders that finished at least one epoch.")
        missing = [c for c in args.columns if c not in rows[0]]
        if missing:
            raise ConfigError(f"{run_dir}/metrics.csv has no column {', '.join(missing)}; its columns: "
                              f"{', '.join(rows[0])}.")
    title = args.title or ", ".join(args.columns) + " per epoch"
    print(f"plot: {plot_run_columns(args.run_dirs, args.columns, Path(args.out), title)}")
    return 0
