"""Run-option checks that keep bad values from reaching torch, called by :func:`kdzoo.config.validate`:
every field against its declaration (type, bounds, choices: values from YAML or a hand-edited
``config.yaml`` are not typed by the command line), then :data:`RULES`, the few that join fields.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any

from .declared import check_values, declared_options
from .errors import ConfigError


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def run_flag(f: dataclasses.Field) -> str:
    """The flag that sets the config field ``f``: its declared ``"flag"`` (``--method-opt``), else :func:`flag`."""
    return f.metadata.get("flag") or flag(f.name)


def yaml_name(name: str) -> str:
    """The sentence a refusal ends with when the config-file key is spelt otherwise than the flag."""
    return f" In a config file: `{name}: VALUE`." if "_" in name else ""


def check_run_options(cfg: Any) -> None:
    """Every field of the config dataclass ``cfg`` against its declaration, then each of :data:`RULES`."""
    check_declared(cfg)
    for rule in RULES:
        message = rule(cfg)
        if message:
            raise ConfigError(message)


def check_declared(cfg: Any) -> None:
    """Every field of ``cfg`` holds a value its declaration accepts (type, bounds, choices; floats finite)."""
    options = declared_options(type(cfg))
    flags = {f.name: run_flag(f) for f in dataclasses.fields(cfg)}
    check_values({name: getattr(cfg, name) for name in options}, options, label=flags.__getitem__, fix=yaml_name)


def check_run_option(name: str, value: Any, options: dict, where: str | None = None) -> None:
    """One run option's value (e.g. from a grid file) against its declaration in ``options``; ``where`` says where
    it was given."""
    label = f"{where}: {name}" if where else flag(name)
    check_values({name: value}, options, label=lambda _: label, fix=lambda _: "" if where else yaml_name(name))


# -- the rules that join fields (a declaration says what one field accepts)

def model_given(cfg: Any) -> str | None:
    if cfg.model is None:
        return ("No model given: pass --model NAME (or --student NAME when distilling); `kdzoo list models` shows "
                "the names.")
    return None


def nesterov_has_momentum(cfg: Any) -> str | None:
    if cfg.nesterov and cfg.momentum == 0:
        return "--nesterov needs a momentum > 0 (e.g. --momentum 0.9); drop --nesterov for plain SGD."
    return None


def milestones_in_order(cfg: Any) -> str | None:
    """Given milestones are epoch numbers >= 1, in increasing order, each once."""
    if cfg.milestones is None:
        return None
    given = list(cfg.milestones)
    text = f"--milestones {' '.join(map(str, given))}"
    low = [m for m in given if m < 1]
    if low:
        return (f"{text}: a milestone is the epoch after which the learning rate decays, so it is >= 1; "
                f"{', '.join(map(str, low))} would never decay it. Remove it.")
    repeated = sorted(m for m, n in Counter(given).items() if n > 1)
    if repeated:
        return (f"{text} repeats {', '.join(map(str, repeated))}: the learning rate would be multiplied by "
                f"--lr-decay ({cfg.lr_decay:g}) once per repeat there. List each epoch once: "
                f"--milestones {' '.join(map(str, sorted(set(given))))}.")
    if given != sorted(given):
        return f"{text} is not in increasing order; write --milestones {' '.join(map(str, sorted(given)))}."
    return None


def dot_delta_below_momentum(cfg: Any) -> str | None:
    if cfg.optimizer == "dot" and not cfg.dot_delta < cfg.momentum:
        return f"--dot-delta must be >= 0 and below --momentum ({cfg.momentum}), got {cfg.dot_delta!r}."
    return None


def dot_without_fp16(cfg: Any) -> str | None:
    if cfg.optimizer == "dot" and cfg.amp == "fp16":
        return ("--optimizer dot runs two backward passes per step, which fp16 loss scaling does not support; use "
                "--amp bf16 or none.")
    return None


def logit_std_has_method(cfg: Any) -> str | None:
    if cfg.logit_std and not cfg.has_method:
        return "--logit-std standardises the logits of a distillation loss, so it needs --teacher."
    return None


def dot_has_method(cfg: Any) -> str | None:
    if cfg.optimizer == "dot" and not cfg.has_method:
        return ("--optimizer dot splits the cross-entropy and distillation gradients, so it needs a teacher (or a "
                "self-distillation method); use --optimizer sgd to train without one.")
    return None


def warmup_below_epochs(cfg: Any) -> str | None:
    if not cfg.warmup_epochs < cfg.epochs:
        return f"--warmup-epochs must be between 0 and epochs-1 ({cfg.epochs - 1}), got {cfg.warmup_epochs}."
    return None


def data_seed_is_a_run_option(cfg: Any) -> str | None:
    if "data_seed" in cfg.dataset_options:
        return ("data_seed is a run option, not a dataset option: use --data-seed N (data_seed: N in YAML); the "
                "synthetic dataset's own seed is --dataset-opt generator_seed=N.")
    return None


#: Builder arguments kdzoo sets itself, from the data and the run: never a model option.
KDZOO_MODEL_ARGUMENTS = {"num_classes": "the dataset's class count", "in_channels": "the dataset's image channels",
                         "feature_layers": "--feature-layers (--teacher-feature-layers)"}


def model_options_leave_kdzoos_arguments(cfg: Any) -> str | None:
    for flag_name, options in (("--model-opt", cfg.model_options), ("--teacher-opt", cfg.teacher_options)):
        taken = [name for name in KDZOO_MODEL_ARGUMENTS if name in options]
        if taken:
            said = "; ".join(f"{name} comes from {KDZOO_MODEL_ARGUMENTS[name]}" for name in taken)
            return (f"{flag_name} {taken[0]}=... cannot be set: {said}. Drop it (for another class count, train on "
                    f"data with that many classes, e.g. --dataset-opt num_classes=N for synthetic).")
    return None


#: The checks a declaration cannot express, in the order they run; each gives a message or None.
RULES: tuple[Callable[[Any], str | None], ...] = (
    model_given, nesterov_has_momentum, milestones_in_order, dot_delta_below_momentum, dot_without_fp16,
    logit_std_has_method, dot_has_method, warmup_below_epochs, data_seed_is_a_run_option,
    model_options_leave_kdzoos_arguments)
