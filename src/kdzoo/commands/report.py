"""``kdzoo report``: tables (Markdown, CSV) and plots of the finished runs in a folder, beside the published
numbers (:mod:`kdzoo.grid.report`)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="tables (Markdown, CSV) and plots of the finished runs in a folder, "
                                             "beside the published numbers")
    p.add_argument("runs_dir", help="folder holding run folders (e.g. runs/bench/<grid>)")
    p.add_argument("--out", help="where report.md, report.csv and plots/ go (default: RUNS_DIR)")
    p.add_argument("--metric", choices=["best", "last"], default="last",
                   help="best or last epoch's test top-1 in the Markdown table (RepDistiller reports the last; the "
                        "CSV has both)")
    p.add_argument("--published", help="published tables to compare with: all (default), none, or comma-separated "
                                       "names from the package's published.yaml")
    p.add_argument("--no-plots", action="store_true", help="write the tables only")
    p.add_argument("--no-cost", action="store_true", help="leave out the training-cost table and plot (times measured "
                                                         "on a busy machine are noise)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..grid import write_report

    text, written = write_report(args.runs_dir, out=args.out, metric=args.metric, published=args.published,
                                 make_plots=not args.no_plots, cost=not args.no_cost)
    print(text)
    print("\nwritten: " + ", ".join(str(p) for p in written))
    return 0
