"""Method options checked in one place: the method constructor's signature.

Each keyword-only option declares its type by its annotation (``float``, ``int``, ``bool``, ``str``,
``list[int]``, ``tuple[float, ...]``, optionally ``| None``), its default by its default, and its
range with :class:`~kdzoo.declared.Range` inside ``typing.Annotated``::

    temperature: Annotated[float, Range(gt=0, reference="4")] = 4.0

:func:`check_options` checks every given option against that declaration before the method is built,
so a value of the wrong type (``nce_k=abc``, ``feat_dim=1.5``, a list where a number belongs), a
non-finite number or one outside its range is a :class:`~kdzoo.errors.ConfigError` naming the
option, what it accepts and the reference setting. Options declared ``float`` arrive as floats.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from ..declared import Declared, Range, declared
from ..errors import ConfigError

__all__ = ["Range", "check_options", "declared_options"]


def declared_options(cls: type) -> dict[str, tuple[Declared, Any]]:
    """``name -> (declaration, default)`` for every keyword-only argument of ``cls.__init__``."""
    hints = typing.get_type_hints(cls.__init__, include_extras=True)
    return {p.name: (declared(hints[p.name]), p.default)
            for p in inspect.signature(cls.__init__).parameters.values() if p.kind is p.KEYWORD_ONLY}


def check_options(cls: type, method: str, options: dict[str, Any]) -> dict[str, Any]:
    """The given ``options`` of method ``method`` (class ``cls``), each checked against its declaration."""
    declarations = declared_options(cls)
    checked = {}
    for name, value in options.items():
        spec, default = declarations[name]
        if not spec.accepts(value):
            reference = spec.range.reference if spec.range is not None and spec.range.reference else default
            raise ConfigError(f"{method}'s option {name} must be {spec.expected()} (reference: {reference}), got "
                              f"{value!r}. Set it with --method-opt {name}=VALUE (or method_options: in a config "
                              f"file).")
        checked[name] = spec.convert(value)
    return checked
