"""Values checked against their declared Python type, so a value from YAML or ``KEY=VALUE`` text that
does not fit is refused by name instead of failing deep inside torch.

Supported declarations: ``float`` (finite; ints accepted), ``int``, ``bool``, ``str``, ``dict``,
``list[X]`` / ``tuple[X, ...]`` of one of the scalar types, each optionally ``| None``, and
``Annotated[T, Range(...)]`` for bounds (on a list: on every element). Used for method options (the
constructor's signature, :mod:`kdzoo.methods.options`) and run options (:class:`~kdzoo.config.RunConfig`).
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from typing import Any

KINDS = {float: "a finite number", int: "a whole number", bool: "true or false", str: "a text value", dict: "a mapping"}


@dataclass(frozen=True)
class Range:
    """Bounds of a number (any of >= ``ge``, > ``gt``, <= ``le``, < ``lt``) and the reference setting
    shown when a value is refused (default: the declared default)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    reference: str | None = None

    def holds(self, value: float) -> bool:
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def describe(self) -> str:
        """``>= 0``, ``> 0``, ``between 0 and 1``, ``>= 0 and < 1``."""
        if self.ge is not None and self.le is not None:
            return f"between {self.ge:g} and {self.le:g}"
        bounds = ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
        return " and ".join(f"{op} {v:g}" for op, v in bounds if v is not None)


def _fits(kind: type, value: Any) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


@dataclass(frozen=True)
class Declared:
    """What a declaration accepts: ``kind`` (float, int, bool, str, dict, list or tuple), the element
    type ``item`` of a list/tuple, whether None is allowed, and the bounds."""

    kind: type
    item: type | None = None
    optional: bool = False
    range: Range | None = None

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.item is not None:
            values = value if isinstance(value, (list, tuple)) else None
            ok = values is not None and all(_fits(self.item, v) for v in values)
        else:
            values, ok = [value], _fits(self.kind, value)
        return ok and (self.range is None or all(self.range.holds(v) for v in values))

    def convert(self, value: Any) -> Any:
        """An accepted ``value`` as the code expects it: floats as float, lists and tuples as lists."""
        if value is None:
            return None
        if self.item is not None:
            return [float(v) if self.item is float else v for v in value]
        return float(value) if self.kind is float else value

    def expected(self) -> str:
        """What is accepted, in words: ``a whole number >= 1``, ``a list of finite numbers, or null``."""
        text = f"a list of {KINDS[self.item][2:]}s" if self.item is not None else KINDS[self.kind]
        if self.range is not None:
            text += f" {self.range.describe()}"
        return text + (", or null" if self.optional else "")


def declared(tp: Any) -> Declared:
    """The :class:`Declared` of a type annotation (as ``typing.get_type_hints(..., include_extras=True)`` gives it)."""
    optional, bounds = False, None
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp, optional = args[0], len(args) < len(typing.get_args(tp))
    if typing.get_origin(tp) is typing.Annotated:
        tp, *meta = typing.get_args(tp)
        bounds = next((m for m in meta if isinstance(m, Range)), None)
    origin = typing.get_origin(tp)
    item = typing.get_args(tp)[0] if origin in (list, tuple) else None
    return Declared(origin or tp, item, optional, bounds)
