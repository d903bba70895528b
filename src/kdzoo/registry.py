"""A small name -> factory registry (in the spirit of timm's), shared by models, methods and datasets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import UnknownNameError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Entry(Generic[F]):
    name: str
    factory: F
    info: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[F]):
    """Maps names to factories plus free-form metadata (paper, defaults, family...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[F]] = {}

    def register(self, name: str, **info: Any) -> Callable[[F], F]:
        def decorator(factory: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, factory, dict(info))
            return factory

        return decorator

    def get(self, name: str) -> Entry[F]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
