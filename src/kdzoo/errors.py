"""User-facing errors: one paragraph that names the problem and the fix.

Everything kdzoo raises on bad input derives from :class:`KdzooError`; the CLI prints such errors
without a traceback.
"""

from __future__ import annotations

import difflib


class KdzooError(Exception):
    """A problem with the user's input or environment, explained in the message."""


class UnknownNameError(KdzooError, KeyError):
    """A model, method, dataset or other registry name that does not exist."""

    def __init__(self, kind: str, name: str, known: list[str]):
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(
            f"Unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known)}. "
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
