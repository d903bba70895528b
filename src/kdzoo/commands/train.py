"""``kdzoo train``: train a network from scratch (e.g. a teacher)."""

from __future__ import annotations

import argparse

from .run_options import add_run_options, run_training


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a network from scratch (e.g. a teacher)")
    add_run_options(parser, distill=False)
    parser.set_defaults(func=run_training)
