"""An OS lock on a file, held by one process at a time: the run folder's ``run.lock`` and the teacher downloads
folder's ``fetch.lock``.

The holder keeps an OS lock on the file (``fcntl.flock``; byte-range ``msvcrt.locking`` on Windows) and writes its
process id into it. The OS drops the lock when the holder ends, however it ends (``kill -9`` too), so a lock file
left behind never blocks anyone; the file itself stays (it only records the last holder), unless the holder that
created it could not write its id (a full disk): then it is removed at once.

Why not the ``filelock`` package (installed with torch): a run folder's lock passes from the grid to the run it
starts as an inherited descriptor (:meth:`FileLock.adopt`, :mod:`kdzoo.grid.child_runs`), and ``filelock`` makes a
lock only by opening the file itself; it records no holder (a busy lock is a bare timeout, where kdzoo says "held by
pid N"; only its recent releases hand the descriptor to an ``on_acquired`` callback, and torch pins no release); and
its locks are reentrant per thread, not one holder per process. Taking it for the teacher downloads folder's lock alone
would keep this module for the run lock and add a second way to lock a file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

OWNER_BYTES = 32

if os.name == "nt":
    import msvcrt

    def _try_lock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


class LockBusy(Exception):
    """Another process holds the lock; ``owner`` is what it recorded (``pid N``)."""

    def __init__(self, path: Path, owner: str):
        super().__init__(f"{path} is held by {owner}")
        self.path = path
        self.owner = owner


class FileLock:
    """The held lock on one file; :meth:`release` (or the end of the process) frees it."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def try_acquire(cls, path: str | Path) -> FileLock:
        """Take the lock on ``path`` (created if missing) now, or raise :class:`LockBusy`. When the process id cannot
        be written (a full disk), the file is removed again if this call created it, and the ``OSError`` names
        ``path``."""
        path = Path(path)
        while True:
            fd, created = _open(path)
            try:
                _try_lock(fd)
            except OSError:
                owner = _read_owner(fd)
                os.close(fd)
                raise LockBusy(path, owner) from None
            if _still_named(fd, path):
                return cls._record(path, fd, created)
            os.close(fd)  # its creator removed the file after a failed write: lock the one the path names now

    @classmethod
    def adopt(cls, path: str | Path, fd: int) -> FileLock | None:
        """The lock on ``path`` that the open descriptor ``fd`` holds already (handed over by the process that
        took it, as a kept-open inherited descriptor or a ``dup`` of its own), now recorded as this process's;
        None when ``fd`` is not open on ``path`` (it is then left alone)."""
        path = Path(path)
        try:
            if not os.path.samestat(os.fstat(fd), os.stat(path)):
                return None
        except OSError:
            return None
        try:
            _try_lock(fd)  # held already through this descriptor: kept
        except OSError:
            owner = _read_owner(fd)
            os.close(fd)
            raise LockBusy(path, owner) from None
        return cls._record(path, fd, created=False)

    @classmethod
    def _record(cls, path: Path, fd: int, created: bool) -> FileLock:
        """Write this process's id into the locked ``fd`` of ``path``."""
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"pid {os.getpid()}".encode().ljust(OWNER_BYTES))  # fixed width: no truncation needed
        except OSError as exc:
            if created:  # removed while still held, so no other process took it meanwhile (see _still_named)
                path.unlink(missing_ok=True)
            os.close(fd)
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        return cls(path, fd)

    @classmethod
    def acquire(cls, path: str | Path, on_wait: Callable[[str], None] | None = None, poll_s: float = 0.2) -> FileLock:
        """Take the lock on ``path``, waiting while another process holds it; ``on_wait(owner)`` is called once
        when the wait begins."""
        waiting = False
        while True:
            try:
                return cls.try_acquire(path)
            except LockBusy as busy:
                if not waiting and on_wait is not None:
                    on_wait(busy.owner)
                waiting = True
                time.sleep(poll_s)

    def fileno(self) -> int:
        """The open descriptor that holds the lock (to hand it to a subprocess, :meth:`adopt`)."""
        if self._fd is None:
            raise ValueError(f"the lock on {self.path} was released")
        return self._fd

    def release(self) -> None:
        """Free the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _open(path: Path) -> tuple[int, bool]:
    """``path`` opened for reading and writing, created if missing; and whether this call created it."""
    while True:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            try:
                return os.open(path, os.O_RDWR), False
            except FileNotFoundError:  # removed in between: create it
                continue


def _still_named(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``: a lock taken on a file removed after it was opened
    guards nothing. (Windows cannot remove an open file.)"""
    if os.name == "nt":
        return True
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _read_owner(fd: int) -> str:
    """``pid N`` as the holder wrote it, or a neutral phrase when it cannot be read (Windows locks the byte)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, OWNER_BYTES).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "process id not readable"
