"""What a file-backed dataset's training images were read from, as one digest (the teacher cache's key holds it):
:func:`files_fingerprint` of the files a dataset declares in ``DataBundle.train_files``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence


def files_fingerprint(paths: Sequence[str | os.PathLike]) -> str | None:
    """SHA-256 of each file's path, size, modification and change times in nanoseconds, in order (None for no
    files: a dataset generated in memory). Rewriting a file changes its times (the change time even when the
    modification time is set back); a file that cannot be read is recorded with its error. Only ``stat`` is read,
    never the contents: a file rewritten with the same size within the file system's clock tick keeps its
    fingerprint."""
    if not paths:
        return None
    digest = hashlib.sha256()
    for path in paths:
        try:
            st = os.stat(path)
            facts = f"{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"
        except OSError as exc:
            facts = f"unreadable {exc.errno}"
        digest.update(f"{os.fspath(path)}|{facts}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()
