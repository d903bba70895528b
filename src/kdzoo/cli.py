"""The ``kdzoo`` command: train, distill, eval, list, demo, bench, report, temperature, plot.

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
from pathlib import Path
from typing import Any

import yaml

from . import __version__, distributed
from .config import RunConfig, build_config, dataset_recipes, option_text, upgrade_saved_config
from .errors import ConfigError, KdzooError

DISTILL_ONLY = {"teacher", "teacher_arch", "teacher_options", "teacher_pretrained", "method", "method_options", "gamma", "alpha", "beta",
                "t_student", "t_teacher", "logit_std", "eval_teacher", "dot_delta"}
KEY_VALUE_FLAGS = {"method_options": "--method-opt", "dataset_options": "--dataset-opt", "model_options": "--model-opt",
                   "teacher_options": "--teacher-opt"}


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
    recipes = dataset_recipes()
    parser.add_argument("--config", help="YAML file (or packaged config name, see `kdzoo list configs`); flags override it")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last finished epoch, "
                        "with its own settings (only --epochs and paths, device, logging options may change)")
    parser.add_argument("--extend", action="store_true", help="with --resume and --epochs N: train a finished run on to N "
                        "epochs; the extra epochs keep the lr of its last epoch (the schedule is not restarted)")
    for f in dataclasses.fields(RunConfig):
        if f.name in DISTILL_ONLY and not distill:
            continue
        help_text = f.metadata.get("help", "") + default_help(f, recipes)
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


def default_help(f: dataclasses.Field, recipes: dict[str, dict[str, Any]]) -> str:
    """`` (default: X; recipes: dataset Y, ...)`` for a RunConfig field's help: its default, unless the help
    already names it, and the dataset recipes that change it."""
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    text = "" if "default" in f.metadata.get("help", "") or default in (None, {}) else f"default: {option_text(default)}"
    recipes = [f"{name} {option_text(recipe[f.name])}" for name, recipe in recipes.items() if f.name in recipe]
    if recipes:
        text += ("; " if text else "") + "dataset recipes: " + ", ".join(recipes)
    return f" ({text})".replace("%", "%%") if text else ""


def run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    values = {k: v for k, v in vars(args).items() if k in {f.name for f in dataclasses.fields(RunConfig)}}
    for key in KEY_VALUE_FLAGS:
        if key in values:
            values[key] = dict(values[key])
    return values


def cmd_run(args: argparse.Namespace) -> int:
    from .engine import train
    from .engine.resume import check_command

    overrides = run_overrides(args)
    if args.extend and not args.resume:
        raise ConfigError("--extend trains a finished run longer: use it with --resume RUN_DIR --epochs N.")
    if args.resume:
        check_command(args.resume, args.command)
        summary = train(resume=args.resume, overrides=overrides, extend=args.extend)
    else:
        cfg = build_config(args.config, overrides)  # the engine defaults the method to kd when distilling
        if args.command == "distill" and not cfg.has_method:
            raise ConfigError("kdzoo distill needs --teacher PATH: a kdzoo run folder or checkpoint, or a RepDistiller/mdistiller "
                              "teacher file (or --method NAME for a self-distillation method).")
        summary = train(cfg)
    if distributed.is_main():
        print(f"done: best top-1 {summary['best_top1']:.2f}% (epoch {summary['best_epoch']}), "
              f"last {summary['last_top1']:.2f}%; run folder {summary['run_dir']}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .data import build_data
    from .engine import evaluate, load_model
    from .engine.checkpoint import resolve_checkpoint_path
    from .engine.evaluate import check_fits
    from .engine.runtime import resolve_device
    from .models import MultiExitNet

    device = resolve_device(args.device)
    model, data = load_model(args.checkpoint, arch=args.arch, device=device)
    exits = isinstance(model, MultiExitNet)
    if not exits and (args.thresholds or args.plot):
        raise ConfigError(f"--thresholds and --plot report early exit, and {args.checkpoint} holds a network without exits "
                          f"(train one with --method byot, or exit_kd with a teacher).")
    saved = data.get("config") or {}  # kdzoo checkpoints: evaluate on the data the run used
    dataset = args.dataset or saved.get("dataset")
    if dataset is None:
        raise ConfigError(f"{args.checkpoint} does not say which dataset it was trained on: pass --dataset NAME.")
    saved = upgrade_saved_config(saved)[0] if saved.get("dataset") == dataset else {}
    test_subset = saved.get("test_subset") if args.test_subset is None else args.test_subset or None  # 0: whole split
    data_seed = saved.get("data_seed", RunConfig.data_seed) if args.data_seed is None else args.data_seed
    bundle = build_data(dataset, root=args.data_root or saved.get("data_root"), download=args.download,
                        eval_batch_size=args.batch_size, device=device, seed=saved.get("seed", 0), data_seed=data_seed,
                        test_subset=test_subset, **saved.get("dataset_options", {}))
    check_fits(model, bundle, "checkpoint's model")
    result = evaluate(model, bundle.test, device)
    images = f"test subset of {test_subset} images, data seed {data_seed}" if test_subset else "whole test split"
    print(f"{model.kdzoo_arch} on {dataset} ({images}): "
          f"top-1 {result['top1']:.2f}%  top-5 {result['top5']:.2f}%  loss {result['loss']:.4f}")
    if exits:
        from .engine.early_exit import DEFAULT_THRESHOLDS, early_exit_report, format_report, plot_report

        report = early_exit_report(model, bundle.test, (bundle.in_channels, *bundle.image_size),
                                   args.thresholds or DEFAULT_THRESHOLDS)
        print(f"\n{format_report(report)}")
        plot = args.plot or resolve_checkpoint_path(args.checkpoint).parent / "early_exit.png"
        print(f"\nplot: {plot_report(report, plot, f'{model.kdzoo_arch} with {model.num_exits} exits on {dataset}')}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from . import listing

    print(listing.render(args.what))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(output_dir=args.output_dir, data_root=args.data_root, quick=args.quick, device=args.device)
    return 0


def _probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench
    from .bench.grid import parse_budget

    overrides = dict(args.set or [])
    if args.device:
        overrides["device"] = args.device
    try:
        outcomes = run_bench(args.grid, out=args.out, budget=parse_budget(args.budget), overrides=overrides,
                             teachers=args.teachers, jobs=args.jobs,
                             devices=[d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else None,
                             dry_run=args.dry_run)
    except KeyboardInterrupt:
        print("\nkdzoo: interrupted. Finished runs and every finished epoch are saved; run the same "
              "`kdzoo bench` command again to resume.", file=sys.stderr)
        return 130
    return 1 if any(not o.ok for o in outcomes) else 0


def cmd_report(args: argparse.Namespace) -> int:
    from .bench import write_report

    text, written = write_report(args.runs_dir, out=args.out, metric=args.metric, published=args.published,
                                 make_plots=not args.no_plots)
    print(text)
    print("\nwritten: " + ", ".join(str(p) for p in written))
    return 0


def cmd_temperature(args: argparse.Namespace) -> int:
    from . import temperature_tool as tool

    if args.teacher is None:
        if args.student or args.index is not None or args.class_name:
            raise ConfigError("--student, --index and --class need --teacher (a kdzoo run folder or checkpoint, or a RepDistiller file).")
        print(tool.logits_report(args.logits, args.classes, args.temperatures, Path(args.out)))
        return 0
    if args.index is not None and args.class_name:
        raise ConfigError("Give --index N or --class NAME, not both.")
    sample = tool.load_sample(args.teacher, args.student, args.dataset, args.data_root, args.download, args.index,
                              args.class_name, args.batch_size, args.device)
    print(tool.model_report(sample, args.temperatures, args.top, Path(args.out)))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .engine.logger import read_metrics
    from .plots import plot_run_columns

    for run in args.run_dirs:
        rows = read_metrics(Path(run))
        if not rows:
            raise ConfigError(f"{run} has no metrics.csv: give kdzoo run folders that finished at least one epoch.")
        missing = [c for c in args.columns if c not in rows[0]]
        if missing:
            raise ConfigError(f"{run}/metrics.csv has no column {', '.join(missing)}; its columns: {', '.join(rows[0])}.")
    print(f"plot: {plot_run_columns(args.run_dirs, args.columns, Path(args.out), args.title or ', '.join(args.columns) + ' per epoch')}")
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

    p = sub.add_parser("eval", help="print the top-1/top-5 accuracy of a checkpoint (multi-exit networks: every exit and early exit vs FLOPs)")
    p.add_argument("checkpoint", help="kdzoo run folder or checkpoint, or a RepDistiller/mdistiller file")
    p.add_argument("--dataset", help="dataset (default: the one recorded in the checkpoint)")
    p.add_argument("--arch", help="architecture, when the file does not record it")
    p.add_argument("--data-root", help="data folder")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--test-subset", type=_whole_number, metavar="N",
                   help="evaluate on a fixed random subset of N images; 0 = the whole test split (default: the run's own setting)")
    p.add_argument("--data-seed", type=int, help="seed that draws the test subset (default: the run's own, else 0)")
    p.add_argument("--device", default="auto")
    p.add_argument("--thresholds", type=_probability, nargs="+", metavar="TAU",
                   help="multi-exit networks: early-exit confidence thresholds in [0, 1] (default 0 0.5 0.7 0.8 0.9 0.95 0.99 1)")
    p.add_argument("--plot", help="multi-exit networks: accuracy-vs-FLOPs plot file (default: early_exit.png next to the checkpoint)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("list", help="list models, methods, datasets, packaged configs, benchmark grids, or which "
                                    "method runs on which kind of network (support)")
    p.add_argument("what", choices=["models", "methods", "datasets", "configs", "grids", "support"])
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("demo", help="teacher, vanilla student and KD student on Fashion-MNIST, with a table")
    p.add_argument("--output-dir", default="runs/demo")
    p.add_argument("--data-root", help="folder with the Fashion-MNIST files (default: found automatically)")
    p.add_argument("--quick", action="store_true", help="a much smaller run (for tests)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench", help="run a grid of teacher/student pairs x methods x seeds (skips finished runs, resumes interrupted ones)")
    p.add_argument("--grid", required=True, help="grid YAML file or packaged grid name (`kdzoo list grids`), e.g. bench/fashion_mnist_small")
    p.add_argument("--out", help="folder for the run folders (default runs/bench/<grid name>)")
    p.add_argument("--budget", help="epochs per run (a whole number, e.g. 5) or a fraction of each run's epochs (e.g. 0.1)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process (default 1: one after another)")
    p.add_argument("--devices", help="comma-separated devices, one run on each at a time, e.g. cuda:0,cuda:1")
    p.add_argument("--device", help="device of every run (default: the grid's, else auto)")
    p.add_argument("--teachers", help="where the teachers are: 'train', or a path with {arch}, e.g. save/models/{arch}_vanilla/ckpt_epoch_240.pth")
    p.add_argument("--set", action="append", type=_parse_key_value, metavar="KEY=VALUE", help="run option for every run, overriding the grid's common: (e.g. data_root=/data)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state without running anything")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("report", help="tables (Markdown, CSV) and plots of the finished runs in a folder, beside the published numbers")
    p.add_argument("runs_dir", help="folder holding run folders (e.g. runs/bench/<grid>)")
    p.add_argument("--out", help="where report.md, report.csv and plots/ go (default: RUNS_DIR)")
    p.add_argument("--metric", choices=["best", "last"], default="last", help="best or last epoch's test top-1 in the Markdown table (RepDistiller reports the last; the CSV has both)")
    p.add_argument("--published", help="published tables to compare with: all (default), none, or comma-separated names from the package's published.yaml")
    p.add_argument("--no-plots", action="store_true", help="write the tables only")
    p.set_defaults(func=cmd_report)

    from .temperature import CLASSIC_CLASSES, CLASSIC_LOGITS, CLASSIC_TEMPERATURES

    p = sub.add_parser("temperature", help="what the distillation temperature does to a distribution: probabilities, entropy, plots")
    p.add_argument("--logits", type=float, nargs="+", default=list(CLASSIC_LOGITS), help="logits to soften (default: the classic 4-class example)")
    p.add_argument("--classes", nargs="+", default=list(CLASSIC_CLASSES), help="class names, one per logit")
    p.add_argument("--temperatures", type=_positive, nargs="+", default=list(CLASSIC_TEMPERATURES), help="temperatures to compare")
    p.add_argument("--out", default="runs/temperature/temperature.png",
                   help="plot file, its folder created if missing (default: runs/temperature/temperature.png; with "
                        "--student also <stem>_kl.png and <stem>_standardized.png)")
    p.add_argument("--teacher", help="use a real teacher's logits on a test image: kdzoo run folder or checkpoint, or a RepDistiller file")
    p.add_argument("--student", help="also a student: compare equal/different temperatures and standardized logits on the image's test batch")
    p.add_argument("--dataset", help="dataset (default: the one recorded in the teacher's checkpoint)")
    p.add_argument("--data-root", help="data folder")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--index", type=int, help="test image number (default 0)")
    p.add_argument("--class", dest="class_name", help="use the first test image of this class")
    p.add_argument("--batch-size", type=int, default=64, help="test batch for KL(teacher || student)")
    p.add_argument("--top", type=int, default=5, help="classes shown (the teacher's most likely); entropy uses all")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_temperature)

    p = sub.add_parser("plot", help="plot columns of run folders' metrics.csv against epoch (e.g. CTKD's learned temperature, DKD's TCKD and NCKD)")
    p.add_argument("run_dirs", nargs="+", help="kdzoo run folders")
    p.add_argument("--columns", nargs="+", required=True, help="metrics.csv columns, e.g. stat_temperature, or train_dkd_tckd train_dkd_nckd")
    p.add_argument("--out", default="metrics.png", help="plot file")
    p.add_argument("--title", help="plot title (default: the columns)")
    p.set_defaults(func=cmd_plot)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .engine.interrupts import EXIT_CODES, Interrupted, catch_signals

    args = build_parser().parse_args(argv)
    try:
        with catch_signals():
            return args.func(args)
    except KdzooError as exc:
        where = f" (rank {distributed.rank()})" if distributed.is_distributed() else ""
        print(f"kdzoo: error{where}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        sys.stdout = open(os.devnull, "w")
        return 0
    except RuntimeError as exc:  # under torchrun: a collective that failed because another process is gone
        if not distributed.lost_peer(exc):
            raise
        print(f"kdzoo: error (rank {distributed.rank()}): {distributed.lost_peer_message(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused: full disk, permissions, a missing folder
        target = f"{exc.filename}: " if exc.filename else ""
        print(f"kdzoo: error: {target}{exc.strerror or exc}. Check the path, its permissions and the free space.",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM under catch_signals
        exc = exc if isinstance(exc, Interrupted) else Interrupted()
        print(f"\n{exc.message(args.command)}", file=sys.stderr)
        return EXIT_CODES[exc.signal_name]
    finally:
        distributed.cleanup()


if __name__ == "__main__":
    sys.exit(main())
