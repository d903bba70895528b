"""Run-option checks that keep bad values from reaching torch: every field's type (values from YAML
or a hand-edited ``config.yaml`` are not typed by the command line), the optimiser's numbers, the
loss weights, and ``--milestones``. Called first by :func:`kdzoo.config.validate`.
"""

from __future__ import annotations

import dataclasses
import typing
from collections import Counter
from typing import Any

from .declared import declared
from .errors import ConfigError


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_values(cfg: Any) -> None:
    """All checks of this module, types first."""
    check_types(cfg)
    check_optimiser(cfg)
    check_milestones(cfg)


def check_types(cfg: Any) -> None:
    """Every field of the config dataclass ``cfg`` holds a value of its declared type (floats finite)."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        spec, value = declared(hints[f.name]), getattr(cfg, f.name)
        if not spec.accepts(value):
            raise ConfigError(f"Run option {f.name} ({flag(f.name)}) must be {spec.expected()}, got {value!r}.")


def check_optimiser(cfg: Any) -> None:
    """Loss weights, momentum, weight decay and decay factor in the ranges torch and the loss assume."""
    for name in ("gamma", "alpha", "beta"):
        value = getattr(cfg, name)
        if value is not None and value < 0:
            raise ConfigError(f"{flag(name)} is a loss weight and must be >= 0 (0 drops the term), got {value!r}.")
    if not 0 <= cfg.momentum < 1:
        raise ConfigError(f"--momentum must be >= 0 and < 1 (RepDistiller: 0.9), got {cfg.momentum!r}.")
    if cfg.nesterov and cfg.momentum == 0:
        raise ConfigError("--nesterov needs a momentum > 0 (e.g. --momentum 0.9); drop --nesterov for plain SGD.")
    if cfg.weight_decay < 0:
        raise ConfigError(f"--weight-decay must be >= 0 (RepDistiller: 5e-4), got {cfg.weight_decay!r}.")
    if not 0 < cfg.lr_decay <= 1:
        raise ConfigError(f"--lr-decay multiplies the learning rate at each milestone and must be > 0 and <= 1 "
                          f"(RepDistiller: 0.1), got {cfg.lr_decay!r}.")


def check_milestones(cfg: Any) -> None:
    """Given milestones are epoch numbers >= 1, in increasing order, each once."""
    if cfg.milestones is None:
        return
    given = list(cfg.milestones)
    text = f"--milestones {' '.join(map(str, given))}"
    low = [m for m in given if m < 1]
    if low:
        raise ConfigError(f"{text}: a milestone is the epoch after which the learning rate decays, so it is >= 1; "
                          f"{', '.join(map(str, low))} would never decay it. Remove it.")
    repeated = sorted(m for m, n in Counter(given).items() if n > 1)
    if repeated:
        raise ConfigError(f"{text} repeats {', '.join(map(str, repeated))}: the learning rate would be multiplied by "
                          f"--lr-decay ({cfg.lr_decay:g}) once per repeat there. List each epoch once: "
                          f"--milestones {' '.join(map(str, sorted(set(given))))}.")
    if given != sorted(given):
        raise ConfigError(f"{text} is not in increasing order; write --milestones {' '.join(map(str, sorted(given)))}.")
