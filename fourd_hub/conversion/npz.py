"""Safe, streaming access to the original ``.npz`` checkpoints.

An ``.npz`` is a zip of ``.npy`` members. :class:`NpzCheckpoint` reads every member's header
(shape, dtype) without touching the data, then loads one array at a time on request, never with
pickle. Every failure mode (missing, empty, truncated, not a zip, pickled members) is turned into a
:class:`CheckpointError` that says what is wrong with which file and what to do.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or does not match what the converter expects."""


@dataclass(frozen=True)
class ArrayInfo:
    """Header of one ``.npy`` member: its shape and dtype (data not read)."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


_DOWNLOAD_HINT = "re-download the file (its size should match the catalog's) and try again"


class NpzCheckpoint:
    """Read-only view of an ``.npz`` checkpoint: ``keys()``, ``info(key)``, ``load(key)``.

    Use as a context manager. Keys are the member names without the ``.npy`` suffix, i.e. the
    original Flax paths joined with ``/``.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise CheckpointError(f"checkpoint {self.path} does not exist")
        if self.path.is_dir():
            raise CheckpointError(f"checkpoint {self.path} is a directory; pass the .npz file")
        size = self.path.stat().st_size
        if size == 0:
            raise CheckpointError(f"checkpoint {self.path} is empty (0 bytes); {_DOWNLOAD_HINT}")
        try:
            self._zip = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile as err:
            raise CheckpointError(
                f"checkpoint {self.path} ({size} bytes) is not a readable .npz archive ({err}); "
                f"it is truncated or not an .npz file: {_DOWNLOAD_HINT}"
            ) from None
        self._members: dict[str, str] = {}
        self._info: dict[str, ArrayInfo] = {}
        for member in self._zip.infolist():
            if member.is_dir():
                continue
            key = member.filename[:-4] if member.filename.endswith(".npy") else member.filename
            self._members[key] = member.filename
            self._info[key] = self._read_header(key, member.filename)
        if not self._members:
            raise CheckpointError(f"checkpoint {self.path} holds no arrays")

    def _read_header(self, key: str, member: str) -> ArrayInfo:
        try:
            with self._zip.open(member) as handle:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise CheckpointError(
                f"array {key!r} of {self.path} has no valid .npy header ({err}); the file is corrupt: {_DOWNLOAD_HINT}"
            ) from None
        if dtype.hasobject:
            raise CheckpointError(
                f"array {key!r} of {self.path} holds Python objects (a pickled array); checkpoints are never "
                "unpickled here. Re-export it with plain numeric arrays (np.savez of float arrays)."
            )
        return ArrayInfo(tuple(int(s) for s in shape), dtype)

    def keys(self) -> list[str]:
        return list(self._members)

    def info(self, key: str) -> ArrayInfo:
        """The header of array ``key``; a :class:`CheckpointError` naming it if the file lacks it."""
        self._require(key)
        return self._info[key]

    def _require(self, key: str) -> None:
        if key not in self._members:
            raise CheckpointError(f"array {key!r} is missing from checkpoint {self.path} ({len(self._members)} arrays in it)")

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: info.shape for key, info in self._info.items()}

    def load(self, key: str) -> np.ndarray:
        """Read one array (and only it) from the archive, without pickle."""
        self._require(key)
        try:
            with self._zip.open(self._members[key]) as handle:
                array = np.lib.format.read_array(handle, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise CheckpointError(
                f"array {key!r} of {self.path} cannot be read ({err}); the file is truncated or corrupt: {_DOWNLOAD_HINT}"
            ) from None
        return array

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "NpzCheckpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
