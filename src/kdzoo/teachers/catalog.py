"""The published CIFAR-100 teachers: their names, where they are published, and the hashes known for them.

RepDistiller's own download server is gone; the same teachers (240 epochs each, RepDistiller's recipe) travel as
mdistiller's release asset ``cifar_teachers.tar`` (megvii-research/mdistiller, release tag ``checkpoints``), which
holds ``cifar_teachers/<arch>_vanilla/ckpt_epoch_240.pth``. A teacher's name is its zoo architecture.

Every file also has a size bound: its published size where known, else a stated cap. A download, an archive's
inflated stream and an archive member are stopped at it, so no file (a crafted archive, an endless stream) can fill
the disk.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass

from ..errors import TeacherError

PREFIX = "pretrained:"
ARCHIVE = "cifar_teachers.tar"
DEFAULT_BASE_URL = "https://github.com/megvii-research/mdistiller/releases/download/checkpoints"
#: A base URL under which ``cifar_teachers.tar`` is found (a mirror), instead of GitHub's.
URL_ENV = "KDZOO_TEACHERS_URL"
DATASET = "cifar100"
#: What every published teacher was trained on (CIFAR-100): its classes and its input (channels, height, width).
CLASSES = 100
INPUT = (3, 32, 32)
MIB = 2**20


@dataclass(frozen=True)
class Known:
    """SHA-256 (hex) and size in bytes of a published file; empty where not known yet: the first download is then
    trusted on TLS alone, and what it brought is recorded and checked from then on. ``cap``: the most bytes kdzoo
    accepts for the file while its size is not known (0, the default: none)."""

    sha256: str = ""
    size: int | None = None
    cap: int = 0

    @property
    def limit(self) -> int:
        """The most bytes the file can have: its size where known, else the cap."""
        return self.size if self.size is not None else self.cap

    @property
    def limit_text(self) -> str:
        """What :attr:`limit` is, in words."""
        if self.size is not None:
            return f"{self.size:,} bytes, its published size"
        return f"{self.cap:,} bytes ({self.cap / MIB:,.0f} MiB), kdzoo's cap for it while its size is not recorded"


#: What is known of the archive. Fill in the hash and size only from a download checked by hand; never guess. Its cap
#: leaves room for more than the six teachers' caps (other checkpoints the folders may hold).
KNOWN_ARCHIVE = Known(cap=4096 * MIB)

#: The published teachers, each with what is known of its file. Each cap is about 4x the bytes of the architecture's
#: weights (a RepDistiller checkpoint holds the weights and SGD's momentum of each: about 2x).
KNOWN_TEACHERS: dict[str, Known] = {
    "resnet56": Known(cap=16 * MIB),
    "resnet110": Known(cap=32 * MIB),
    "resnet32x4": Known(cap=128 * MIB),
    "wrn_40_2": Known(cap=40 * MIB),
    "vgg13": Known(cap=160 * MIB),
    "ResNet50": Known(cap=400 * MIB),
}

MEMBER = re.compile(r"(?:^|/)(?P<arch>[A-Za-z0-9_]+)_vanilla/ckpt_epoch_240\.pth$")


def published_names() -> list[str]:
    """The names ``pretrained:NAME`` accepts, in the order ``kdzoo teachers`` lists them."""
    return list(KNOWN_TEACHERS)


def check_name(name: str) -> str:
    """``name`` if it is a published teacher, else a :class:`~kdzoo.errors.TeacherError` with the names."""
    if name not in KNOWN_TEACHERS:
        close = difflib.get_close_matches(name, published_names(), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(PREFIX + c for c in close)}?" if close else ""
        raise TeacherError(f"Unknown published teacher {name!r}.{hint} Published CIFAR-100 teachers: "
                           f"{', '.join(published_names())} (`kdzoo teachers` lists them); for a file of your own "
                           f"give its path instead: --teacher PATH.")
    return name


def is_pretrained(spec: object) -> bool:
    """Whether a ``--teacher`` value names a published teacher (``pretrained:NAME``) rather than a file."""
    return isinstance(spec, str) and spec.startswith(PREFIX)


def name_of(spec: str) -> str:
    """The published name in ``pretrained:NAME``, checked."""
    return check_name(spec[len(PREFIX):])


def member_path(name: str) -> str:
    """Where the archive holds ``name``'s file, and where the teacher downloads folder keeps it."""
    return f"cifar_teachers/{name}_vanilla/ckpt_epoch_240.pth"


def archive_url() -> str:
    """The archive's URL: under ``$KDZOO_TEACHERS_URL`` when set, else mdistiller's GitHub release."""
    base = os.environ.get(URL_ENV) or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/{ARCHIVE}"
