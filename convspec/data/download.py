"""The checksummed mirror downloader: the first mirror whose content verifies wins.

A download streams into a temporary file next to its destination, is checked against the
SHA-256 of its decompressed content, and only then is moved onto the destination
(``os.replace``), so an interrupted or corrupt download never leaves a file that looks good.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from ..errors import DataError
from .idx import read_bytes

DataLog = Callable[[str], None]  # where progress and notes go
_details = logging.getLogger("convspec.data")  # what --verbose adds: each mirror tried


class MirrorFailed(Exception):
    """One mirror failed; the downloader moves on to the next one. ``connected``: the mirror
    answered (an HTTP error, a bad file), which is printed; a failure to connect (offline) is
    only logged at INFO (``--verbose``)."""

    def __init__(self, message: str, connected: bool = True):
        super().__init__(message)
        self.connected = connected


def quiet(_message: str) -> None:
    """A log that says nothing."""


def download_file(urls: Sequence[str], dest: Path, sha256: str, *, timeout: float = 30.0,
                  log: DataLog | None = None) -> Path:
    """Fetch the first mirror whose content verifies and move it atomically onto ``dest``.

    ``sha256`` is of the decompressed content when the download is gzip, else of the raw bytes;
    ``timeout`` is in seconds per connection. Raises ``DataError`` listing every mirror's
    failure when none verifies.
    """
    dest, say, failures = Path(dest), log or quiet, []
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"Cannot create the download folder {dest.parent} ({exc}); set "
                        "CONVSPEC_CACHE_DIR to a writable folder.") from None
    for url in urls:
        try:
            _fetch(url, dest, sha256, timeout, say)
            return dest
        except MirrorFailed as exc:
            if exc.connected:
                say(f"  {url}: {exc}")
            else:
                _details.info("  %s: %s", url, exc)
            failures.append(f"{url}: {exc}")
    raise DataError(f"Could not download {dest.name}; every mirror failed ("
                    + "; ".join(failures) + "). Check the network or proxy, or get the file "
                    f"another way and put it in {dest.parent} (or use --data-dir).")


def _fetch(url: str, dest: Path, sha256: str, timeout: float, say: DataLog) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            _stream(url, out, timeout, say)
        digest = _content_sha256(tmp)
        if digest != sha256:
            raise MirrorFailed(f"checksum mismatch (sha256 {digest}, expected {sha256})")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _stream(url: str, out: BinaryIO, timeout: float, say: DataLog) -> None:
    _details.info("Trying %s", url)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "convspec"})
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            say(f"Downloading {url}")  # once connected: offline, nothing is printed
            total, got, step = int(resp.headers.get("Content-Length") or 0), 0, 0
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                got += len(chunk)
                if total > 1e6 and (tenths := got * 10 // total) > step:
                    step = tenths
                    say(f"  {got / 1e6:.1f} / {total / 1e6:.1f} MB ({100 * got // total}%)")
    except urllib.error.HTTPError as exc:
        raise MirrorFailed(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise MirrorFailed(f"cannot connect ({exc.reason})", connected=False) from None
    except TimeoutError:
        raise MirrorFailed(f"timed out after {timeout:g} s", connected=False) from None
    except (http.client.HTTPException, OSError) as exc:
        raise MirrorFailed(f"connection broken ({exc!r})") from None
    if total and got != total:
        raise MirrorFailed(f"connection closed after {got} of {total} bytes")
    say(f"  done, {got / 1e6:.1f} MB")


def _content_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(read_bytes(path)).hexdigest()
    except DataError:
        raise MirrorFailed("not a valid gzip file (corrupt or truncated)") from None
