"""Files written whole or not at all: :func:`write_atomic`, the one primitive for text (:func:`write_text_atomic`:
run summaries, the teachers' manifest, a teacher cache's key file) and binary files (checkpoints and teacher-cache
epochs, through :func:`kdzoo.engine.checkpoint.save_whole`).

- A new file is created as ``open()`` creates one (mode 0666 less the process umask, and the folder's default ACL),
  not with ``tempfile``'s private 0600: a grid's shared cache and run folders are readable by whom the umask lets.
- Each writer holds an OS lock (``flock``) on its temporary file ``<name>.<random>.tmp`` until it is renamed into
  place, so :func:`remove_dead_temporaries` tells a killed writer's temporary file (no lock: the OS dropped it with
  the process) from a live one's. Windows removes no open file and is not swept.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

if os.name == "nt":
    fcntl = None
else:
    import fcntl

FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """``write(f)`` into a new locked temporary file beside ``path``, renamed over ``path``: a reader sees the old
    file or the new one, never half of one, and a failed write leaves no temporary file (a killed writer's stays
    until :func:`remove_dead_temporaries`)."""
    path = Path(path)
    fd, tmp = locked_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if fcntl is not None:
                os.replace(tmp, path)  # while its lock is held: a sweeper never takes it for a dead writer's
        if fcntl is None:
            os.replace(tmp, path)  # Windows renames no open file
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """``text`` (UTF-8) into ``path`` with :func:`write_atomic`."""
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def locked_temporary(path: Path) -> tuple[int, Path]:
    """A new temporary file for ``path`` (mode 0666 less the umask), its descriptor holding its lock. A sweeper may
    hold the lock for an instant; when it took the file first (it removed it), another name is drawn."""
    while True:
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, FLAGS, 0o666)
        except FileExistsError:
            continue
        while fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:  # a file system without locks: unlocked, and no sweeper can lock it either
                break
        if os.fstat(fd).st_nlink:
            return fd, tmp
        os.close(fd)


def remove_dead_temporaries(paths: Iterable[Path]) -> list[Path]:
    """Remove those of the temporary files ``paths`` (of :func:`write_atomic`) whose writer is gone: their lock is
    free, so no process writes them. A held lock (a live writer), a file that cannot be opened or removed (another
    user's folder), or Windows, leaves a file. Returns the removed ones."""
    removed = []
    for tmp in paths if fcntl is not None else ():
        try:
            fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            tmp.unlink()  # under its lock: a writer that now locks it sees it removed and draws another name
            removed.append(tmp)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed
