"""Reader for the IDX format of (Fashion-)MNIST: a magic number, big-endian sizes, then raw uint8 data."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

from ..errors import KdzooError


def read_idx(path: Path) -> np.ndarray:
    """The uint8 array stored in ``path`` (``.gz`` files are decompressed)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise KdzooError(f"Cannot read {path}: {exc}. Delete the file and fetch it again.") from None
    ndim = raw[3] if len(raw) > 4 else 0
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if raw[:3] != b"\x00\x00\x08" or ndim == 0 or len(raw) - header != math.prod(shape):
        raise KdzooError(f"{path} is not a uint8 IDX file (or is truncated). Delete it and fetch it again.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
