"""YAML as kdzoo reads it (configs, grids, ``KEY=VALUE`` flags): ``yaml.safe_load`` (it names things, never runs
code), with YAML 1.2's numbers, so ``7e-05`` and ``1e3`` are floats as in Python, not strings as in YAML 1.1; and
its errors in one line (:func:`problem`)."""

from __future__ import annotations

import re
from typing import Any

import yaml


class Loader(yaml.SafeLoader):
    """The safe loader, with floats written without a decimal point (``1e-5``) read as floats."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load(text: str) -> Any:
    """``text`` as YAML (see the module docstring)."""
    return yaml.load(text, Loader=Loader)  # noqa: S506 -- a subclass of SafeLoader


def problem(exc: yaml.YAMLError) -> str:
    """What ``exc`` says is wrong, in one line, with where: ``found undefined alias 'a' (line 1, column 1)``; a
    ``!!python/...`` tag is said to build nothing."""
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"{context}: {what}" if context else what
    if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in what:
        text += ", as kdzoo's YAML names values and never builds Python objects"
    mark = getattr(exc, "problem_mark", None)
    return text + (f" (line {mark.line + 1}, column {mark.column + 1})" if mark else "")
