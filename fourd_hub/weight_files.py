"""The weights of a model directory, found and checked before anything is built (torch-free).

Loading a directory is as strict as converting a file. Before a model is built,
:func:`find_weights` answers, from the files alone:

- which files hold the weights: ``model.safetensors``, or the shards that
  ``model.safetensors.index.json`` names. Pickle formats (``pytorch_model.bin``, ``*.pt``) are
  refused with a message saying how to convert them, never opened;
- that every file stays inside the directory: a shard name with a path separator or ``..``, or a
  symlink leaving the directory, is refused (in a Hugging Face cache snapshot, the repo's own
  ``blobs/`` is part of the directory);
- that every safetensors header is sound: not empty, not truncated, a JSON object of known dtypes,
  shapes and byte ranges that tile the data exactly; the index and the shards agree;
- when the converter recorded it (``fourd_hub.sha256`` in the header's metadata), that the tensor
  data is the data it wrote (:func:`verify_checksums`), so a flipped byte is an error, not a
  slightly different model.

:func:`read_tensor_data` reads the tensors' bytes once, with plain reads (no memory map, so no
page of the file stays in the process's memory), and verifies the checksums on the way. When a
load casts (a float32 file loaded in bfloat16), the model loader (:mod:`fourd_hub.modeling_utils`)
reads through it and casts each tensor as it arrives.

What the headers say (names, dtypes, shapes) is then compared with the model the config
describes (:func:`fourd_hub.modeling_utils.check_weights_fit`) before any memory is allocated.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CHECKSUM_METADATA_KEY",
    "SAFETENSORS_INDEX_NAME",
    "SAFETENSORS_NAME",
    "TensorHeader",
    "WeightFiles",
    "WeightsError",
    "find_weights",
    "read_safetensors_header",
    "read_tensor_bytes",
    "read_tensor_data",
    "verify_checksums",
]

SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
#: Header metadata key holding the sha256 of the file's tensor data (written by the converter).
CHECKSUM_METADATA_KEY = "fourd_hub.sha256"
#: safetensors' own limit on the header (the JSON before the data).
MAX_HEADER_BYTES = 100_000_000
#: Weight formats that unpickle (or run code) when read: refused by name.
PICKLE_PATTERNS = ("pytorch_model*.bin", "*.bin.index.json", "*.pt", "*.pth", "*.ckpt", "*.pkl")

#: safetensors dtype code -> bytes per element.
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64", "F8_E4M3", "F8_E5M2", "F8_E8M0"})

#: safetensors dtype code -> the name of the torch dtype it stores (looked up only when torch is
#: wanted, so that this module stays importable without torch: the CLI reads headers before it).
_TORCH_DTYPE_NAMES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32",
    "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool", "U16": "uint16", "U32": "uint32", "U64": "uint64",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E8M0": "float8_e8m0fnu",
}  # fmt: skip


def torch_dtype(code: str):
    """The torch dtype of a safetensors dtype code (``"BF16"`` -> ``torch.bfloat16``), or None when
    the code is unknown or this torch build lacks the dtype. The one table of the package: the
    loader, the converter's writer and its verification read it."""
    import torch

    name = _TORCH_DTYPE_NAMES.get(code)
    return None if name is None else getattr(torch, name, None)


class WeightsError(ValueError):
    """The weights of a model directory are missing, unreadable, outside it, or do not fit its config."""


@dataclass(frozen=True)
class TensorHeader:
    """One tensor as a safetensors header describes it.

    Attributes:
        name: the state-dict key.
        dtype: the safetensors dtype code (``"F32"``, ``"BF16"``, ``"I64"``, ...).
        shape: its shape.
        file: the file holding it.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    file: Path
    #: (begin, end) byte range of the tensor's data in ``file`` (from the start of the file).
    offsets: tuple[int, int] = (0, 0)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def nbytes(self) -> int:
        return self.offsets[1] - self.offsets[0]

    @property
    def torch_dtype(self):
        """The torch dtype of :attr:`dtype` (None if this torch has none); imports torch."""
        return torch_dtype(self.dtype)


@dataclass(frozen=True)
class WeightFiles:
    """The checked weight files of a model directory.

    Attributes:
        directory: the model directory.
        files: the safetensors files, in index order.
        tensors: every tensor's header, by name.
        checksums: file -> the sha256 of its tensor data recorded in its header (files without one
            are absent).
    """

    directory: Path
    files: tuple[Path, ...]
    tensors: dict[str, TensorHeader]
    checksums: dict[Path, str]


def _allowed_roots(directory: Path) -> list[Path]:
    """Where the files of ``directory`` may live: itself, and for a Hugging Face cache snapshot
    (``models--org--name/snapshots/<rev>``) its repo's ``blobs/`` (the snapshot's files are links there)."""
    resolved = directory.resolve()
    roots = [resolved]
    if resolved.parent.name == "snapshots" and resolved.parent.parent.name.startswith("models--"):
        roots.append(resolved.parent.parent / "blobs")
    return roots


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _checked_file(directory: Path, name: str, what: str) -> Path:
    """``directory / name`` after refusing a name that leaves the directory or a link pointing outside it."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name or os.path.isabs(name):
        raise WeightsError(
            f"{directory}: {what} names the file {name!r}, which is not a plain file name inside the directory; "
            "a weight file must sit in the model directory itself (re-convert or re-download the model)"
        )
    path = directory / name
    if not path.exists():
        raise WeightsError(f"{directory}: {what} names {name}, which is missing; re-download or re-convert the model")
    target = path.resolve()
    if not _inside(target, _allowed_roots(directory)):
        raise WeightsError(
            f"{path} is a link to {target}, outside the model directory; fourd_hub reads no file outside the directory "
            "it loads (copy the file into the directory instead of linking it)"
        )
    if not target.is_file():
        raise WeightsError(f"{path} is not a regular file")
    return path


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict[str, TensorHeader], dict[str, str]]:
    """The tensors and metadata a safetensors file's header describes, after checking the header against the file.

    Returns:
        (tensors by name, the ``__metadata__`` strings).

    Raises:
        WeightsError: empty, truncated, garbage or absurd header, unknown dtype, byte ranges that
            do not tile the data (overlaps, gaps, beyond the end of the file). The message names
            the file (and the tensor).
    """
    path = Path(path)
    fix = "re-download or re-convert the model"
    size = path.stat().st_size
    if size == 0:
        raise WeightsError(f"{path} is empty (0 bytes); {fix}")
    if size < 8:
        raise WeightsError(f"{path} is truncated ({size} bytes, shorter than the 8-byte safetensors header length); {fix}")
    with open(path, "rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        if header_size > MAX_HEADER_BYTES:
            raise WeightsError(f"{path} is not a safetensors file: it claims a {header_size}-byte header (limit {MAX_HEADER_BYTES}); {fix}")
        if header_size > size - 8:
            raise WeightsError(f"{path} is truncated: its header claims {header_size} bytes, the file holds {size - 8} after the length; {fix}")
        raw = handle.read(header_size)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsError(f"{path} is not a safetensors file: its header is not JSON ({err}); {fix}") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: the safetensors header must be a JSON object, got {type(header).__name__}; {fix}")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise WeightsError(f"{path}: the header's __metadata__ must map strings to strings; {fix}")
    tensors: dict[str, TensorHeader] = {}
    ranges: list[tuple[int, int, str]] = []
    for name, spec in header.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
            raise WeightsError(f"{where} has a malformed header entry (needs exactly dtype, shape, data_offsets); {fix}")
        dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
        if dtype not in DTYPE_SIZES:
            raise WeightsError(f"{where} has the unknown dtype {dtype!r}; {fix}")
        if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
            raise WeightsError(f"{where} has an invalid shape {shape!r}; {fix}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise WeightsError(f"{where} has invalid data_offsets {offsets!r}; {fix}")
        numel = 1
        for s in shape:
            numel *= s
        if offsets[1] - offsets[0] != numel * DTYPE_SIZES[dtype]:
            raise WeightsError(
                f"{where}: shape {shape} of {dtype} needs {numel * DTYPE_SIZES[dtype]} bytes, its data_offsets span "
                f"{offsets[1] - offsets[0]}; {fix}"
            )
        tensors[name] = TensorHeader(name, dtype, tuple(shape), path, (8 + header_size + offsets[0], 8 + header_size + offsets[1]))
        ranges.append((offsets[0], offsets[1], name))
    data_size = size - 8 - header_size
    end = 0
    for begin, stop, name in sorted(ranges):
        if begin != end:
            raise WeightsError(f"{path}: tensor {name!r} starts at byte {begin} of the data, expected {end} (overlap or gap); {fix}")
        end = stop
    if end != data_size:
        state = "truncated" if end > data_size else "longer than its header describes"
        raise WeightsError(f"{path} is {state}: the header describes {end} bytes of tensor data, the file holds {data_size}; {fix}")
    return tensors, metadata


def _refuse_pickles(directory: Path) -> None:
    found = sorted({p.name for pattern in PICKLE_PATTERNS for p in directory.glob(pattern)})
    if found:
        raise WeightsError(
            f"{directory} holds {', '.join(found)} (PyTorch pickle weights) and no safetensors; fourd_hub never loads pickles. "
            "Convert them once where you trust the file: `python -c \"import torch, safetensors.torch as st; "
            f"st.save_file(torch.load('{directory / found[0]}', weights_only=True), '{directory / SAFETENSORS_NAME}')\"`, "
            "or re-save the model with save_pretrained(), which writes safetensors"
        )
    raise WeightsError(f"{directory} has no {SAFETENSORS_NAME} or {SAFETENSORS_INDEX_NAME}: no weights to load; re-download or re-convert the model")


def _read_index(directory: Path) -> list[str]:
    path = _checked_file(directory, SAFETENSORS_INDEX_NAME, "the directory")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsError(f"{path} is not valid JSON ({err}); re-download or re-convert the model") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map or not all(isinstance(v, str) for v in weight_map.values()):
        raise WeightsError(f"{path} must hold a non-empty weight_map of tensor name -> shard file; re-download or re-convert the model")
    return list(weight_map.items())


def find_weights(directory: str | os.PathLike) -> WeightFiles:
    """The checked safetensors weights of a model directory (see the module docstring).

    Raises:
        WeightsError: no safetensors (pickles named, with how to convert them), both a single file
            and an index, a file outside the directory, a malformed index or header, a tensor in
            two files, an index that disagrees with its shards.
    """
    directory = Path(directory)
    has_single = os.path.lexists(directory / SAFETENSORS_NAME)
    has_index = os.path.lexists(directory / SAFETENSORS_INDEX_NAME)
    if has_single and has_index:
        raise WeightsError(
            f"{directory} holds both {SAFETENSORS_NAME} and {SAFETENSORS_INDEX_NAME}; one of them is stale: "
            "remove it (or re-convert into an empty directory)"
        )
    if not (has_single or has_index):
        _refuse_pickles(directory)
    if has_single:
        files = [_checked_file(directory, SAFETENSORS_NAME, "the directory")]
        expected: dict[str, Path] | None = None
    else:
        entries = _read_index(directory)
        shard_names = list(dict.fromkeys(name for _, name in entries))
        files = [_checked_file(directory, name, SAFETENSORS_INDEX_NAME) for name in shard_names]
        by_name = dict(zip(shard_names, files))
        expected = {tensor: by_name[name] for tensor, name in entries}
    tensors: dict[str, TensorHeader] = {}
    checksums: dict[Path, str] = {}
    for file in files:
        found, metadata = read_safetensors_header(file)
        for name, header in found.items():
            if name in tensors:
                raise WeightsError(f"{directory}: tensor {name!r} is in both {tensors[name].file.name} and {file.name}; re-convert the model")
            tensors[name] = header
        if CHECKSUM_METADATA_KEY in metadata:
            checksums[file] = metadata[CHECKSUM_METADATA_KEY]
    if expected is not None:
        wrong = sorted(name for name, file in expected.items() if name not in tensors or tensors[name].file != file)
        unlisted = sorted(set(tensors) - set(expected))
        if wrong or unlisted:
            names = ", ".join((wrong + unlisted)[:4])
            raise WeightsError(
                f"{directory / SAFETENSORS_INDEX_NAME} does not match its shards ({names}); re-download or re-convert the model"
            )
    return WeightFiles(directory, tuple(files), tensors, checksums)


def _data_sha256(path: Path, chunk: int = 16 * 2**20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        handle.seek(8 + header_size)
        while block := handle.read(chunk):
            digest.update(block)  # hashlib releases the GIL: shards hash in parallel threads
    return digest.hexdigest()


def _verification_enabled() -> bool:
    return os.environ.get("FOURD_HUB_VERIFY_WEIGHTS", "1").strip().lower() not in ("0", "false", "no", "off")


def _corrupted(file: Path, digest: str, recorded: str) -> WeightsError:
    return WeightsError(
        f"{file} is corrupted: the sha256 of its tensor data is {digest}, the converter recorded "
        f"{recorded}; re-download or re-convert the model"
    )


def _read_into(handle, offset: int, target: memoryview, path: Path) -> None:
    """Fill ``target`` with the file's bytes from ``offset`` (plain reads: ``readinto`` until full)."""
    handle.seek(offset)
    filled = 0
    while filled < len(target):
        count = handle.readinto(target[filled:])
        if not count:
            raise WeightsError(
                f"{path} ended at byte {offset + filled} while reading its tensor data (it was truncated or "
                "replaced while loading); re-download or re-convert the model"
            )
        filled += count


def read_tensor_bytes(header: TensorHeader, target: memoryview) -> None:
    """Read one tensor's ``header.nbytes`` raw bytes into ``target`` (plain reads; no checksum: see :func:`read_tensor_data`).

    Raises:
        WeightsError: the file cannot be read or ends early.
    """
    if len(target) != header.nbytes:
        raise ValueError(f"{header.name} holds {header.nbytes} bytes, the target has room for {len(target)}")
    try:
        with open(header.file, "rb", buffering=0) as handle:
            _read_into(handle, header.offsets[0], target, header.file)
    except OSError as error:
        raise WeightsError(f"cannot read {header.file}: {error}; re-download or re-convert the model") from None


def _read_file(
    path: Path,
    headers: list[TensorHeader],
    consume: Callable[[TensorHeader, memoryview], None],
    into: Callable[[TensorHeader], memoryview | None] | None,
    wanted: Callable[[TensorHeader], bool] | None,
    recorded: str | None,
) -> None:
    """Read one file's tensors in offset order; hash them in a second thread while the next one is read."""
    digest = hashlib.sha256() if recorded is not None else None
    hasher = ThreadPoolExecutor(max_workers=1) if digest is not None else None  # FIFO: the data's order
    # Two scratch buffers, alternating: one is read into (and cast from) while the other is hashed.
    scratch: list[bytearray | None] = [None, None]
    hashing: list[Future | None] = [None, None]  # the pending hash of what each scratch buffer holds
    turn = 0
    try:
        with open(path, "rb", buffering=0) as handle:
            for header in sorted(headers, key=lambda h: h.offsets[0]):
                needed = wanted is None or wanted(header)
                if not needed and digest is None:
                    continue  # nothing to hash, nobody to give it to: not read at all
                target = into(header) if needed and into is not None else None
                slot = None
                if target is None:
                    slot, turn = turn, 1 - turn
                    if hashing[slot] is not None:
                        hashing[slot].result()  # its previous content is hashed: it may be overwritten
                    if scratch[slot] is None or len(scratch[slot]) < header.nbytes:
                        scratch[slot] = None  # drop the smaller one first
                        scratch[slot] = bytearray(header.nbytes)  # grown to the largest tensor read through it
                    target = memoryview(scratch[slot])[: header.nbytes]
                elif len(target) != header.nbytes:
                    raise ValueError(f"into() gave {len(target)} bytes for {header.name}, which holds {header.nbytes}")
                _read_into(handle, header.offsets[0], target, path)
                if hasher is not None:
                    # Tensors tile the data (checked): hashed in offset order, this is the data's sha256.
                    future = hasher.submit(digest.update, target)
                    if slot is not None:
                        hashing[slot] = future
                if needed:
                    consume(header, target)  # reads target while it is hashed: both only read it
    except OSError as error:
        raise WeightsError(f"cannot read {path}: {error}; re-download or re-convert the model") from None
    finally:
        if hasher is not None:
            hasher.shutdown(wait=True)
    if digest is not None and digest.hexdigest() != recorded:
        raise _corrupted(path, digest.hexdigest(), recorded)


def read_tensor_data(
    weights: WeightFiles,
    consume: Callable[[TensorHeader, memoryview], None],
    *,
    into: Callable[[TensorHeader], memoryview | None] | None = None,
    wanted: Callable[[TensorHeader], bool] | None = None,
    max_workers: int | None = None,
) -> None:
    """Read every tensor's bytes once, with plain reads in file order, verifying each file's recorded sha256 on the way.

    Nothing is memory-mapped: what stays in memory is what ``consume`` keeps, plus two scratch
    buffers per file, as large as its largest tensor read through them (one is read into while
    the other is hashed, in a second thread). Shards are read in parallel threads (file reads,
    hashing and torch casts release the GIL), so ``consume`` and ``into`` may be called from
    several threads at once, each file's tensors in order.

    Args:
        weights: the checked files (:func:`find_weights`).
        consume: ``consume(header, data)`` with the tensor's raw little-endian bytes (``header.nbytes``
            of them), while they are being hashed: read them, never write them. A view of a
            scratch buffer is only valid during the call (copy or cast what you keep).
        into: ``into(header)`` may return a writable byte view of exactly ``header.nbytes`` (the
            storage of the tensor that will keep them) to read into directly, or None for the
            scratch buffer.
        wanted: the tensors to give to ``consume`` (default all); the others are read only to be
            hashed (not at all when verification is off).
        max_workers: threads (default: one per file, at most one per CPU).

    Raises:
        WeightsError: a file whose data differs from its recorded sha256 (raised after its last
            tensor was consumed: discard what ``consume`` kept), a file that cannot be read or
            ends early. Set ``FOURD_HUB_VERIFY_WEIGHTS=0`` to skip the hashing (see
            :func:`verify_checksums`).
    """
    verify = _verification_enabled()
    by_file: dict[Path, list[TensorHeader]] = {file: [] for file in weights.files}
    for header in weights.tensors.values():
        by_file[header.file].append(header)
    jobs = [
        (file, headers, consume, into, wanted, weights.checksums.get(file) if verify else None)
        for file, headers in by_file.items()
        if headers
    ]
    if len(jobs) <= 1 or max_workers == 1:
        for job in jobs:
            _read_file(*job)
        return
    workers = max_workers or min(len(jobs), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(_read_file, *job) for job in jobs]:
            future.result()


def verify_checksums(weights: WeightFiles, max_workers: int | None = None) -> None:
    """Check the tensor data of every file whose header records its sha256 (shards in parallel threads).

    Set ``FOURD_HUB_VERIFY_WEIGHTS=0`` to skip (for example on a trusted read-only mirror of
    very large checkpoints: hashing reads the files once more, about 1.8 GB/s per core).

    Raises:
        WeightsError: a file's data differs from what was written (a corrupted byte).
    """
    if not _verification_enabled():
        return
    files = list(weights.checksums)
    if not files:
        return
    workers = max_workers or min(len(files), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        digests = list(pool.map(_data_sha256, files))
    for file, digest in zip(files, digests):
        if digest != weights.checksums[file]:
            raise _corrupted(file, digest, weights.checksums[file])

