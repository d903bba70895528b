"""One writer per run folder: ``run.lock``.

The process that writes a run folder holds an OS lock on ``run.lock`` (``fcntl.flock``; byte-range
``msvcrt.locking`` on Windows) and writes its process id into it. A second process started on the same
folder (``--resume`` twice, or a reused ``--name``) finds the lock taken and is refused with that id.
The OS drops the lock when the owner ends, however it ends (``kill -9`` too), so a ``run.lock`` left
behind never blocks a later ``--resume``; the file itself stays (it only records the last owner).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from ..run_folder import CONFIG

LOCK = "run.lock"
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


class RunLock:
    """The held lock of one run folder; :meth:`release` (or the end of the process) frees it."""

    def __init__(self, run_dir: Path, fd: int):
        self.run_dir = run_dir
        self._fd: int | None = fd

    @classmethod
    def claim(cls, run_dir: str | Path, new: bool) -> RunLock:
        """Lock ``run_dir`` for this process. ``new``: the folder must not hold a run yet (a fresh start);
        otherwise it is being resumed."""
        run_dir = Path(run_dir)
        path = run_dir / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _try_lock(fd)
        except OSError:
            owner = _read_owner(fd)
            os.close(fd)
            raise ConfigError(f"Run folder {run_dir} is in use by another kdzoo process ({owner}, recorded in {path}); "
                              f"two processes never write to one run folder. Wait for it to end, or stop it (every "
                              f"finished epoch is kept) and then continue with --resume {run_dir}.") from None
        lock = cls(run_dir, fd)
        if new and (run_dir / CONFIG).exists():
            lock.release()
            raise ConfigError(f"Run folder {run_dir} already holds a run. Continue it with --resume {run_dir}, or "
                              f"choose another --name.")
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()}".encode().ljust(OWNER_BYTES))  # fixed width: no truncation needed
        return lock

    def release(self) -> None:
        """Free the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_owner(fd: int) -> str:
    """``pid N`` as the owner wrote it, or a neutral phrase when it cannot be read (Windows locks the byte)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, OWNER_BYTES).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "process id not readable"
