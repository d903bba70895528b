"""Text files written whole or not at all: :func:`write_text_atomic` (run summaries, the teachers' manifest, a
teacher cache's key file). Checkpoints have their own, interrupt-safe ``torch.save`` twin
(:func:`kdzoo.engine.checkpoint.save_atomic`). Both write through :func:`temporary_file`; a writer killed meanwhile
leaves it behind, which :func:`leftover_temporaries` finds once no writer can be alive."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

TMP_SUFFIX = ".tmp"


def temporary_file(path: Path) -> tuple[int, str]:
    """A new file beside ``path`` to write its next content into (``<name><random letters>.tmp``, one per writer):
    ``(fd, name)`` as :func:`tempfile.mkstemp` gives them."""
    return tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=TMP_SUFFIX)


def leftover_temporaries(path: Path) -> list[Path]:
    """The :func:`temporary_file` files of ``path`` in its folder; only the caller knows that no writer still
    uses them (a run folder's lock tells)."""
    pattern = re.compile(re.escape(path.name) + r"[a-z0-9_]+" + re.escape(TMP_SUFFIX))
    return sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name) and p.is_file())


def write_text_atomic(path: str | Path, text: str) -> None:
    """``text`` into ``path`` through a temporary file in the same folder (one per writer), renamed over it: a
    reader sees the old file or the new one, never half of one, and a failed write leaves no temporary file."""
    path = Path(path)
    fd, tmp = temporary_file(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
