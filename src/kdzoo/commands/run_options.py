"""What ``kdzoo train`` and ``kdzoo distill`` share: one flag per :class:`~kdzoo.config.RunConfig` field, and the
run itself (a new run from ``--config`` and the flags, or ``--resume`` of a run folder).

The flags are generated from the config's fields, so the CLI, the YAML configs and the Python API share one set of
names (``--t-student`` == ``t_student:``).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from .. import distributed
from ..config import (
    RUN_OPTIONS,
    Role,
    RunConfig,
    build_config,
    dataset_recipes,
    distill_flags,
    fields_with,
    option_text,
    run_flag,
)
from ..errors import ConfigError
from .arguments import comma_separated, key_value, number_of

#: The flags of ``kdzoo distill`` only (:attr:`Role.DISTILL <kdzoo.config.Role.DISTILL>`).
DISTILL_ONLY = fields_with(Role.DISTILL)
#: Options given as repeated ``KEY=VALUE`` flags (the mappings), by their flag.
KEY_VALUE_FLAGS = {f.name: run_flag(f) for f in dataclasses.fields(RunConfig) if RUN_OPTIONS[f.name].spec.kind is dict}


def add_run_options(parser: argparse.ArgumentParser, distill: bool) -> None:
    """One flag per RunConfig field, typed by its declaration; defaults are suppressed so only given flags
    override."""
    recipes = dataset_recipes()
    parser.add_argument("--config", help="YAML file (or packaged config name, see `kdzoo list configs`); "
                        "flags override it")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last finished epoch, "
                        "with its own settings, teacher and data (only --epochs, the output folder, device and logging "
                        "options may change)")
    parser.add_argument("--extend", action="store_true", help="with --resume and --epochs N: train a finished run on "
                        "to N epochs; the extra epochs keep the lr of its last epoch (the schedule is not restarted)")
    for f in dataclasses.fields(RunConfig):
        if f.name in DISTILL_ONLY and not distill:
            continue
        help_text = f.metadata.get("help", "") + default_help(f, recipes)
        spec = RUN_OPTIONS[f.name].spec
        tp = spec.kind
        flag = run_flag(f)
        names = [*distill_flags(f), flag] if distill else [flag]
        if f.name in KEY_VALUE_FLAGS:
            parser.add_argument(flag, dest=f.name, action="append", type=key_value,
                                metavar="KEY=VALUE", default=argparse.SUPPRESS, help=help_text)
        elif tp is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=help_text)
        elif tp is list and spec.item is str:
            parser.add_argument(flag, dest=f.name, type=comma_separated, metavar="A,B,...", default=argparse.SUPPRESS,
                                help=help_text)
        elif tp is list:
            parser.add_argument(flag, dest=f.name, nargs="+", type=int, default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(*names, dest=f.name, type=number_of(spec) if tp in (int, float) else tp,
                                default=argparse.SUPPRESS, help=help_text)


def default_help(f: dataclasses.Field, recipes: dict[str, dict[str, Any]]) -> str:
    """`` (default: X; dataset recipes: dataset Y, ...). Must be >= 1.`` for a RunConfig field's help: its
    default, unless the help already names it, the dataset recipes that change it, and the bounds or choices its
    declaration states (``One of sgd, adamw, dot.``)."""
    spec, default = RUN_OPTIONS[f.name]
    named = "default" in f.metadata.get("help", "") or default in (None, {})
    text = "" if named else f"default: {option_text(default)}"
    recipes = [f"{name} {option_text(recipe[f.name])}" for name, recipe in recipes.items() if f.name in recipe]
    if recipes:
        text += ("; " if text else "") + "dataset recipes: " + ", ".join(recipes)
    limits = spec.limits()
    if limits:
        limits = f". {limits[0].upper()}{limits[1:]}."
    return (f" ({text})" if text else "").replace("%", "%%") + limits


def run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The RunConfig values given as flags (``KEY=VALUE`` flags as dicts)."""
    values = {k: v for k, v in vars(args).items() if k in {f.name for f in dataclasses.fields(RunConfig)}}
    for key in KEY_VALUE_FLAGS:
        if key in values:
            values[key] = dict(values[key])
    return values


def run_training(args: argparse.Namespace) -> int:
    """Train or distill (``args.command``), or resume; print the result line."""
    from ..engine import train
    from ..engine.resume import check_command

    overrides = run_overrides(args)
    if args.extend and not args.resume:
        raise ConfigError("--extend trains a finished run longer: use it with --resume RUN_DIR --epochs N.")
    if args.resume:
        check_command(args.resume, args.command)
        summary = train(resume=args.resume, overrides=overrides, extend=args.extend)
    else:
        cfg = build_config(args.config, overrides)  # the engine defaults the method to kd when distilling
        if args.command == "distill" and not cfg.has_method:
            raise ConfigError("kdzoo distill needs --teacher PATH: a kdzoo run folder or checkpoint, or a "
                              "RepDistiller/mdistiller teacher file; or --teacher pretrained:NAME, a published "
                              "CIFAR-100 teacher (`kdzoo teachers`); or --method NAME for a self-distillation method.")
        summary = train(cfg)
    if distributed.is_main():
        print(f"done: best top-1 {summary['best_top1']:.2f}% (epoch {summary['best_epoch']}), "
              f"last {summary['last_top1']:.2f}%; run folder {summary['run_dir']}")
    return 0
