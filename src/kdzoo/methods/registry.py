"""The method registry: ``create_method(name, student, teacher, **options)`` and ``list_methods()``."""

from __future__ import annotations

import inspect
from typing import Any

from torch import Tensor, nn

from ..errors import ConfigError
from ..models.features import feature_shapes
from ..registry import Registry
from .base import Method

METHODS: Registry[type[Method]] = Registry("method")

#: Constructor arguments the engine supplies (not user options).
SUPPLIED = {"train_labels"}


def register_method(name: str):
    """Class decorator: ``@register_method("kd")``."""

    def decorator(cls: type[Method]) -> type[Method]:
        METHODS.register(name)(cls)
        cls.method_name = name
        return cls

    return decorator


def method_class(name: str) -> type[Method]:
    return METHODS.get(name).factory


def method_options(name: str) -> dict[str, Any]:
    """The keyword options a method accepts, with their defaults."""
    params = inspect.signature(method_class(name).__init__).parameters
    return {
        p.name: p.default
        for p in params.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in SUPPLIED
    }


def create_method(
    name: str,
    student: nn.Module,
    teacher: nn.Module,
    input_shape: tuple[int, ...] = (3, 32, 32),
    train_labels: Tensor | None = None,
    **options: Any,
) -> Method:
    """Build method ``name`` for a student/teacher pair.

    Extra modules are sized from one forward pass of a 2-sample batch of ``input_shape``.
    ``train_labels`` (one int64 label per training sample) is required by methods that declare
    ``needs_index`` (e.g. CRD's memory bank and negative sampling). Unknown options raise a
    :class:`ConfigError` listing the accepted ones.
    """
    cls = method_class(name)
    accepted = method_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listed = ", ".join(f"{k}={v!r}" for k, v in accepted.items()) or "none"
        raise ConfigError(f"Method {name!r} has no option {', '.join(unknown)}. Its options: {listed}.")
    if cls.needs_index:
        if train_labels is None:
            raise ConfigError(f"Method {name!r} needs the training labels (train_labels=...) to build its sampler.")
        options["train_labels"] = train_labels
    s = feature_shapes(student, input_shape, preact=cls.preact)
    t = feature_shapes(teacher, input_shape, preact=cls.preact)
    method = cls(s, t, **options)
    param = next(student.parameters(), None)
    return method.to(param.device) if param is not None else method


def list_methods() -> list[str]:
    return METHODS.names()
