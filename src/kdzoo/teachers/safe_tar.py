"""Unpack the teachers of a ``cifar_teachers.tar`` safely: every member is checked before anything is written, and
an archive with a member outside its folder (``../``, an absolute path), a link or a device is refused whole.

Only the teachers' files are written, each to a path kdzoo builds itself (never the member's own name), so nothing
can land outside the target folder whatever the archive says.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path, PurePosixPath

from ..errors import TeacherError
from .catalog import ARCHIVE, KNOWN_TEACHERS, MEMBER, member_path


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
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()  # reads every header: a cut archive fails here or below
            for member in members:
                why = unsafe_reason(member)
                if why:
                    raise TeacherError(f"{archive} holds {member.name!r}, {why}: kdzoo refuses the whole archive (a "
                                       f"crafted archive could write outside the cache) and unpacked nothing. It is "
                                       f"not the published {ARCHIVE}; download that again.")
            found = {}
            for member in members:
                match = MEMBER.search(member.name) if member.isfile() else None
                if match and match["arch"] in KNOWN_TEACHERS:
                    found[match["arch"]] = member
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
    except (tarfile.TarError, EOFError) as exc:
        raise TeacherError(f"{archive} is not a complete tar archive ({type(exc).__name__}: {exc}): the download "
                           f"was cut or the file is something else. Nothing was unpacked; download it again.") from None
