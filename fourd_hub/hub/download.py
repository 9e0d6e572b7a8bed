"""Streamed, resumable, verified and atomic file downloads (standard library only).

Checkpoints are several GiB and come from third-party storage (or a local mirror), so a download
must survive a dropped connection without starting over, must never leave a truncated file under
its final name, and must refuse obviously wrong files (an HTML error page, another checkpoint)
before spending the bandwidth on them. :func:`download_file` does all of that with ``urllib``.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import logging
import os
import shutil
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm.auto import tqdm

from .settings import REQUIRE_CHECKSUM_ENV, checksum_required

logger = logging.getLogger(__name__)

_MAX_RETRY_WAIT = 30.0
# A dropped or stalled connection: the bytes already on disk are good, so the transfer is resumed.
# (socket.timeout is an alias of TimeoutError since Python 3.10.)
_TRANSIENT_ERRORS = (http.client.IncompleteRead, ConnectionError, TimeoutError)


class DownloadError(OSError):
    """A download that failed or was refused; the message names the URL, the problem and the fix."""


@dataclass(frozen=True)
class DownloadedFile:
    """The result of :func:`download_file`.

    Attributes:
        path: The final file.
        size: Its size in bytes.
        sha256: Hex SHA-256 digest of the whole file.
        resumed_from: Bytes already on disk (a partial from an earlier call) when this call started.
        requests: HTTP requests (or copy passes) this call made.
    """

    path: Path
    size: int
    sha256: str
    resumed_from: int
    requests: int


def partial_path(destination: str | os.PathLike) -> Path:
    """Where the partial download of ``destination`` lives: same directory, name + ``".incomplete"``."""
    destination = Path(destination)
    return destination.with_name(destination.name + ".incomplete")


class _Interrupted(Exception):
    """The source stopped sending before the announced end; the partial can be resumed."""


class _Restart(Exception):
    """The source cannot continue from the bytes on disk; the partial must be discarded."""


@dataclass
class _Opened:
    body: BinaryIO  # the bytes from `start` on
    start: int  # offset in the file of the body's first byte
    total: int | None  # the whole file's size, when the source says
    length: int | None  # bytes the body announces


# The partial is only ever opened without following a symlink at its path (a link planted there,
# e.g. in a shared cache, would otherwise make the download write, hash and finally rename onto
# whatever it points at), and without blocking on a FIFO planted there.
_PARTIAL_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _not_a_regular_file(path: Path) -> DownloadError:
    """The error for something other than a regular file at the partial's path."""
    if path.is_symlink():
        what = f"a symbolic link (to {os.readlink(path)})"
    elif path.is_dir():
        what = "a directory"
    else:
        what = "not a regular file"
    return DownloadError(
        f"{path} is {what}, not a partial download: fourd_hub never writes through it. Remove it "
        "(it is not fourd_hub's) and call again; if you did not put it there, check who can write "
        f"to {path.parent}."
    )


def _open_partial(path: Path, flags: int) -> int:
    """An ``os.open`` descriptor of the partial that is a regular file at ``path`` itself, never a link's target.

    Raises:
        DownloadError: a symlink, a directory or another non-regular file is at ``path``.
    """
    try:
        fd = os.open(path, flags | _PARTIAL_FLAGS, 0o666)
    except OSError as error:
        # ELOOP (Linux, macOS) or EMLINK (FreeBSD) for a symlink under O_NOFOLLOW; EISDIR, ENXIO (a FIFO)...
        if os.path.lexists(path) and not (path.is_file() and not path.is_symlink()):
            raise _not_a_regular_file(path) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _not_a_regular_file(path)
    return fd


class _Partial:
    """The ``.incomplete`` file and a running SHA-256 of its bytes (hashed once, then appended to).

    Always a regular file at its own path: a symlink (or anything else) planted there is refused
    with a :class:`DownloadError` naming it, and its target is never read, written or renamed.
    """

    def __init__(self, path: Path):
        self.path = path
        if os.path.lexists(path):
            with os.fdopen(_open_partial(path, os.O_RDONLY), "rb") as handle:
                self.size, self.sha = _hash_stream(handle)
        else:
            self.size, self.sha = 0, hashlib.sha256()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)  # unlinks a link itself, never its target
        self.sha = hashlib.sha256()
        self.size = 0

    def open_append(self) -> BinaryIO:
        """The partial opened to append (created if missing)."""
        return os.fdopen(_open_partial(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab")

    def append(self, body: BinaryIO, length: int | None, chunk_size: int, bar: tqdm) -> None:
        received = 0
        with self.open_append() as out:  # the `with` flushes what arrived even on Ctrl-C
            while chunk := body.read(chunk_size):
                out.write(chunk)
                self.sha.update(chunk)
                self.size += len(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        # http.client's read(n) returns b"" when the peer closes early instead of raising.
        if length is not None and received < length:
            raise _Interrupted(f"connection closed after {received} of {length} bytes")


def download_file(
    url: str,
    destination: str | os.PathLike,
    *,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    min_size: int | None = None,
    progress: bool = True,
    description: str | None = None,
    max_retries: int = 5,
    retry_wait: float = 1.0,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
    headers: dict[str, str] | None = None,
) -> DownloadedFile:
    """Download ``url`` to ``destination``: streamed, resumable, verified and atomic.

    Bytes stream into :func:`partial_path` ``(destination)``, opened with ``O_NOFOLLOW`` (a symlink
    planted there is refused, its target never touched); the final name appears only through
    ``os.replace`` once every check passed (after flush and fsync). A partial left by an earlier
    call is resumed with ``Range: bytes=N-``: 206 appends, 200 (ranges ignored) restarts from 0,
    416 means the partial is complete when the server's total equals ``N`` (else it restarts).
    Dropped connections, timeouts, 5xx and 429 are retried, each retry resuming from the bytes
    on disk; other HTTP errors fail at once. ``KeyboardInterrupt`` keeps the partial.

    Args:
        url: ``http://``, ``https://`` or ``file://`` URL, or a plain local path (a local mirror);
            local sources are copied with the same semantics.
        destination: Final path; its parent directory is created if needed. If it already exists
            it is returned without any request, after the size / checksum checks.
        expected_size: Exact byte count when known, checked against the server's size before
            streaming and against the file at the end.
        expected_sha256: Hex digest (any case) checked at the end. Without it, the file is
            "not pinned": refused before any request when ``FOURD_HUB_REQUIRE_CHECKSUM=1``.
        min_size: Plausibility floor (an HTML error page served with 200 is small): refused
            before streaming when the size is known, else at the end.
        progress: Show a tqdm progress bar.
        description: Progress-bar label; default the file name.
        max_retries: Resumptions allowed within this call after transient failures.
        retry_wait: Seconds before the first retry, doubled each time, capped at 30.
        timeout: Socket timeout per request, in seconds.
        chunk_size: Bytes read and written at a time.
        headers: Extra request headers (e.g. ``Authorization``).

    Returns:
        The :class:`DownloadedFile`.

    Raises:
        DownloadError: The source failed or was refused, retries ran out (the partial is kept and
            a later call resumes it), or a check failed (on a size or checksum mismatch at the
            end the partial is deleted, since downloading the same bytes again cannot help); no
            sha256 while ``FOURD_HUB_REQUIRE_CHECKSUM=1``; a symlink or other non-regular file
            at the partial's path (refused, never written through: remove it).
    """
    destination = Path(destination)
    if expected_sha256 is None and checksum_required():
        raise DownloadError(
            f"Refusing {url} (for {destination}): no sha256 is pinned for it and {REQUIRE_CHECKSUM_ENV}=1 "
            f"requires one. Unset {REQUIRE_CHECKSUM_ENV} to accept a file checked only by its size, or "
            "fetch the file yourself, verify it, and use that local copy."
        )
    if destination.exists():
        return _verify_existing(destination, expected_size, expected_sha256)
    from .._version import __version__

    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = _Partial(partial_path(destination))
    if expected_size is not None and partial.size > expected_size:
        partial.discard()  # cannot be a prefix of the right file
    resumed_from = partial.size
    local = _local_path(url)
    request_headers = {"User-Agent": f"fourd_hub/{__version__}", **(headers or {})}

    def open_source(offset: int) -> _Opened:
        if local is not None:
            return _open_local(local, offset)
        return _open_http(url, offset, request_headers, timeout)

    requests = retries = 0
    server_total: int | None = None
    bar = tqdm(
        total=expected_size, initial=resumed_from, unit="B", unit_scale=True, unit_divisor=1024,
        desc=description or destination.name, disable=not progress,
    )
    with bar:
        while True:
            requests += 1
            try:
                opened = open_source(partial.size)
                with opened.body:
                    _check_before_streaming(url, destination.parent, opened, expected_size, min_size)
                    server_total = opened.total if opened.total is not None else server_total
                    if opened.start == 0 and partial.size > 0:
                        logger.info("%s ignored the byte range; downloading it again from 0", url)
                        partial.discard()
                        bar.reset(total=server_total)
                    elif server_total is not None:
                        bar.total = server_total
                    partial.append(opened.body, opened.length, chunk_size, bar)
                break
            except _Restart as why:
                logger.info("Discarding the partial download of %s: %s", url, why)
                partial.discard()
                bar.reset(total=bar.total)
            except KeyboardInterrupt:
                logger.warning("Interrupted: the partial is kept at %s (%d bytes); call again to resume.",
                               partial.path, partial.size)
                raise
            except DownloadError:
                raise
            except (_Interrupted, urllib.error.URLError, http.client.HTTPException, OSError) as error:
                if isinstance(error, urllib.error.HTTPError):
                    error.close()  # its body (an error page) is of no use
                if not _is_transient(error):
                    failure = _failure(url, error)
                    if failure is None:  # a local I/O error (disk full, permissions): as it is
                        raise
                    raise failure from error
                if retries >= max_retries:
                    raise DownloadError(
                        f"Downloading {url} failed after {retries} retries ({error}); the partial is "
                        f"kept at {partial.path}: calling again resumes from byte {partial.size}."
                    ) from error
                retries += 1
                wait = min(retry_wait * 2 ** (retries - 1), _MAX_RETRY_WAIT)
                logger.warning("Download of %s interrupted at byte %d (%s); retry %d of %d in %.1f s",
                               url, partial.size, error, retries, max_retries, wait)
                time.sleep(wait)

    size, digest = partial.size, partial.sha.hexdigest()
    problem = None
    if expected_size is not None and size != expected_size:
        problem = f"got {size} bytes, expected {expected_size}"
    elif server_total is not None and size != server_total:
        problem = f"got {size} bytes, the server announced {server_total}"
    elif expected_sha256 is not None and digest != expected_sha256.lower():
        problem = f"SHA-256 is {digest}, expected {expected_sha256.lower()}"
    elif min_size is not None and size < min_size:
        problem = f"only {size} bytes, less than the plausible minimum {min_size} (an error page?)"
    if problem is not None:
        partial.discard()
        raise DownloadError(f"Downloaded {url} but {problem}; the partial was deleted. "
                            "Wrong file or mirror? Check the URL and FOURD_HUB_ORIGINAL_URL.")
    with partial.open_append() as handle:  # durable before it gets its final name
        os.fsync(handle.fileno())
        # The path must still name the file just checked: a link swapped in since would be
        # renamed to the final name (the target is never written, but the result would be a link).
        if not os.path.samestat(os.fstat(handle.fileno()), os.lstat(partial.path)):
            raise _not_a_regular_file(partial.path)
    os.replace(partial.path, destination)
    return DownloadedFile(destination, size, digest, resumed_from, requests)


def _verify_existing(path: Path, expected_size: int | None, expected_sha256: str | None) -> DownloadedFile:
    size, sha = _hash_file(path)
    digest = sha.hexdigest()
    problem = None
    if expected_size is not None and size != expected_size:
        problem = f"has {size} bytes, expected {expected_size}"
    elif expected_sha256 is not None and digest != expected_sha256.lower():
        problem = f"has SHA-256 {digest}, expected {expected_sha256.lower()}"
    if problem is not None:
        raise DownloadError(f"{path} already exists but {problem}; delete it to download it again.")
    return DownloadedFile(path, size, digest, resumed_from=size, requests=0)


def _hash_file(path: Path):
    """(size, running SHA-256) of a file's bytes."""
    with open(path, "rb") as handle:
        return _hash_stream(handle)


def _hash_stream(handle: BinaryIO):
    """(size, running SHA-256) of the bytes of an open file, from its position on."""
    size, sha = 0, hashlib.sha256()
    while block := handle.read(1 << 20):
        sha.update(block)
        size += len(block)
    return size, sha


def _local_path(url: str) -> Path | None:
    """The path of a ``file://`` URL or a plain path; None for a remote URL."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    return None if "://" in url else Path(url)


def _open_local(path: Path, offset: int) -> _Opened:
    try:
        total = path.stat().st_size
    except FileNotFoundError:
        raise DownloadError(f"{path} does not exist: check the path or the mirror set in "
                            "FOURD_HUB_ORIGINAL_URL.") from None
    if offset > total:
        raise _Restart(f"the partial ({offset} bytes) is larger than {path} ({total} bytes)")
    body = open(path, "rb")
    body.seek(offset)
    return _Opened(body, offset, total, total - offset)


def _open_http(url: str, offset: int, headers: dict[str, str], timeout: float) -> _Opened:
    request = urllib.request.Request(url, headers={**headers, **({"Range": f"bytes={offset}-"} if offset else {})})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # honours the *_proxy variables
    except urllib.error.HTTPError as error:
        if error.code != 416:
            raise
        with error:
            total = _content_range(error.headers.get("Content-Range", ""))[1]
        if not offset:  # we sent no Range: restarting would ask the same again
            raise DownloadError(f"HTTP 416 for {url} without a Range request: the server is broken.") from None
        if total == offset:  # nothing left to send: the partial is the whole file
            return _Opened(io.BytesIO(), offset, total, 0)
        raise _Restart(f"the server cannot send from byte {offset} (file size {total})") from None
    length = _int_or_none(response.headers.get("Content-Length"))
    if response.status != 206:
        return _Opened(response, 0, length, length)
    start, total = _content_range(response.headers.get("Content-Range", ""))
    if start != offset:
        response.close()
        if offset == 0:  # restarting would ask the same again
            raise DownloadError(f"{url} answered a request for the whole file with bytes from {start}.")
        raise _Restart(f"asked for bytes from {offset}, the server sent them from {start}")
    return _Opened(response, start, total, length)


def _content_range(value: str) -> tuple[int | None, int | None]:
    """(first byte, total) of ``bytes FIRST-LAST/TOTAL`` or ``bytes */TOTAL``; None where unknown."""
    _, _, spec = value.strip().partition(" ")
    span, _, total = spec.partition("/")
    return _int_or_none(span.partition("-")[0]), _int_or_none(total)


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


def _check_before_streaming(url: str, directory: Path, opened: _Opened, expected_size: int | None,
                            min_size: int | None) -> None:
    """Refuse a wrong-sized file or a full disk before any byte is streamed."""
    if opened.total is not None:
        if expected_size is not None and opened.total != expected_size:
            raise DownloadError(f"{url} is {opened.total} bytes, expected {expected_size}: wrong file or "
                                "mirror? Check the URL and FOURD_HUB_ORIGINAL_URL.")
        if min_size is not None and opened.total < min_size:
            raise DownloadError(f"{url} is only {opened.total} bytes, less than the plausible minimum "
                                f"{min_size} (an error page?): wrong file or mirror? Check the URL.")
    remaining = opened.length
    if remaining is None and opened.total is not None:
        remaining = opened.total - opened.start
    if remaining:
        free = shutil.disk_usage(directory).free
        if free < remaining:
            raise DownloadError(f"Not enough disk space in {directory} for {url}: {_human(remaining)} "
                                f"needed, {_human(free)} free. Free some space or set HF_HUB_CACHE "
                                "to a directory on a larger disk.")


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code >= 500 or error.code == 429
    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else error
    return isinstance(error, (_Interrupted, *_TRANSIENT_ERRORS))


def _failure(url: str, error: BaseException) -> DownloadError | None:
    """A clear DownloadError for a permanent HTTP or network failure; None for local I/O errors."""
    if isinstance(error, urllib.error.HTTPError):
        advice = {
            404: "the file is not there",
            401: "authentication is required",
            403: "access is denied",
        }.get(error.code, str(error.reason))
        return DownloadError(f"HTTP {error.code} for {url}: {advice}; check the URL or the mirror set "
                             "in FOURD_HUB_ORIGINAL_URL.")
    if isinstance(error, urllib.error.URLError):
        return DownloadError(f"Cannot reach {url}: {error.reason}; check the URL, the network and the "
                             "proxy settings (HTTPS_PROXY, NO_PROXY).")
    if isinstance(error, http.client.HTTPException):
        return DownloadError(f"Bad HTTP response from {url}: {error!r}.")
    return None
