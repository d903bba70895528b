"""Argument types shared by the commands: ``KEY=VALUE`` pairs, comma-separated names and checked numbers."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

import yaml

from .. import yaml_load
from ..declared import Declared


def key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> ``(key, value)``: the key with ``-`` as ``_``, the value read as YAML (``2``, ``true``,
    ``[1, 2]``)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip().replace("-", "_"), yaml_load.load(value)
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not valid YAML: {yaml_load.problem(exc)}. Write "
                                         f"a YAML value: 2, 0.5, true, [1, 2] or text ('a b' when quoted).") from None


def number_of(spec: Declared) -> Callable[[str], Any]:
    """The argparse type of a numeric option declared by ``spec``: its text as a number of ``spec.kind``, or an error
    that says what the option takes (``must be a whole number between 0 and 9223372036854775807, got '1e23'``)."""
    expected = dataclasses.replace(spec, optional=False).expected()

    def parse(text: str) -> Any:
        try:
            return spec.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None

    return parse


def comma_separated(text: str) -> list[str]:
    """``a,b,c`` -> ``["a", "b", "c"]`` (module names; spaces around the commas are dropped)."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected names separated by commas, e.g. layer1,layer2,layer3; got {text!r}")
    return names


def probability(text: str) -> float:
    """A number in [0, 1]."""
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def whole_number(text: str) -> int:
    """An integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text}")
    return value


def positive(text: str) -> float:
    """A number > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value
