"""Download one file over HTTP(S) with the standard library: a progress bar with size and speed, resume of a partial
download (HTTP ``Range``), a timeout, and errors that say what to do on a slow, filtered or absent network.

The bytes go to ``<target>.part``, renamed to ``target`` only when complete; a ``.part`` left by an interruption is
resumed by the next call. A file larger than its bound (:attr:`~kdzoo.teachers.catalog.Known.limit`) is refused from
its announced size before a byte is written, and a stream that does not announce it is stopped at the bound and
deleted, so no server can fill the disk.
"""

from __future__ import annotations

import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import TeacherError
from .catalog import ARCHIVE, URL_ENV, Known

#: Seconds without an answer (to connect, or between two reads) before a download gives up.
TIMEOUT_ENV = "KDZOO_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT_S = 60.0
#: Attempts in one call; a new attempt resumes where the last stopped, and only after it brought some bytes.
ATTEMPTS = 5
CHUNK = 1 << 20
CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")
#: What a dropped or refused connection raises (``URLError`` and ``ConnectionError`` are ``OSError``'s).
DROPPED = (OSError, http.client.HTTPException)


def timeout_s() -> float:
    """The timeout: ``$KDZOO_DOWNLOAD_TIMEOUT`` seconds, else 60."""
    text = os.environ.get(TIMEOUT_ENV)
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        value = -1.0
    if not value > 0:
        raise TeacherError(f"{TIMEOUT_ENV} must be a number of seconds > 0, got {text!r}.")
    return value


def ways_out(url: str) -> str:
    """The two ways to a teacher when this machine cannot download ``url``."""
    return (f"Two ways out: (1) a mirror: set {URL_ENV} to a base URL under which {ARCHIVE} is found (GitHub downloads "
            f"are slow or blocked for many users, e.g. in mainland China); or (2) fetch {url} by hand (a browser, "
            f"another machine) and run `kdzoo teachers add {ARCHIVE}`.")


def download(url: str, target: Path, desc: str, known: Known) -> Path:
    """Download ``url`` to ``target`` (resuming ``target.part`` if present) and return ``target``; never more bytes
    than ``known.limit``."""
    part = target.with_name(target.name + ".part")
    if part.exists() and part.stat().st_size > known.limit:  # not a part of this file: start again
        part.unlink()
    seconds = timeout_s()
    for _ in range(ATTEMPTS):
        before = part.stat().st_size if part.exists() else 0
        try:
            if _attempt(url, part, seconds, desc, known):
                os.replace(part, target)
                return target
            reason = "the connection closed before the end of the file"
        except TimeoutError:
            reason = f"no answer for {seconds:g} s"
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and before:  # the partial file does not fit the server's: start again
                part.unlink()
                continue
            what = "the file is not there" if exc.code == 404 else "the server refused or failed the request"
            raise TeacherError(f"{url} answered {exc.code} {exc.reason}: {what}"
                               f"{' (check the mirror in ' + URL_ENV + ')' if os.environ.get(URL_ENV) else ''}. "
                               f"{ways_out(url)}") from None
        except DROPPED as exc:
            reason = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
            if isinstance(getattr(exc, "reason", None), TimeoutError):
                reason = f"no answer for {seconds:g} s"
        now = part.stat().st_size if part.exists() else 0
        if now <= before:  # no progress: trying again would only wait again
            break
    raise _failure(url, part, reason, seconds)


def _failure(url: str, part: Path, reason: str, seconds: float) -> TeacherError:
    got = part.stat().st_size if part.exists() else 0
    if part.exists() and not got:
        part.unlink()
    kept = (f" The {got:,} bytes received are kept in {part}; the same command resumes from there."
            if got else "")
    slow = f" A slow network: raise {TIMEOUT_ENV} (now {seconds:g} s)." if "no answer" in reason else ""
    return TeacherError(f"Could not download {url} ({reason}).{kept}{slow} Offline or behind a filter? (A proxy is "
                        f"taken from HTTPS_PROXY/HTTP_PROXY.) {ways_out(url)}")


def _too_large(url: str, part: Path, what: str, desc: str, known: Known) -> TeacherError:
    """The error for a file over its bound, once ``part`` is deleted (none of it is kept to resume)."""
    part.unlink(missing_ok=True)
    return TeacherError(f"{url} {what} more than {desc} can be ({known.limit_text}): kdzoo stopped and kept nothing. "
                        f"It is not the published file (a wrong mirror, or another file in its place?). "
                        f"{ways_out(url)}")


def _attempt(url: str, part: Path, seconds: float, desc: str, known: Known) -> bool:
    """One request, appended to ``part`` (from its end when the server honours ``Range``); True when complete.
    Refused before writing when the announced size is over ``known.limit``, stopped at the limit otherwise."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "kdzoo", **({"Range": f"bytes={have}-"}
                                                                             if have else {})})
    with urllib.request.urlopen(request, timeout=seconds) as response:
        resumed = response.status == 206
        found = CONTENT_RANGE.match(response.headers.get("Content-Range", "")) if resumed else None
        start = int(found.group(1)) if found else 0
        if resumed and start != have:
            raise http.client.HTTPException(f"the server resumed at byte {start if found else '?'}, not {have}")
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        if total is not None and total > known.limit:
            raise _too_large(url, part, f"announces {total:,} bytes,", desc, known)
        with open(part, "ab" if resumed else "wb") as f, tqdm(
                total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                file=sys.stderr, dynamic_ncols=True, disable=None) as bar:
            received = start
            while chunk := response.read(CHUNK):
                received += len(chunk)
                if received > known.limit:
                    f.close()
                    raise _too_large(url, part, "sends more bytes, without announcing how many,", desc, known)
                f.write(chunk)
                bar.update(len(chunk))
    return total is None or part.stat().st_size == total
