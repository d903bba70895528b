"""Method options checked in one place: the method constructor's signature.

Each keyword-only option declares its type by its annotation (``float``, ``int``, ``bool``, ``str``,
``list[int]``, ``tuple[float, ...]``, optionally ``| None``), its default by its default, and its
range with :class:`~kdzoo.declared.Range` inside ``typing.Annotated``::

    temperature: Annotated[float, Range(gt=0, reference="4")] = 4.0

:func:`check_method_options` checks every given option against that declaration before the method is
built (:func:`kdzoo.declared.check_values`, as for run and dataset options), so a value of the wrong type
(``nce_k=abc``, ``feat_dim=1.5``, a list where a number belongs), a non-finite number or one outside its
range is a :class:`~kdzoo.errors.ConfigError` naming the option, what it accepts and the reference
setting. Options declared ``float`` arrive as floats.
"""

from __future__ import annotations

from typing import Any

from .. import declared
from ..declared import OneOf, Option, Range

__all__ = ["OneOf", "Range", "check_method_options", "declared_options"]


def declared_options(cls: type) -> dict[str, Option]:
    """``name -> (declaration, default)`` for every option of ``cls.__init__``
    (:func:`kdzoo.declared.declared_options`)."""
    return declared.declared_options(cls.__init__)


def check_method_options(cls: type, method: str, options: dict[str, Any]) -> dict[str, Any]:
    """The given ``options`` of method ``method`` (class ``cls``), each checked against its declaration."""
    return declared.check_values(
        options, declared_options(cls), label=lambda name: f"{method}'s option {name}",
        reference=lambda name, option: f"reference: {option.spec.reference or option.default}",
        fix=lambda name: f" Set it with --method-opt {name}=VALUE (or method_options: in a config file).")
