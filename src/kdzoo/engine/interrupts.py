"""Ctrl-C and SIGTERM: one exception, a message that says how to resume, and writes they cannot cut.

Under :func:`catch_signals` (the CLI's whole command) SIGTERM raises :class:`Interrupted` just as
Ctrl-C raises ``KeyboardInterrupt`` (its base class), so ``finally`` blocks run and the run folder is
left as after its last finished epoch. Inside :func:`uninterrupted` (every checkpoint write) both
signals are held until the block ends: a checkpoint is always written whole, and the interruption
takes effect right after it. Without :func:`catch_signals` (kdzoo used as a library) the process's
own signal handling is left alone.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Exit status of an interrupted command: 128 + the signal number, as a shell reports it.
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


class Interrupted(KeyboardInterrupt):
    """The command was stopped by ``signal_name``; ``run_dir`` is the run folder it was writing, if any.
    ``continue_with`` says how to continue when it is not ``--resume RUN_DIR`` (a command sets it, e.g. the demo)."""

    def __init__(self, signal_name: str = "SIGINT", run_dir: Path | None = None):
        super().__init__(signal_name)
        self.signal_name, self.run_dir = signal_name, run_dir
        self.continue_with: str | None = None

    @classmethod
    def in_run(cls, exc: KeyboardInterrupt, run_dir: Path) -> Interrupted:
        """``exc`` (Ctrl-C or an :class:`Interrupted`) as an interruption of the run in ``run_dir``."""
        return cls(getattr(exc, "signal_name", "SIGINT"), run_dir)

    def message(self, command: str) -> str:
        how = "interrupted (Ctrl-C)" if self.signal_name == "SIGINT" else f"stopped by {self.signal_name}"
        if self.run_dir is None:
            return f"kdzoo: {how}."
        again = self.continue_with or f"`kdzoo {command} --resume {self.run_dir}`"
        return f"kdzoo: {how}. Every finished epoch is saved in {self.run_dir}; continue with {again}."


class _State:
    held = 0                  # depth of nested uninterrupted() blocks
    pending: str | None = None


def _raise(signum: int, frame) -> None:
    name = signal.Signals(signum).name
    if _State.held:
        _State.pending = name
        return
    raise Interrupted(name)


@contextmanager
def catch_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` (and are held during :func:`uninterrupted` blocks)."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then raise the held one (if the block succeeded)."""
    _State.held += 1
    try:
        yield
    except BaseException:
        if _State.held == 1:
            _State.pending = None  # the block's own error ends the command anyway
        raise
    finally:
        _State.held -= 1
    if not _State.held and _State.pending:
        name, _State.pending = _State.pending, None
        raise Interrupted(name)
