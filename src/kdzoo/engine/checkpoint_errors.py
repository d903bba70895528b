"""Why a file could not be read as a checkpoint, in words: the message of every
:class:`~kdzoo.errors.CheckpointError` raised when ``torch.load(weights_only=True)`` fails.

``torch.load`` fails in many ways on a file that is not a checkpoint (a text file renamed ``.pth``
raises ``KeyError`` from the unpickler, random bytes ``UnpicklingError``, a zip of other files
``RuntimeError``, an empty file ``EOFError``); only a pickle that names a Python class or function
(RepDistiller's ``*_last.pth`` with its ``argparse.Namespace``, or a file built to run code) is
worth a different answer: it is a real file, refused on purpose.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

from ..errors import CheckpointError

#: What the weights-only unpickler says when a pickle names a class or function it will not import.
FORBIDDEN_GLOBAL = re.compile(r"(?:[Uu]nsupported (?:global: )?GLOBAL|Unsupported class) ([\w.]+)")
#: The weights-only unpickler's own reason, after torch's generic advice (which suggests weights_only=False).
UNPICKLER_REASON = re.compile(r"WeightsUnpickler error:\s*(\S[^\n]*)")
#: Terminal colour codes, which torch puts in some messages (``\x1b[1m...\x1b[0m``).
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
EXPECTED = ("a PyTorch file written by torch.save: a kdzoo checkpoint, a RepDistiller/mdistiller file with the "
            "weights under 'model', or a bare state dict")


def reason(exc: BaseException) -> str:
    """``Type: the first line of the message``, or the unpickler's own reason (no traceback, no advice to
    load the file unsafely, no terminal colour codes)."""
    text = ANSI_ESCAPE.sub("", str(exc)).strip()
    found = UNPICKLER_REASON.search(text)
    if found:
        return f"{type(exc).__name__}: {found.group(1).strip()}"
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def unreadable_checkpoint(path: Path, exc: Exception, fallback: str) -> CheckpointError:
    """The error for ``path`` that ``torch.load`` could not read; ``fallback`` names the files to try instead."""
    if path.stat().st_size == 0:
        return CheckpointError(f"{path} is empty (0 bytes): a write was interrupted or the copy failed. Expected "
                               f"{EXPECTED}. Re-download or re-create it{fallback}.")
    found = FORBIDDEN_GLOBAL.search(str(exc)) if isinstance(exc, pickle.UnpicklingError) else None
    if found:
        return CheckpointError(
            f"{path} holds the Python object {found.group(1)}, which kdzoo will not unpickle (it loads checkpoints "
            f"with weights_only=True, so a file can never run code). RepDistiller's *_last.pth files store an "
            f"argparse.Namespace: use its ckpt_epoch_N.pth or *_best.pth file instead, or re-save just the weights "
            f"with torch.save({{'model': state_dict}}, path) where you trust the file.")
    return CheckpointError(f"{path} is not a checkpoint kdzoo can read: expected {EXPECTED}; the file is truncated, "
                           f"corrupt or something else ({reason(exc)}). Re-download or re-create it{fallback}.")
