"""The ``kdzoo`` command: train, distill, eval, list, demo.

Options of train/distill are generated from :class:`kdzoo.config.RunConfig`, so the CLI, the YAML
configs and the Python API share one set of names (``--t-student`` == ``t_student:``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types
import typing
from typing import Any

import yaml

from . import __version__
from .config import RunConfig, build_config
from .errors import ConfigError, KdzooError

DISTILL_ONLY = {"teacher", "teacher_arch", "method", "method_options", "gamma", "alpha", "beta",
                "t_student", "t_teacher", "eval_teacher"}
KEY_VALUE_FLAGS = {"method_options": "--method-opt", "dataset_options": "--dataset-opt"}


def _base_type(tp) -> type:
    """``int | None`` -> int; ``list[int] | None`` -> list; plain types unchanged."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    return typing.get_origin(tp) or tp


def _parse_key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip().replace("-", "_"), yaml.safe_load(value)


def add_run_options(parser: argparse.ArgumentParser, distill: bool) -> None:
    """One flag per RunConfig field; defaults are suppressed so only given flags override."""
    hints = typing.get_type_hints(RunConfig)
    parser.add_argument("--config", help="YAML file (or packaged config name, see `kdzoo list configs`); flags override it")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last finished epoch")
    for f in dataclasses.fields(RunConfig):
        if f.name in DISTILL_ONLY and not distill:
            continue
        help_text = f.metadata.get("help", "")
        tp = _base_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        names = [flag]
        if f.name == "model":
            names = ["--student", "--model"] if distill else ["--model"]
        if f.name in KEY_VALUE_FLAGS:
            parser.add_argument(KEY_VALUE_FLAGS[f.name], dest=f.name, action="append", type=_parse_key_value,
                                metavar="KEY=VALUE", default=argparse.SUPPRESS, help=help_text)
        elif tp is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
        elif tp is list:
            parser.add_argument(flag, dest=f.name, nargs="+", type=int, default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(*names, dest=f.name, type=tp, default=argparse.SUPPRESS, help=help_text)


def run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    values = {k: v for k, v in vars(args).items() if k in {f.name for f in dataclasses.fields(RunConfig)}}
    for key in KEY_VALUE_FLAGS:
        if key in values:
            values[key] = dict(values[key])
    return values


def cmd_run(args: argparse.Namespace) -> int:
    from .engine import train

    overrides = run_overrides(args)
    if args.resume:
        summary = train(resume=args.resume, overrides=overrides)
    else:
        cfg = build_config(args.config, overrides)  # the engine defaults the method to kd when distilling
        if args.command == "distill" and cfg.teacher is None:
            raise ConfigError("kdzoo distill needs --teacher PATH: a kdzoo run folder or checkpoint, or a RepDistiller/mdistiller teacher file.")
        summary = train(cfg)
    print(f"done: best top-1 {summary['best_top1']:.2f}% (epoch {summary['best_epoch']}), "
          f"last {summary['last_top1']:.2f}%; run folder {summary['run_dir']}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .data import build_data
    from .engine import evaluate, load_model
    from .engine.evaluate import check_fits
    from .engine.runtime import resolve_device

    device = resolve_device(args.device)
    model, data = load_model(args.checkpoint, arch=args.arch, device=device)
    saved = data.get("config") or {}  # kdzoo checkpoints: evaluate on the data the run used
    dataset = args.dataset or saved.get("dataset")
    if dataset is None:
        raise ConfigError(f"{args.checkpoint} does not say which dataset it was trained on: pass --dataset NAME.")
    if saved.get("dataset") != dataset:
        saved = {}
    bundle = build_data(dataset, root=args.data_root or saved.get("data_root"), download=args.download,
                        eval_batch_size=args.batch_size, device=device, seed=saved.get("seed", 0),
                        test_subset=args.test_subset or saved.get("test_subset"), **saved.get("dataset_options", {}))
    check_fits(model, bundle, "checkpoint's model")
    result = evaluate(model, bundle.test, device)
    print(f"{model.kdzoo_arch} on {dataset} ({bundle.test.num_samples} test images): "
          f"top-1 {result['top1']:.2f}%  top-5 {result['top5']:.2f}%  loss {result['loss']:.4f}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from . import listing

    print(listing.render(args.what))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(output_dir=args.output_dir, data_root=args.data_root, quick=args.quick, device=args.device)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdzoo", description="Knowledge distillation for PyTorch.")
    parser.add_argument("--version", action="version", version=f"kdzoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a network from scratch (e.g. a teacher)")
    add_run_options(p, distill=False)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("distill", help="distill a student from a teacher")
    add_run_options(p, distill=True)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("eval", help="print the top-1/top-5 accuracy of a checkpoint")
    p.add_argument("checkpoint", help="kdzoo run folder or checkpoint, or a RepDistiller/mdistiller file")
    p.add_argument("--dataset", help="dataset (default: the one recorded in the checkpoint)")
    p.add_argument("--arch", help="architecture, when the file does not record it")
    p.add_argument("--data-root", help="data folder")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--test-subset", type=int, help="evaluate on a fixed random subset of N images (default: the run's own setting)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("list", help="list models, methods, datasets or packaged configs")
    p.add_argument("what", choices=["models", "methods", "datasets", "configs"])
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("demo", help="teacher, vanilla student and KD student on Fashion-MNIST, with a table")
    p.add_argument("--output-dir", default="runs/demo")
    p.add_argument("--data-root", help="folder with the Fashion-MNIST files (default: found automatically)")
    p.add_argument("--quick", action="store_true", help="a much smaller run (for tests)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KdzooError as exc:
        print(f"kdzoo: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print("\nkdzoo: interrupted. Every finished epoch is saved; continue with "
              "`kdzoo train|distill --resume RUN_DIR` (the run folder printed at the start).", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
