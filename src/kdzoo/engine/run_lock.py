"""One writer per run folder: ``run.lock``.

The process that writes a run folder holds the OS lock on ``run.lock`` (:class:`~kdzoo.file_lock.FileLock`) with
its process id in it. A second process started on the same folder (``--resume`` twice, or a reused ``--name``)
finds the lock taken and is refused with that id. The OS drops the lock when the owner ends, however it ends, so a
``run.lock`` left behind never blocks a later ``--resume``. Holding it also proves that no other writer of the
folder is alive: claiming it removes the temporary files a killed writer left (:data:`ATOMIC_FILES`).

``kdzoo bench`` takes a run's lock itself before it prepares the folder, and hands it to the run (:data:`HANDED_FD`)
instead of letting it go, so that no other process finds the folder unguarded in between.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic_text import leftover_temporaries, remove_dead_temporaries
from ..errors import ConfigError
from ..file_lock import FileLock, LockBusy
from ..run_folder import CONFIG, SUMMARY, write_refused
from .checkpoint import BEST, LAST

LOCK = "run.lock"
#: The run folder's files written through a temporary file (``checkpoint_last.pt<random>.tmp``, ...).
ATOMIC_FILES = (LAST, BEST, CONFIG, SUMMARY)
#: Environment variable: an open descriptor (its number) of the ``run.lock`` whose lock ``kdzoo bench`` holds for the
#: run it starts (inherited by a subprocess, or a ``dup`` in its own process); :meth:`RunLock.claim` takes it over.
HANDED_FD = "KDZOO_RUN_LOCK_FD"


class RunLock:
    """The held lock of one run folder; :meth:`release` (or the end of the process) frees it."""

    def __init__(self, run_dir: Path, lock: FileLock):
        self.run_dir = run_dir
        self._lock = lock

    @classmethod
    def claim(cls, run_dir: str | Path, new: bool) -> RunLock:
        """Lock ``run_dir`` for this process. ``new``: the folder must not hold a run yet (a fresh start);
        otherwise it is being resumed. The temporary files of writers that were killed are removed."""
        run_dir = Path(run_dir)
        try:
            lock = cls(run_dir, _handed(run_dir) or FileLock.try_acquire(run_dir / LOCK))
        except OSError as exc:  # a full disk or a read-only folder, before anything of the run is written
            raise write_refused(run_dir / LOCK, exc) from None
        except LockBusy as busy:
            raise ConfigError(f"Run folder {run_dir} is in use by another kdzoo process ({busy.owner}, recorded in "
                              f"{busy.path}); two processes never write to one run folder. Wait for it to end, or "
                              f"stop it (every finished epoch is kept) and then continue with --resume {run_dir}.") \
                from None
        if new and (run_dir / CONFIG).exists():
            lock.release()
            raise ConfigError(f"Run folder {run_dir} already holds a run. Continue it with --resume {run_dir}, or "
                              f"choose another --name.")
        lock.remove_leftovers()
        return lock

    def remove_leftovers(self) -> list[Path]:
        """Remove (and return) the temporary files of :data:`ATOMIC_FILES` in the folder: only the holder of the
        lock may, as no writer of the folder can be alive then."""
        return remove_dead_temporaries(p for name in ATOMIC_FILES for p in leftover_temporaries(self.run_dir / name))

    def release(self) -> None:
        """Free the lock (idempotent)."""
        self._lock.release()


def _handed(run_dir: Path) -> FileLock | None:
    """The lock of ``run_dir`` handed to this process (:data:`HANDED_FD`, read once), if that is the one handed."""
    fd = os.environ.pop(HANDED_FD, None)
    return FileLock.adopt(run_dir / LOCK, int(fd)) if fd and fd.isdigit() else None
