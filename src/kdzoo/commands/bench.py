"""``kdzoo bench``: run an accuracy grid (:mod:`kdzoo.grid`) of teacher/student pairs x methods x seeds."""

from __future__ import annotations

import argparse
import sys

from .arguments import key_value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="run a grid of teacher/student pairs x methods x seeds (skips finished "
                                            "runs, resumes interrupted ones)")
    p.add_argument("--grid", required=True, help="grid YAML file or packaged grid name (`kdzoo list grids`), e.g. "
                                                 "bench/fashion_mnist_small")
    p.add_argument("--out", help="folder for the run folders (default runs/bench/<grid name>)")
    p.add_argument("--budget", help="epochs per run (a whole number, e.g. 5) or a fraction of each run's epochs "
                                    "(e.g. 0.1)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process (default 1: one after "
                                                       "another)")
    p.add_argument("--devices", help="comma-separated devices, one run on each at a time, e.g. cuda:0,cuda:1")
    p.add_argument("--device", help="device of every run (default: the grid's, else auto)")
    p.add_argument("--teachers", help="where the teachers are: 'train', 'pretrained:{arch}' (the published CIFAR-100 "
                                      "teachers, fetched once; `kdzoo teachers`), or a path with {arch}, e.g. "
                                      "save/models/{arch}_vanilla/ckpt_epoch_240.pth")
    p.add_argument("--set", action="append", type=key_value, metavar="KEY=VALUE",
                   help="run option for every run, overriding the grid's common: (e.g. data_root=/data)")
    p.add_argument("--no-teacher-cache", dest="teacher_cache", action="store_false",
                   help="no shared teacher cache (by default the runs of logit methods share one in "
                        "<out>/teacher_cache, or the grid's teacher_cache folder: per teacher and seed the first run "
                        "computes the teacher's logits, the others read them)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state without running anything")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..grid import run_grid
    from ..grid.grid_file import parse_budget

    overrides = dict(args.set or [])
    if args.device:
        overrides["device"] = args.device
    devices = [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else None
    try:
        outcomes = run_grid(args.grid, out=args.out, budget=parse_budget(args.budget), overrides=overrides,
                            teachers=args.teachers, jobs=args.jobs, devices=devices, dry_run=args.dry_run,
                            teacher_cache=args.teacher_cache)
    except KeyboardInterrupt:
        print("\nkdzoo: interrupted. Finished runs and every finished epoch are saved; run the same "
              "`kdzoo bench` command again to resume.", file=sys.stderr)
        return 130
    return 1 if any(not o.ok for o in outcomes) else 0
