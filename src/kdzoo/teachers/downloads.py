"""The teacher downloads folder (``$KDZOO_HOME/teachers``, default ``~/.cache/kdzoo/teachers``): the published
teachers fetched once, unpacked safely, recorded and checked every time they are used.

``manifest.json`` records, when a file first arrives, the archive's and each teacher's size and SHA-256 and where
it came from; a downloaded file that no longer matches its record is refused. Everything is written atomically (a
temporary file or folder, then a rename) under ``fetch.lock``, so two processes fetching at once download once:
the second waits, then finds the teacher there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic_text import write_text_atomic
from ..errors import KdzooError, TeacherError
from ..file_lock import FileLock
from . import catalog
from .catalog import (
    ARCHIVE,
    KNOWN_TEACHERS,
    PREFIX,
    Known,
    archive_url,
    check_name,
    member_path,
    published_names,
)
from .download import download
from .safe_tar import unpack_teachers

HOME_ENV = "KDZOO_HOME"
MANIFEST = "manifest.json"
LOCK = "fetch.lock"
#: ``check(path, name)``: raises when the file at ``path`` is not a loadable ``name`` (keys and shapes checked).
Check = Callable[[Path, str], None]


@dataclass(frozen=True)
class TeacherFile:
    """A downloaded published teacher, checked against its record."""

    name: str
    path: Path
    sha256: str
    size: int
    source: str

    def record(self) -> dict[str, Any]:
        """What a run's ``config.yaml`` and ``summary.json`` record of its teacher."""
        return {"name": PREFIX + self.name, "sha256": self.sha256, "source": self.source, "file": str(self.path)}


def downloads_dir() -> Path:
    """Where the teachers are kept: ``$KDZOO_HOME/teachers`` (default ``~/.cache/kdzoo/teachers``)."""
    home = os.environ.get(HOME_ENV)
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "kdzoo") / "teachers"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest() -> dict[str, Any]:
    """The downloads folder's records (``archive``: the last archive unpacked, ``teachers``: name -> record)."""
    path = downloads_dir() / MANIFEST
    if not path.is_file():
        return {"archive": None, "teachers": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        data = exc
    if not isinstance(data, dict) or not isinstance(data.get("teachers"), dict):
        raise TeacherError(f"{path} is not kdzoo's record of the downloaded teachers ({data}). Delete the folder "
                           f"{downloads_dir()} and fetch the teachers again (`kdzoo teachers fetch all`).")
    return data


def _write_manifest(manifest: dict[str, Any]) -> None:
    write_text_atomic(downloads_dir() / MANIFEST, json.dumps(manifest, indent=2))


def downloaded_record(name: str, manifest: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The record of ``name`` if its file is in the downloads folder (not checked: see :func:`verify`)."""
    record = (manifest or read_manifest())["teachers"].get(name)
    return record if record and (downloads_dir() / record["file"]).is_file() else None


def verify(name: str) -> TeacherFile:
    """The downloaded ``name``, refused when its file no longer matches its record."""
    record = downloaded_record(name)
    if record is None:
        raise TeacherError(f"The published teacher {name} is not in the teacher downloads folder {downloads_dir()}: "
                           f"`kdzoo teachers fetch {name}`.")
    path = downloads_dir() / record["file"]
    size, digest = path.stat().st_size, sha256_of(path)
    if (size, digest) != (record["size"], record["sha256"]):
        raise TeacherError(f"The downloaded teacher {name} ({path}) no longer matches the file recorded when it "
                           f"arrived ({record['size']:,} bytes, SHA-256 {record['sha256']}; now {size:,} bytes, "
                           f"{digest}): it was changed or damaged on disk, and kdzoo will not use it. Fetch it "
                           f"again: `kdzoo teachers fetch {name} --force`.")
    return TeacherFile(name, path, digest, size, record["source"])


def resolve(name: str, check: Check | None = None, say: Callable[[str], None] = print) -> TeacherFile:
    """The published teacher ``name``, fetched first when it is not downloaded yet; checked either way."""
    check_name(name)
    if downloaded_record(name) is None:
        fetch([name], check=check, say=say)
    return verify(name)


def _locked(say: Callable[[str], None]) -> FileLock:
    downloads_dir().mkdir(parents=True, exist_ok=True)
    return FileLock.acquire(downloads_dir() / LOCK, on_wait=lambda owner: say(
        f"Waiting for another kdzoo process ({owner}) that is fetching teachers into {downloads_dir()} ..."))


def fetch(names: list[str], force: bool = False, check: Check | None = None,
          say: Callable[[str], None] = print) -> list[TeacherFile]:
    """Download the archive (once, whichever process gets there first) and keep its teachers unless ``names`` are
    all there already; ``force``: download again and replace them (they must still match their records)."""
    for name in names:
        check_name(name)
    with _locked(say):
        manifest = read_manifest()
        wanted = [n for n in names if force or downloaded_record(n, manifest) is None]
        if wanted:
            url = archive_url()
            downloads = downloads_dir() / "downloads"
            downloads.mkdir(exist_ok=True)
            archive = downloads / ARCHIVE
            if archive.is_file():  # downloaded whole before, its unpacking interrupted
                say(f"Unpacking {archive}, downloaded before")
            else:
                say(f"Fetching {url} into {downloads_dir()}")
                download(url, archive, desc=ARCHIVE, known=catalog.KNOWN_ARCHIVE)
            try:
                _install_archive(archive, url, wanted, manifest, check)
            except KdzooError:
                archive.unlink()  # refused: the next fetch downloads it afresh
                raise
            archive.unlink()  # unpacked: not kept
    return [verify(n) for n in names]


def add(file: Path, name: str | None = None, check: Check | None = None,
        say: Callable[[str], None] = print) -> list[TeacherFile]:
    """Keep a ``cifar_teachers.tar`` or one teacher's checkpoint that was downloaded another way, with the same
    checks as a download. A checkpoint's name is ``name``, else its folder's (``resnet56_vanilla`` -> resnet56)."""
    file = Path(file)
    if not file.is_file():
        raise TeacherError(f"{file} does not exist (or is not a file): give the {ARCHIVE} or the teacher's "
                           f"ckpt_epoch_240.pth you downloaded.")
    source = f"added from {file.resolve()}"
    with _locked(say):
        manifest = read_manifest()
        if tarfile.is_tarfile(file):
            names = _install_archive(file, source, [], manifest, check)
        else:
            name = check_name(name or _name_from_folder(file))
            with _staging() as staging:
                copy = staging / member_path(name)
                copy.parent.mkdir(parents=True)
                shutil.copyfile(file, copy)
                _commit({name: copy}, source, manifest, check)
            names = [name]
    return [verify(n) for n in names]


def _name_from_folder(file: Path) -> str:
    folder = file.parent.name
    if folder.endswith("_vanilla") and folder[:-len("_vanilla")] in KNOWN_TEACHERS:
        return folder[:-len("_vanilla")]
    raise TeacherError(f"Cannot tell which published teacher {file} is: its folder {folder!r} is not "
                       f"'<name>_vanilla'. Name it: `kdzoo teachers add {file} --name NAME` (NAME one of "
                       f"{', '.join(published_names())}).")


class _staging:
    """A temporary folder inside the downloads folder (same file system: its files are renamed into place), removed
    on exit."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(dir=downloads_dir(), prefix=".unpack-"))
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _install_archive(archive: Path, source: str, wanted: list[str], manifest: dict[str, Any],
                     check: Check | None) -> list[str]:
    """Check ``archive`` (it must hold ``wanted``), unpack its teachers and keep them; returns their names."""
    size, digest = archive.stat().st_size, sha256_of(archive)
    _check_known(catalog.KNOWN_ARCHIVE, size, digest, f"{ARCHIVE} from {source.removeprefix('added from ')}")
    with _staging() as staging:
        paths = unpack_teachers(archive, staging)
        missing = [n for n in wanted if n not in paths]
        if missing:
            raise TeacherError(f"{archive} from {source} does not hold {', '.join(missing)} (it holds "
                               f"{', '.join(paths)}). Is {source} the published {ARCHIVE}?")
        _commit(paths, source, manifest, check, archive={"size": size, "sha256": digest, "source": source})
    return list(paths)


def _check_known(known: Known, size: int, digest: str, what: str) -> None:
    if (known.sha256 and known.sha256 != digest) or (known.size is not None and known.size != size):
        raise TeacherError(f"{what} is not the published file: {size:,} bytes, SHA-256 {digest}, where kdzoo knows "
                           f"{known.size or '?'} bytes, SHA-256 {known.sha256 or '?'}. It was altered or cut on the "
                           f"way (a mirror or a proxy?); nothing was kept. Download it again from another source.")


def _commit(paths: dict[str, Path], source: str, manifest: dict[str, Any], check: Check | None,
            archive: dict[str, Any] | None = None) -> None:
    """Check the staged teacher files, then rename them into the downloads folder and record them (a teacher
    recorded before keeps its first record: the new file must match it)."""
    records = {}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for name, path in paths.items():
        size, digest = path.stat().st_size, sha256_of(path)
        _check_known(KNOWN_TEACHERS[name], size, digest, f"The teacher {name} from {source}")
        before = manifest["teachers"].get(name)
        if before and (before["size"], before["sha256"]) != (size, digest):
            raise TeacherError(f"The teacher {name} from {source} ({size:,} bytes, SHA-256 {digest}) differs from the "
                               f"one recorded when it first arrived ({before['size']:,} bytes, {before['sha256']}, "
                               f"from {before['source']}); nothing was changed. If you trust the new file, delete "
                               f"{downloads_dir()} and fetch or add the teachers again.")
        if check is not None:
            try:
                check(path, name)
            except KdzooError as exc:
                raise TeacherError(f"The file given as the teacher {name} from {source} is not kdzoo's {name}; nothing "
                                   f"was kept. {exc}") from None
        records[name] = before or {"file": member_path(name), "size": size, "sha256": digest, "source": source,
                                   "arrived": stamp}
    for name, path in paths.items():
        final = downloads_dir() / member_path(name)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, final)
    manifest["teachers"].update(records)
    if archive is not None:
        manifest["archive"] = {**archive, "arrived": stamp}
    _write_manifest(manifest)
