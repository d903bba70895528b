"""Where datasets live on disk unless told otherwise."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the default data folder.
DATA_ENV = "KDZOO_DATA"


def data_root(root: str | os.PathLike | None) -> Path:
    """``root`` if given, else ``$KDZOO_DATA``, else ``./data``."""
    return Path(root or os.environ.get(DATA_ENV) or "data").expanduser()
