"""Atomic writes and staging directories, shared by results, model cards, the converter, the training export and the hub's cache.

A reader (another process, a crash) sees either the old file or the whole new one, never a
partial: the bytes go to a hidden temporary file in the same directory, which ``os.replace``
then puts in place (atomic within one file system).

Directories are assembled the same way, in a hidden *staging directory* beside the final one
(:func:`staging_dir`, :func:`replacing_dir`). A run killed with SIGKILL (or a power cut) cannot
remove its staging directory, so the next run that stages in the same parent removes the stale
ones, safely:

- the owner of a staging directory holds an ``flock`` on a file inside it
  (``.fourd-hub-staging.owner``, which also records its PID) for as long as the directory lives;
  the kernel drops the lock when the process dies, however it dies, so a stale directory is one
  whose owner file can be locked;
- creating, committing (renaming into place) and removing staging directories all happen under
  a lock on their parent (the lock file ``.fourd-hub-staging.lock``, deleted on release, so
  nothing stays behind), so a cleaner never sees a directory between its creation and its
  owner lock, nor between the owner file's removal and the rename;
- only direct children of the parent that are real directories (not symlinks) and whose name
  matches the staging pattern exactly (prefix + 8 random characters) are ever removed.

Without ``fcntl`` (Windows) staging works the same but stale directories are left alone: there
is no way to tell a live owner from a dead one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

logger = logging.getLogger(__name__)

#: The lock file, in the parent of staging directories, held while one is created, committed or removed.
PARENT_LOCK_NAME = ".fourd-hub-staging.lock"
#: The file inside a staging directory that its owner holds an flock on for the directory's life.
OWNER_FILE_NAME = ".fourd-hub-staging.owner"
# The random part of a staging directory's name: 8 hex digits (ours), or 8 characters of
# tempfile.mkdtemp's alphabet (staging directories of fourd_hub versions that used mkdtemp).
_RANDOM_PART = "[a-z0-9_]{8}"
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _open_for_lock(path: Path, create: bool) -> int:
    """A descriptor of ``path`` to flock: read-write where allowed (NFS emulates an exclusive
    flock with a write lock, which needs it), else read-only (another user's file)."""
    flags = _NOFOLLOW | _CLOEXEC | (os.O_CREAT if create else 0)
    try:
        return os.open(path, os.O_RDWR | flags, 0o666)
    except PermissionError:
        return os.open(path, os.O_RDONLY | flags, 0o666)


@contextmanager
def _parent_lock(parent: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``parent``'s staging directories (see the module docstring).

    The lock file is removed on release. A waiter may therefore lock a file that its previous
    holder just unlinked; it checks that the path still names the file it locked, else retries.
    """
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    path = parent / PARENT_LOCK_NAME
    while True:
        try:
            fd = _open_for_lock(path, create=True)
        except OSError as error:  # e.g. a symlink planted there (O_NOFOLLOW), or a read-only parent
            raise OSError(
                error.errno, f"cannot lock the staging directories of {parent} with {path} ({error.strerror}); "
                "it must be a regular file or absent (remove it if nothing of fourd_hub runs there), in a writable directory"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False)):
                    break
            except FileNotFoundError:
                pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        # Unlink while still holding the lock: the next holder then always locks a file that exists.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _owner_is_alive(directory: Path) -> bool:
    """Whether a live process owns the staging ``directory`` (its owner file is locked).

    Called under the parent lock, so a directory without an owner file was left by a run that
    died between creating it and locking it (or by a fourd_hub older than the owner files):
    stale. Anything that cannot be checked (a link in place of the file, no permission, a file
    system without flock) counts as alive: it is kept.
    """
    try:
        fd = _open_for_lock(directory / OWNER_FILE_NAME, create=False)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError: held by its owner; anything else: cannot tell
        return True
    finally:
        os.close(fd)  # releases the probe's lock, if taken
    return False


def remove_stale_staging_dirs(parent: str | os.PathLike, pattern: str | re.Pattern[str]) -> list[Path]:
    """Remove the staging directories in ``parent`` whose owner is no longer running.

    Only direct children that are real directories (never a symlink) and whose whole name
    matches ``pattern`` are considered, and only those whose owner file is not locked are
    removed. Takes the parent lock; without ``fcntl`` nothing is removed.

    Args:
        parent: the directory holding the staging directories.
        pattern: a regular expression the whole name must match (``re.fullmatch``).

    Returns:
        The directories removed.
    """
    parent = Path(parent)
    if fcntl is None or not parent.is_dir():  # pragma: no cover - Windows
        return []
    with _parent_lock(parent):
        return _remove_stale(parent, re.compile(pattern))


def _remove_stale(parent: Path, pattern: re.Pattern[str]) -> list[Path]:
    with os.scandir(parent) as entries:
        candidates = [Path(e.path) for e in entries if pattern.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]
    removed = []
    for directory in candidates:
        if _owner_is_alive(directory):
            continue
        # rmtree refuses a symlink (swapped in since the scan) and never follows the links inside.
        shutil.rmtree(directory, ignore_errors=True)
        if not os.path.lexists(directory):
            logger.info("Removed %s, a staging directory left by a run that was killed", directory)
            removed.append(directory)
    return removed


class StagingDir:
    """A staging directory owned by this process, from :func:`staging_dir`.

    Attributes:
        path: The directory to assemble the result in.
    """

    def __init__(self, path: Path, owner_fd: int):
        self.path = path
        self._owner_fd = owner_fd
        self._committed = False

    def commit(self, final: str | os.PathLike) -> Path:
        """Rename the directory to ``final`` (a sibling), replacing what is there (removed first).

        The owner file is deleted just before the rename, under the parent lock, so the result
        holds exactly what was assembled.
        """
        final = Path(final)
        if final.parent.resolve() != self.path.parent.resolve():
            raise ValueError(f"{final} is not beside the staging directory {self.path}: os.replace cannot move it there atomically")
        with _parent_lock(self.path.parent):
            (self.path / OWNER_FILE_NAME).unlink(missing_ok=True)
            if final.exists():
                shutil.rmtree(final)
            os.replace(self.path, final)
            self._committed = True
        return final

    def _close(self) -> None:
        """Remove the directory unless committed, then release the owner lock."""
        try:
            if not self._committed:
                with _parent_lock(self.path.parent):
                    shutil.rmtree(self.path, ignore_errors=True)
        finally:
            os.close(self._owner_fd)


def _make_unique_dir(parent: Path, prefix: str) -> Path:
    """A new directory ``parent/<prefix><8 hex digits>`` with an ordinary directory's permissions."""
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            os.mkdir(path, 0o777)  # the umask applies, as to any directory the user creates
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free staging directory name {prefix}XXXXXXXX in {parent}")


@contextmanager
def staging_dir(parent: str | os.PathLike, prefix: str, stale_prefix: str | None = None) -> Iterator[StagingDir]:
    """A hidden, uniquely named directory in ``parent`` to assemble a result in, owned by this process.

    Before creating it, stale staging directories in ``parent`` (left by runs that were killed)
    are removed: those named ``prefix`` (or matching the regular expression ``stale_prefix``)
    followed by 8 random characters, whose owner is not running (see the module docstring). On
    leaving the ``with`` block the directory is removed unless :meth:`StagingDir.commit` renamed
    it into place.

    Its permissions are an ordinary directory's (not ``mkdtemp``'s private ones), so the result of
    the rename is readable as any other output.

    Args:
        parent: where to create it (created if missing); the final directory must be in it too.
        prefix: the start of its name, e.g. ``".model.partial-"``.
        stale_prefix: a regular expression for the prefixes of other staging directories of the
            same kind to clean up as well (e.g. of other revisions); ``prefix`` always is.

    Yields:
        The :class:`StagingDir`.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    prefixes = re.escape(prefix) if stale_prefix is None else f"(?:{re.escape(prefix)}|{stale_prefix})"
    with _parent_lock(parent):
        if fcntl is not None:
            _remove_stale(parent, re.compile(prefixes + _RANDOM_PART))
        path = _make_unique_dir(parent, prefix)
        try:
            fd = _open_for_lock(path / OWNER_FILE_NAME, create=True)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # a fresh file nobody else has opened: never waits
            os.write(fd, f"pid {os.getpid()}\n".encode())  # for people; the lock is what counts
        except BaseException:
            os.close(fd)
            shutil.rmtree(path, ignore_errors=True)
            raise
    staging = StagingDir(path, fd)
    try:
        yield staging
    finally:
        staging._close()


@contextmanager
def replacing_dir(final: Path) -> Iterator[Path]:
    """Assemble a directory in a :func:`staging_dir` beside ``final`` (``.<name>.partial-*``); on
    success it replaces ``final`` (whose old contents are removed), on any error it is deleted
    and ``final`` is left as it was. Staging directories of killed runs for ``final`` are removed
    first."""
    final = Path(final)
    with staging_dir(final.parent, f".{final.name}.partial-") as staging:
        yield staging.path
        staging.commit(final)


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Create or replace ``path`` with what ``write(handle)`` writes; the parent is created if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes the file private; ours are ordinary files
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """:func:`write_atomic` of ``text`` as UTF-8 (``\\n`` line ends kept as they are)."""
    return write_atomic(path, lambda stream: stream.write(text.encode("utf-8")))


def sha256_of(path: str | os.PathLike, chunk: int = 16 * 2**20) -> str:
    """The sha256 hex digest of a file, read in chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
