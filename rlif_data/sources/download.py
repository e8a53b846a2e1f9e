"""Download a file over HTTP(S) with resume (HTTP Range), a size and a SHA-256 check.

Bytes go to ``<dest>.part``; only a complete file whose size and hash match
becomes ``dest`` (one rename), so a reader never takes a partial download
for the file. A connection that ends early keeps the ``.part`` file: the
next call asks the server for the rest (``Range: bytes=N-``) and appends; a
server that ignores the range sends the whole file again, which replaces
the part. Bytes that do not match the expected size or hash are deleted
(resuming from them would only repeat the mismatch) and the error says so.

`d4rl_source` picks a D4RL dataset's address from the catalogue
(`rlif_data.sources.d4rl_catalog`), or from a mirror holding the same files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Optional

from rlif_data import errors

PART_SUFFIX = ".part"
CHUNK = 1 << 20
USER_AGENT = "rlif-data"


class DownloadError(errors.RlifDataError):
    """A download could not finish (network, server); what was received is kept to resume."""


class DownloadIntegrityError(DownloadError, ValueError):
    """Downloaded bytes differ from the expected size or SHA-256; they were deleted."""


@dataclasses.dataclass(frozen=True)
class DownloadResult:
    """A finished download.

    Attributes:
      path: the complete file.
      bytes: its size.
      sha256: its SHA-256 (hex).
      verified: the hash was checked against an expected one (not only computed).
      resumed_from: bytes that were already there from an interrupted try (0: none).
      reused: the file was complete and matched already; nothing was fetched.
    """

    path: str
    bytes: int
    sha256: str
    verified: bool
    resumed_from: int = 0
    reused: bool = False


def mirror_url(url: str, mirror: str) -> str:
    """The address of `url`'s file on a mirror: the mirror's base + the file name. Pure."""
    name = os.path.basename(urllib.parse.urlparse(url).path)
    return mirror.rstrip("/") + "/" + name


def content_range_start(header: Optional[str]) -> Optional[int]:
    """The first byte of a ``Content-Range: bytes START-END/TOTAL`` header, else None. Pure."""
    match = re.match(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)", header or "")
    return int(match.group(1)) if match else None


def content_range_total(header: Optional[str]) -> Optional[int]:
    """The TOTAL of a ``Content-Range`` header (None if absent or ``*``). Pure."""
    match = re.match(r"\s*bytes\s+(?:\d+-\d+|\*)/(\d+)", header or "")
    return int(match.group(1)) if match else None


def file_sha256(path: str, chunk: int = CHUNK) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _check(path: str, size: int, digest: str, expected_size: Optional[int],
           expected_sha256: Optional[str], url: str) -> None:
    """Raise `DownloadIntegrityError` (deleting `path`) if size or hash differ."""
    problem = None
    if expected_size is not None and size != expected_size:
        problem = f"got {size} bytes, expected {expected_size}"
    elif expected_sha256 is not None and digest != expected_sha256.lower():
        problem = f"SHA-256 {digest}, expected {expected_sha256.lower()}"
    if problem:
        os.remove(path)
        raise DownloadIntegrityError(
            f"{url}: downloaded bytes do not match ({problem}); they were deleted. "
            "Run the command again to download afresh; if it happens again the server's file "
            "differs from the catalogue's (use --mirror, or --sha256 for a known other version)")


def _open(url: str, offset: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http(s) only)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return exc  # nothing left past `offset`: the caller checks what it has
        raise DownloadError(f"{url}: the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: cannot connect ({reason}); check the network, or use "
                            "--mirror for a reachable copy") from None


def download(url: str, dest: str, *, expected_size: Optional[int] = None,
             expected_sha256: Optional[str] = None,
             progress: Optional[Callable[[int, Optional[int]], None]] = None,
             timeout: float = 60.0, chunk: int = CHUNK) -> DownloadResult:
    """Fetch `url` into `dest`, resuming an earlier interrupted try.

    Args:
      url: an ``http://`` or ``https://`` address.
      dest: the file to create (its folder is created).
      expected_size: the file's size in bytes, when known; else the server's
        Content-Length is the only size check.
      expected_sha256: the file's SHA-256 (hex), when known.
      progress: called as ``progress(bytes so far, total or None)``.
      timeout: seconds to wait for the server at each read.
      chunk: bytes per read.

    Returns:
      A `DownloadResult`.

    Raises:
      ValueError: not an http(s) address.
      DownloadError: the server cannot be reached, answered an error, or the
        connection ended early (the bytes so far are kept: call again to resume).
      DownloadIntegrityError: size or SHA-256 differ (the bytes are deleted).
    """
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"{url}: only http:// and https:// addresses can be downloaded")
    dest = os.path.abspath(dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.exists(dest):
        size, digest = os.path.getsize(dest), file_sha256(dest)
        if (expected_size in (None, size)) and (expected_sha256 in (None, digest)):
            return DownloadResult(dest, size, digest, expected_sha256 is not None, reused=True)
        raise DownloadIntegrityError(
            f"{dest} exists with other bytes than expected ({size} bytes, SHA-256 {digest}); "
            "move it away or give another destination")
    part = dest + PART_SUFFIX
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    resumed_from = offset
    digest = hashlib.sha256()
    response = _open(url, offset, timeout)
    try:
        status = getattr(response, "status", None) or response.getcode()
        if status == 416:
            total = content_range_total(response.headers.get("Content-Range"))
            if total != offset:  # the part is not simply complete: start over
                os.remove(part)
                response.close()
                return download(url, dest, expected_size=expected_size,
                                expected_sha256=expected_sha256, progress=progress,
                                timeout=timeout, chunk=chunk)
            length = 0
        elif status == 206 and content_range_start(response.headers.get("Content-Range")) == offset:
            total = content_range_total(response.headers.get("Content-Range"))
            length = int(response.headers.get("Content-Length") or -1)
        else:  # 200: the server sent the whole file (or ignored our range)
            offset = resumed_from = 0
            length = int(response.headers.get("Content-Length") or -1)
            total = length if length >= 0 else None
        total = expected_size if expected_size is not None and total is None else total
        if expected_size is not None and total is not None and total != expected_size:
            raise DownloadIntegrityError(
                f"{url}: the server's file has {total} bytes, expected {expected_size}; nothing "
                "was written. Check the address (--mirror) or the expected size (--size)")
        mode = "ab" if offset else "wb"
        if offset:
            with open(part, "rb") as f:  # the resumed hash covers the bytes already there
                while block := f.read(chunk):
                    digest.update(block)
        received = offset
        with open(part, mode) as f:
            if progress is not None:
                progress(received, total)
            while status != 416:
                try:
                    block = response.read(chunk)
                except (http.client.IncompleteRead, OSError) as exc:
                    block = getattr(exc, "partial", b"")
                    f.write(block)
                    digest.update(block)
                    received += len(block)
                    break
                if not block:
                    break
                f.write(block)
                digest.update(block)
                received += len(block)
                if progress is not None:
                    progress(received, total)
            f.flush()
            os.fsync(f.fileno())
    finally:
        response.close()
    expected_end = total if total is not None else (offset + length if length >= 0 else None)
    if expected_end is not None and received < expected_end:
        raise DownloadError(
            f"{url}: the connection ended after {received} of {expected_end} bytes; they are "
            f"kept in {part}: run the command again to resume")
    _check(part, received, digest.hexdigest(), expected_size if expected_size is not None
           else expected_end, expected_sha256, url)
    os.replace(part, dest)
    return DownloadResult(dest, received, digest.hexdigest(), expected_sha256 is not None,
                          resumed_from=resumed_from)


@dataclasses.dataclass(frozen=True)
class D4RLSource:
    """Where to fetch a catalogued D4RL file and what it must be.

    Attributes:
      name: the D4RL dataset name.
      url: the address used (the catalogue's, or a mirror's).
      file_name: the file's name (as the catalogue's address names it).
      env_id: the Gymnasium env to store with the episodes.
      bytes, sha256: the expected size and hash, None where not known.
    """

    name: str
    url: str
    file_name: str
    env_id: str
    bytes: Optional[int]
    sha256: Optional[str]


def d4rl_source(name: str, mirror: Optional[str] = None, sha256: Optional[str] = None,
                size: Optional[int] = None) -> D4RLSource:
    """The address and expected size/hash of a catalogued D4RL dataset.

    Args:
      name: e.g. "hopper-medium-v2" (`d4rl_catalog.d4rl_dataset` spelling rules).
      mirror: a base address holding the same file names, instead of the catalogue's host.
      sha256, size: expected hash and/or size of another file than the published one;
        either replaces the catalogue's pair (`d4rl_checksums`) as a whole.

    Raises:
      UnknownD4RLDatasetError: not catalogued (the message names close names).
      ValueError: a malformed SHA-256.
    """
    from rlif_data.sources.d4rl_catalog import d4rl_dataset

    dataset = d4rl_dataset(name)
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ValueError(f"--sha256 must be 64 hex digits, got {sha256!r}")
    url = mirror_url(dataset.url, mirror) if mirror else dataset.url
    if sha256 is None and size is None:
        expected = (dataset.bytes, dataset.sha256)  # the published file (`d4rl_checksums`)
    else:
        # The user names another file (a re-release, a local build): the catalogue's size and
        # hash describe the published one, so neither applies any more.
        expected = (size, sha256.lower() if sha256 else None)
    return D4RLSource(dataset.name, url, os.path.basename(urllib.parse.urlparse(dataset.url).path),
                      dataset.gymnasium_env_id, *expected)
