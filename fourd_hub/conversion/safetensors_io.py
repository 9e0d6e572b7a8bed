"""Streaming writer for (sharded) safetensors checkpoints.

``safetensors.torch.save_file`` needs every tensor of a file in memory at once. Converting a
14 GB checkpoint on a 24 GB machine needs better: the safetensors header only holds names,
dtypes, shapes and byte offsets, all known before any data is read, so we write the header first
and then stream each tensor's bytes as it is produced. Peak memory is one tensor (plus its
source array), whatever the checkpoint size.

The layout is the one transformers writes and reads: ``model.safetensors``, or
``model-0000i-of-0000n.safetensors`` shards plus ``model.safetensors.index.json``. Each file's
header metadata also records the sha256 of its tensor data (``fourd_hub.sha256``, hashed as the
bytes are written, patched into the header at the end), which loading verifies
(:func:`fourd_hub.weight_files.verify_checksums`).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..weight_files import CHECKSUM_METADATA_KEY, torch_dtype

#: The dtypes a conversion writes -> their safetensors codes (the package's one table, read back).
SAFETENSORS_DTYPES = {torch_dtype(code): code for code in ("F32", "F16", "BF16", "F64")}


@dataclass(frozen=True)
class TensorPlan:
    """A tensor to be written: its name, final shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        numel = 1
        for size in self.shape:
            numel *= size
        return numel * torch.empty((), dtype=self.dtype).element_size()


def plan_shards(tensors: list[TensorPlan], max_shard_bytes: int) -> list[list[TensorPlan]]:
    """Split tensors, in order, into shards of at most ``max_shard_bytes`` (a larger tensor gets its own)."""
    shards: list[list[TensorPlan]] = [[]]
    size = 0
    for tensor in tensors:
        if shards[-1] and size + tensor.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(tensor)
        size += tensor.nbytes
    return shards


def shard_file_names(num_shards: int) -> list[str]:
    if num_shards == 1:
        return ["model.safetensors"]
    return [f"model-{i + 1:05d}-of-{num_shards:05d}.safetensors" for i in range(num_shards)]


def _header(shard: list[TensorPlan], metadata: dict[str, str]) -> bytes:
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for tensor in shard:
        header[tensor.name] = {
            "dtype": SAFETENSORS_DTYPES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + tensor.nbytes],
        }
        offset += tensor.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the format pads the header to 8-byte alignment
    return struct.pack("<Q", len(encoded)) + encoded


def write_sharded_safetensors(
    directory: Path,
    tensors: list[TensorPlan],
    produce: Callable[[TensorPlan], torch.Tensor],
    max_shard_bytes: int,
    on_tensor: Callable[[TensorPlan], None] | None = None,
) -> list[str]:
    """Write ``tensors`` into ``directory``, calling ``produce(plan)`` for each tensor's data in turn.

    ``produce`` must return a CPU tensor of exactly the planned shape and dtype; it is written and
    dropped before the next one is produced. Returns the file names written.
    """
    shards = plan_shards(tensors, max_shard_bytes)
    names = shard_file_names(len(shards))
    placeholder = "0" * 64
    for name, shard in zip(names, shards):
        with open(directory / name, "wb") as handle:
            header = _header(shard, {"format": "pt", CHECKSUM_METADATA_KEY: placeholder})
            handle.write(header)
            digest = hashlib.sha256()
            for plan in shard:
                tensor = produce(plan)
                if tuple(tensor.shape) != plan.shape or tensor.dtype != plan.dtype:
                    raise RuntimeError(
                        f"internal error: {plan.name} was planned as {plan.shape} {plan.dtype}, "
                        f"produced {tuple(tensor.shape)} {tensor.dtype}"
                    )
                data = tensor.contiguous()
                # bfloat16 has no numpy dtype: write its raw 16-bit words.
                raw = data.view(torch.int16) if data.dtype == torch.bfloat16 else data
                block = memoryview(raw.numpy()).cast("B")
                handle.write(block)
                digest.update(block)
                if on_tensor is not None:
                    on_tensor(plan)
                del tensor, data, raw, block
            # The digest is known only now: overwrite the placeholder (same length) in the header.
            handle.seek(header.index(placeholder.encode()))
            handle.write(digest.hexdigest().encode())
    if len(shards) > 1:
        index = {
            "metadata": {"total_size": sum(t.nbytes for t in tensors)},
            "weight_map": {t.name: name for name, shard in zip(names, shards) for t in shard},
        }
        (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return names
