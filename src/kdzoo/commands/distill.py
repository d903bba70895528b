"""``kdzoo distill``: distill a student from a teacher (or with a self-distillation method)."""

from __future__ import annotations

import argparse

from .run_options import add_run_options, run_training


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("distill", help="distill a student from a teacher")
    add_run_options(parser, distill=True)
    parser.set_defaults(func=run_training)
