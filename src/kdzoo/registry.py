"""A small name -> factory registry (in the spirit of timm's), shared by models, methods and datasets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import ConfigError, UnknownNameError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Entry(Generic[F]):
    name: str
    factory: F
    info: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[F]):
    """Maps names to factories plus free-form metadata (paper, defaults, family...). ``several``: what to do instead
    when one name is asked for and several known ones come, separated by commas (``kd,dkd``)."""

    def __init__(self, kind: str, several: str | None = None):
        self.kind = kind
        self.several = several
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
            parts = [part.strip() for part in str(name).split(",")]
            if self.several and len(parts) > 1 and all(part in self._entries for part in parts):
                raise ConfigError(f"One run takes one {self.kind}; {name!r} names {len(parts)}. "
                                  f"{self.several}") from None
            raise UnknownNameError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
