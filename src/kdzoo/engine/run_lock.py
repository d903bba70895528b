"""One writer per run folder: ``run.lock``.

The process that writes a run folder holds the OS lock on ``run.lock`` (:class:`~kdzoo.file_lock.FileLock`) with
its process id in it. A second process started on the same folder (``--resume`` twice, or a reused ``--name``)
finds the lock taken and is refused with that id. The OS drops the lock when the owner ends, however it ends, so a
``run.lock`` left behind never blocks a later ``--resume``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..file_lock import FileLock, LockBusy
from ..run_folder import CONFIG

LOCK = "run.lock"


class RunLock:
    """The held lock of one run folder; :meth:`release` (or the end of the process) frees it."""

    def __init__(self, run_dir: Path, lock: FileLock):
        self.run_dir = run_dir
        self._lock = lock

    @classmethod
    def claim(cls, run_dir: str | Path, new: bool) -> RunLock:
        """Lock ``run_dir`` for this process. ``new``: the folder must not hold a run yet (a fresh start);
        otherwise it is being resumed."""
        run_dir = Path(run_dir)
        try:
            lock = cls(run_dir, FileLock.try_acquire(run_dir / LOCK))
        except LockBusy as busy:
            raise ConfigError(f"Run folder {run_dir} is in use by another kdzoo process ({busy.owner}, recorded in "
                              f"{busy.path}); two processes never write to one run folder. Wait for it to end, or "
                              f"stop it (every finished epoch is kept) and then continue with --resume {run_dir}.") \
                from None
        if new and (run_dir / CONFIG).exists():
            lock.release()
            raise ConfigError(f"Run folder {run_dir} already holds a run. Continue it with --resume {run_dir}, or "
                              f"choose another --name.")
        return lock

    def release(self) -> None:
        """Free the lock (idempotent)."""
        self._lock.release()
