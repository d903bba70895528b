"""Text files written whole or not at all: :func:`write_text_atomic` (run summaries, the teachers' manifest, a
teacher cache's key file). Checkpoints have their own, interrupt-safe ``torch.save`` twin
(:func:`kdzoo.engine.checkpoint.save_atomic`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_text_atomic(path: str | Path, text: str) -> None:
    """``text`` into ``path`` through a temporary file in the same folder (one per writer), renamed over it: a
    reader sees the old file or the new one, never half of one, and a failed write leaves no temporary file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
