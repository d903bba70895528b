"""Options declared once, by their annotation, and checked in one place: values from YAML, ``KEY=VALUE``
text or Python that do not fit are refused by name instead of failing deep inside torch.

Supported declarations: ``float`` (finite; ints accepted), ``int``, ``bool``, ``str``, ``dict``,
``list[X]`` / ``tuple[X, ...]`` of one of the scalar types, each optionally ``| None``, with
``Annotated[T, Range(...)]`` for bounds (on a list: on every element) or ``Annotated[str, OneOf(...)]``
for a fixed set of values. :func:`declared_options` reads them from a signature (method constructors,
dataset factories, :func:`~kdzoo.data.build_data`) or a dataclass (:class:`~kdzoo.config.RunConfig`);
:func:`check_value` refuses a value with one message form: the option, what it accepts, the reference
setting and the value given. The same declarations write the bounds and choices into CLI help
(:meth:`Declared.limits`).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .errors import ConfigError

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
        """``>= 0``, ``> 0``, ``between 0 and 1``, ``>= 0 and < 1`` (whole-number bounds written out in full)."""
        if self.ge is not None and self.le is not None:
            return f"between {_bound(self.ge)} and {_bound(self.le)}"
        bounds = ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
        return " and ".join(f"{op} {_bound(v)}" for op, v in bounds if v is not None)


def _bound(value: float) -> str:
    """A bound as a refusal writes it: ``9223372036854775807``, not ``9.22337e+18``; ``0.001`` for floats."""
    return str(value) if isinstance(value, int) else f"{value:g}"


#: Every seed: torch seeds its generators with a signed 64-bit integer, so 0..2**63-1 (what ``--seed`` and
#: ``--data-seed`` take, and the seeds of grid files and dataset options).
SEED = Range(ge=0, le=2**63 - 1, reference="2**63-1 is the largest seed torch takes")


@dataclass(frozen=True, init=False)
class OneOf:
    """The values a text option takes (``OneOf("sgd", "adamw", reference=...)``)."""

    values: tuple[str, ...]
    reference: str | None = None

    def __init__(self, *values: str, reference: str | None = None):
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "reference", reference)

    def holds(self, value: Any) -> bool:
        return value in self.values

    def describe(self) -> str:
        """``'stop' or 'skip'``, ``one of 'sgd', 'adamw', 'dot'``."""
        quoted = [repr(v) for v in self.values]
        return " or ".join(quoted) if len(quoted) == 2 else "one of " + ", ".join(quoted)

    def listing(self) -> str:
        """``one of sgd, adamw, dot``, for help text."""
        return "one of " + ", ".join(self.values)


def _fits(kind: type, value: Any) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


@dataclass(frozen=True)
class Declared:
    """What a declaration accepts: ``kind`` (float, int, bool, str, dict, list or tuple), the element
    type ``item`` of a list/tuple, whether None is allowed, and the bounds (a :class:`Range`) or
    choices (a :class:`OneOf`)."""

    kind: type
    item: type | None = None
    optional: bool = False
    range: Range | OneOf | None = None

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
        """What is accepted, in words: ``a whole number >= 1``, ``a list of finite numbers, or null``,
        ``one of 'sgd', 'adamw', 'dot'``."""
        if isinstance(self.range, OneOf):
            text = self.range.describe()
        else:
            text = f"a list of {KINDS[self.item][2:]}s" if self.item is not None else KINDS[self.kind]
            if self.range is not None:
                text += f" {self.range.describe()}"
        return text + (", or null" if self.optional else "")

    def limits(self) -> str:
        """The bounds or choices alone, for help text (``must be >= 1``, ``one of step, cosine, constant``;
        ``""`` when none are declared)."""
        if self.range is None:
            return ""
        return self.range.listing() if isinstance(self.range, OneOf) else f"must be {self.range.describe()}"

    @property
    def reference(self) -> str | None:
        return self.range.reference if self.range is not None else None


def declared(tp: Any) -> Declared:
    """The :class:`Declared` of a type annotation (as ``typing.get_type_hints(..., include_extras=True)`` gives it)."""
    optional, bounds = False, None
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp, optional = args[0], len(args) < len(typing.get_args(tp))
    if typing.get_origin(tp) is typing.Annotated:
        tp, *meta = typing.get_args(tp)
        bounds = next((m for m in meta if isinstance(m, (Range, OneOf))), None)
    origin = typing.get_origin(tp)
    item = typing.get_args(tp)[0] if origin in (list, tuple) else None
    return Declared(origin or tp, item, optional, bounds)


class Option(NamedTuple):
    """One declared option: its :class:`Declared` and its default."""

    spec: Declared
    default: Any


def declared_options(source: Callable[..., Any] | type, skip: Collection[str] = ()) -> dict[str, Option]:
    """``name -> Option(declaration, default)``, the one reader of options: every parameter of the callable
    ``source`` that has a default (keyword-only or not; a method's ``__init__``, a dataset factory,
    ``build_data``), or every field of the dataclass ``source``; ``skip`` names left out."""
    if dataclasses.is_dataclass(source):
        hints = typing.get_type_hints(source, include_extras=True)
        return {f.name: Option(declared(hints[f.name]), f.default if f.default is not dataclasses.MISSING
                               else f.default_factory())  # type: ignore[misc]
                for f in dataclasses.fields(source) if f.name not in skip}
    hints = typing.get_type_hints(source, include_extras=True)
    return {p.name: Option(declared(hints.get(p.name, Any)), p.default)
            for p in inspect.signature(source).parameters.values()
            if p.default is not p.empty and p.name not in skip}


def refusal(label: str, spec: Declared, value: Any, reference: Any = None, fix: str = "") -> str:
    """The one message for a refused value: ``{label} must be {expected} ({reference}), got {value!r}.{fix}``."""
    ref = f" ({reference})" if reference not in (None, "") else ""
    return f"{label} must be {spec.expected()}{ref}, got {value!r}.{fix}"


def check_value(label: str, spec: Declared, value: Any, reference: Any = None, fix: str = "") -> Any:
    """``value`` as declared (:meth:`Declared.convert`), or a :class:`ConfigError` worded by :func:`refusal`."""
    if not spec.accepts(value):
        raise ConfigError(refusal(label, spec, value, reference, fix))
    return spec.convert(value)


def check_values(values: Mapping[str, Any], options: Mapping[str, Option], label: Callable[[str], str],
                 reference: Callable[[str, Option], Any] = lambda name, option: option.spec.reference,
                 fix: Callable[[str], str] = lambda name: "") -> dict[str, Any]:
    """Each of ``values`` checked against its declaration in ``options`` (names must be declared), converted:
    ``label(name)`` names it in a refusal, ``reference(name, option)`` gives the reference setting and
    ``fix(name)`` the sentence that follows."""
    checked = {}
    for name, value in values.items():
        option = options[name]
        checked[name] = check_value(label(name), option.spec, value, reference(name, option), fix(name))
    return checked
