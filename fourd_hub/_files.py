"""Atomic writes, shared by results, model cards, the converter and the hub's cache.

A reader (another process, a crash) sees either the old file or the whole new one, never a
partial: the bytes go to a hidden temporary file in the same directory, which ``os.replace``
then puts in place (atomic within one file system).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def staging_dir(final: Path) -> Path:
    """A hidden, uniquely named directory beside ``final`` to assemble it in, then ``os.replace`` it.

    Its permissions are an ordinary directory's (``mkdtemp`` makes it private), so the result of
    the rename is readable as any other output.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    os.chmod(path, 0o777 & ~_umask())
    return path


@contextmanager
def replacing_dir(final: Path) -> Iterator[Path]:
    """Assemble a directory in a :func:`staging_dir`; on success it replaces ``final`` (whose old
    contents are removed), on any error it is deleted and ``final`` is left as it was."""
    staging = staging_dir(final)
    try:
        yield staging
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


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
