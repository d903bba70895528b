"""Unpack the teachers of a ``cifar_teachers.tar`` safely: every member is checked before anything is written, and
an archive with a member outside its folder (``../``, an absolute path), a link or a device is refused whole.

Only the teachers' files are written, each to a path kdzoo builds itself (never the member's own name), so nothing
can land outside the target folder whatever the archive says. Nothing can fill the disk either: a compressed archive
is inflated as a stream, stopped once it passes the archive's bound, and a teacher whose header declares more bytes
than its bound (a sparse member, a crafted size) is refused before a byte of it is written.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from ..errors import TeacherError
from . import catalog
from .catalog import ARCHIVE, KNOWN_TEACHERS, MEMBER, Known, member_path

#: The compressions ``tarfile`` reads, by their first bytes.
COMPRESSIONS = {b"\x1f\x8b": gzip.GzipFile, b"BZh": bz2.BZ2File, b"\xfd7zXZ\x00": lzma.LZMAFile}
#: What a cut or damaged archive raises while it is read.
DAMAGED = (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError)


class BoundedInflate:
    """A decompressed stream that raises :class:`~kdzoo.errors.TeacherError` as soon as a read or a seek passes
    ``known.limit`` inflated bytes: the archive is never inflated further (``tarfile`` reads it through this)."""

    def __init__(self, stream: IO[bytes], known: Known, archive: Path):
        self.stream, self.limit, self.known, self.archive = stream, known.limit, known, archive

    def _over(self) -> TeacherError:
        return TeacherError(f"{self.archive} inflates to more than {ARCHIVE} can be ({self.known.limit_text}): kdzoo "
                            f"stopped inflating it there and unpacked nothing. It is not the published {ARCHIVE} (a "
                            f"compression bomb?); download that again.")

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        data = self.stream.read(min(size, self.limit - self.stream.tell() + 1))
        if self.stream.tell() > self.limit:
            raise self._over()
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset if whence == 0 else self.stream.tell() + offset) > self.limit:
            raise self._over()
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()


@contextmanager
def open_archive(archive: Path) -> Iterator[tarfile.TarFile]:
    """``archive`` as a tar file, a compressed one inflated through :class:`BoundedInflate`."""
    with open(archive, "rb") as f:
        head = f.read(6)
    inflate = next((opener for magic, opener in COMPRESSIONS.items() if head.startswith(magic)), None)
    if inflate is None:
        with tarfile.open(archive, "r:") as tar:
            yield tar
        return
    with inflate(archive) as stream, tarfile.open(
            fileobj=BoundedInflate(stream, catalog.KNOWN_ARCHIVE, archive), mode="r:") as tar:
        yield tar


def teacher_of(archive: Path, member: tarfile.TarInfo) -> str | None:
    """The published teacher ``member`` holds (None: another file); raises when it is unsafe, or a teacher whose
    header declares more bytes than the teacher's bound (refused before a byte of it is written)."""
    why = unsafe_reason(member)
    if why:
        raise TeacherError(f"{archive} holds {member.name!r}, {why}: kdzoo refuses the whole archive (a crafted "
                           f"archive could write outside the teacher downloads folder) and unpacked nothing. It is not "
                           f"the published {ARCHIVE}; download that again.")
    match = MEMBER.search(member.name) if member.isfile() else None
    if not match or match["arch"] not in KNOWN_TEACHERS:
        return None
    known = KNOWN_TEACHERS[match["arch"]]
    if member.size > known.limit:
        raise TeacherError(f"{archive} holds {member.name!r}, which declares {member.size:,} bytes, more than the "
                           f"teacher {match['arch']} can be ({known.limit_text}): kdzoo refuses the archive before "
                           f"writing any of it. It is not the published {ARCHIVE}; download that again.")
    return match["arch"]


def unsafe_reason(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` must not be unpacked (None: a plain file or folder inside the archive's folder)."""
    name = member.name.replace("\\", "/")
    if name.startswith("/") or PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "a path that leads out of its folder ('..')"
    if member.issym() or member.islnk():
        return f"a link (to {member.linkname!r})"
    if not (member.isfile() or member.isdir()):
        return "a device, pipe or other special file"
    return None


def unpack_teachers(archive: Path, target: Path) -> dict[str, Path]:
    """Write the published teachers found in ``archive`` under ``target`` (as ``cifar_teachers/<name>_vanilla/
    ckpt_epoch_240.pth``) and return their paths by name. Raises :class:`~kdzoo.errors.TeacherError` on a crafted,
    truncated or wrong archive; ``target`` may then hold part of the files (write it to a temporary folder)."""
    try:
        with open_archive(archive) as tar:
            found = {}
            for member in tar:  # each header checked as it is read, before the member's data is inflated
                name = teacher_of(archive, member)
                if name:
                    found[name] = member
            if not found:
                raise TeacherError(f"{archive} holds none of the published teachers (expected files such as "
                                   f"{member_path('resnet56')}): it is not {ARCHIVE}, or an error page saved under "
                                   f"its name. Download it again.")
            paths = {}
            for name, member in found.items():
                path = target / member_path(name)
                path.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(path, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                if path.stat().st_size != member.size:
                    raise tarfile.ReadError(f"{member.name} ends after {path.stat().st_size} of {member.size} bytes")
                paths[name] = path
            return paths
    except DAMAGED as exc:
        raise TeacherError(f"{archive} is not a complete tar archive ({type(exc).__name__}: {exc}): the download "
                           f"was cut or the file is something else. Nothing was unpacked; download it again.") from None
