"""User-facing errors: one paragraph that names the problem and the fix.

Everything kdzoo raises on bad input derives from :class:`KdzooError`; the CLI prints such errors
without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


def close_names(name: str, known: Iterable[str], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """The names of ``known`` closest to ``name``, best first, case aside: the name in other case alone (``KD`` ->
    ``kd``), else difflib's closest."""
    by_case = {}
    for candidate in known:
        by_case.setdefault(candidate.casefold(), candidate)
    if name.casefold() in by_case:
        return [by_case[name.casefold()]]
    return [by_case[c] for c in difflib.get_close_matches(name.casefold(), list(by_case), n=n, cutoff=cutoff)]


def did_you_mean(name: str, known: Iterable[str], n: int = 3, cutoff: float = 0.5,
                 shown: Callable[[str], str] = repr) -> str:
    """``" Did you mean 'a', 'b'?"`` for the :func:`close_names`; ``""`` when none is close."""
    close = close_names(name, known, n, cutoff)
    return f" Did you mean {', '.join(shown(c) for c in close)}?" if close else ""


class KdzooError(Exception):
    """A problem with the user's input or environment, explained in the message."""


class UnknownNameError(KdzooError, KeyError):
    """A model, method, dataset or other registry name that does not exist."""

    def __init__(self, kind: str, name: str, known: list[str]):
        super().__init__(
            f"Unknown {kind} {name!r}.{did_you_mean(name, known)} Known {kind}s: {', '.join(known)}. "
            f"Run `kdzoo list {kind}s` to see them with details."
        )

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class CheckpointError(KdzooError):
    """A checkpoint that is missing, corrupt, or does not fit the model it is loaded into."""


class ConfigError(KdzooError, ValueError):
    """An invalid configuration value."""


class TeacherError(KdzooError):
    """A published teacher that cannot be fetched, unpacked or verified."""
