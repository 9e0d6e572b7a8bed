"""``convert_checkpoint``: an original ``.npz`` in, a ``save_pretrained`` directory out.

The whole conversion is planned and checked from the file's array headers before any data is
read: layout detection, config inference (shapes first, then a catalog preset or an explicit
config, conflicts refused), key mapping (every original key used) and shape checking against the
model built on the meta device (every parameter filled, shapes equal). Then arrays are streamed
one at a time into sharded safetensors inside a temporary directory next to the output, which is
renamed into place only when everything (weights, ``config.json``, model card) is written and
verified: an interrupted conversion leaves no partial output.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import __version__
from .._files import replacing_dir
from ..catalog import CatalogEntry, entry_for_file, get_entry
from ..fourds import FOURDS_SIZES, FourDSConfig
from ..model_card import ConversionProvenance, render_custom_model_card, render_model_card
from ..moog import MOOG_PRESETS, MooGConfig
from . import fourds as fourds_conversion
from . import heads as head_conversion
from . import moog as moog_conversion
from .core import ConversionError, MappedTensor, check_mapping, convert_arrays, map_checkpoint
from .npz import NpzCheckpoint
from .safetensors_io import TensorPlan, iter_safetensors, write_sharded_safetensors

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class ConversionPlan:
    """Everything decided before any data is read."""

    source: Path
    layout_description: str
    config: Any
    model_class: type
    mapped: list[MappedTensor]
    entry: CatalogEntry | None
    num_parameters: int


@dataclass
class ConversionResult:
    """What a conversion wrote."""

    output_dir: Path
    model_class: str
    layout: str
    num_parameters: int
    files: list[str] = field(default_factory=list)
    source_sha256: str | None = None


def parse_size(size: int | str) -> int:
    """``"2GB"``, ``"500MB"``, ``"1.5GiB"`` or an int -> bytes."""
    if isinstance(size, int):
        return size
    text = size.strip().upper().replace(" ", "")
    units = {"GIB": 2**30, "MIB": 2**20, "KIB": 2**10, "GB": 10**9, "MB": 10**6, "KB": 10**3, "B": 1}
    for unit, factor in units.items():
        if text.endswith(unit):
            try:
                return int(float(text[: -len(unit)]) * factor)
            except ValueError:
                break
    raise ValueError(f"cannot read size {size!r}; use e.g. '2GB', '500MB' or a number of bytes")


def _family(shapes: dict[str, tuple[int, ...]], entry: CatalogEntry | None, preset: str | None, config: Any) -> str:
    """``"head"`` (a readout on its own), ``"moog"`` or ``"fourds"``: the file decides, then the hints."""
    if head_conversion.is_head_only(shapes):
        return "head"
    if fourds_conversion.looks_like_moog(shapes):
        return "moog"
    if isinstance(config, MooGConfig) or (entry is not None and entry.family == "moog") or preset in MOOG_PRESETS:
        return "moog"
    return "fourds"


def _base_config(family: str, entry: CatalogEntry | None, preset: str | None, config: Any) -> tuple[Any, str]:
    """The config the file is checked against: explicit config, else preset, else catalog entry."""
    config_class = MooGConfig if family == "moog" else FourDSConfig
    if config is not None:
        if isinstance(config, dict):
            config = config_class(**config)
        if family == "head":
            if not isinstance(config, (FourDSConfig, MooGConfig)):
                raise TypeError(f"config must be a FourDSConfig or MooGConfig, got {type(config).__name__}")
            return config, "the given config"
        if not isinstance(config, config_class):
            raise ConversionError(
                f"the file is a {'MooG' if family == 'moog' else '4DS'} checkpoint but the config is a {type(config).__name__}"
            )
        return config, "the given config"
    if preset is not None:
        if family == "moog":
            return MooGConfig.from_preset(preset), f"preset {preset!r}"
        if preset not in FOURDS_SIZES:
            raise ConversionError(
                f"unknown 4DS size {preset!r}; 4DS sizes: {', '.join(FOURDS_SIZES)}; MooG presets: {', '.join(MOOG_PRESETS)}"
            )
        return FourDSConfig.from_preset(preset), f"preset {preset!r}"
    if entry is not None:
        if entry.family == "moog":
            return MooGConfig.from_preset(entry.preset, **entry.config_overrides), f"catalog entry {entry.name!r}"
        return FourDSConfig.from_preset(entry.preset, **entry.config_overrides), f"catalog entry {entry.name!r}"
    return None, "no config"


def _plan_from_shapes(
    shapes: dict[str, tuple[int, ...]], entry: CatalogEntry | None, preset: str | None, config: Any
) -> tuple[str, Any, type, list[MappedTensor]]:
    """Layout, config, model class and key mapping from array shapes alone, strictly checked."""
    family = _family(shapes, entry, preset, config)
    base, what = _base_config(family, entry, preset, config)
    if family == "head":
        layout = head_conversion.detect_layout(shapes)
        readout = (base.readout if base is not None else None) or {}
        model_family = entry.family if entry is not None else ("moog" if isinstance(base, MooGConfig) else None)
        model_config = head_conversion.resolve_config(shapes, layout, readout, model_family)
        model_class = head_conversion.ReadoutHeadModel
    elif family == "moog":
        layout = moog_conversion.detect_layout(shapes)
        model_config, model_class = moog_conversion.resolve_config(shapes, layout, base, what)
    else:
        bases = ((base.readout or {}).get("query_fourier_bases", 16)) if base is not None else 16
        layout = fourds_conversion.detect_layout(shapes, query_fourier_bases=bases)
        model_config, model_class = fourds_conversion.resolve_config(shapes, layout, base, what)
    mapped = map_checkpoint(shapes, layout.sections)
    with torch.device("meta"):
        model = model_class(model_config)
    check_mapping(mapped, {name: tuple(t.shape) for name, t in model.state_dict().items()})
    return layout.description, model_config, model_class, mapped


def plan_conversion(
    source: str | os.PathLike, name: str | None = None, preset: str | None = None, config: Any = None
) -> ConversionPlan:
    """Open ``source`` and plan its conversion (no data read). See :func:`convert_checkpoint`."""
    source = Path(source)
    entry = get_entry(name) if name is not None else entry_for_file(source.name)
    with NpzCheckpoint(source) as checkpoint:
        shapes = checkpoint.shapes()
    description, model_config, model_class, mapped = _plan_from_shapes(shapes, entry, preset, config)
    return ConversionPlan(
        source=source,
        layout_description=description,
        config=model_config,
        model_class=model_class,
        mapped=mapped,
        entry=entry,
        num_parameters=sum(int(np.prod(m.shape)) for m in mapped),
    )


def convert_state_dict(
    params: dict[str, np.ndarray], preset: str | None = None, config: Any = None
) -> tuple[dict[str, torch.Tensor], Any, type]:
    """Pure in-memory conversion: ``{original key: array}`` -> (state_dict, config, model class).

    For small checkpoints and tests; :func:`convert_checkpoint` streams large files instead.
    """
    shapes = {k: tuple(np.shape(v)) for k, v in params.items()}
    _, model_config, model_class, mapped = _plan_from_shapes(shapes, None, preset, config)
    arrays = convert_arrays(params, mapped)
    return {k: torch.from_numpy(v.astype(np.float32, copy=False)) for k, v in arrays.items()}, model_config, model_class


def sha256_of(path: Path, chunk: int = 16 * 2**20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def convert_checkpoint(
    source: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    name: str | None = None,
    preset: str | None = None,
    config: Any = None,
    dtype: str | torch.dtype = "float32",
    max_shard_size: int | str = "2GB",
    overwrite: bool = False,
    verify: bool | str = "auto",
    compute_sha256: bool = True,
    source_sha256: str | None = None,
    progress: bool = True,
) -> ConversionResult:
    """Convert an original representations4d ``.npz`` into a Hugging Face model directory.

    Args:
        source: the original ``.npz`` file.
        output_dir: directory to create (``config.json``, safetensors, ``README.md``).
        name: catalog name (e.g. ``"4ds-b-dist-e-scannet-depth"``); defaults to the entry whose
            original file has ``source``'s name, if any.
        preset: a 4DS size (``"B"``, ``"e"``, ...) to check the file against instead.
        config: an explicit :class:`FourDSConfig` (or dict) instead; fields the tensor shapes
            determine are taken from the file and must not contradict it.
        dtype: ``"float32"`` (as released), ``"bfloat16"`` or ``"float16"``.
        max_shard_size: safetensors shard size (transformers' convention).
        overwrite: replace an existing ``output_dir``.
        verify: re-read every written tensor and compare with the source (``"auto"``: for
            checkpoints under 4 GB).
        compute_sha256: record the source file's sha256 in the model card.
        source_sha256: the source's sha256 when the caller already knows it (a download computed
            it while streaming): recorded as is instead of hashing the file again.
        progress: show progress bars.
    """
    output_dir = Path(output_dir)
    torch_dtype = _DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype
    if torch_dtype not in _DTYPES.values():
        raise ValueError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}")
    if output_dir.exists() and not overwrite:
        raise FileExistsError(f"{output_dir} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    max_shard_bytes = parse_size(max_shard_size)
    plan = plan_conversion(source, name=name, preset=preset, config=config)
    if progress:
        tqdm.write(f"Converting {plan.source.name}: {plan.layout_description} -> {plan.model_class.__name__}")

    with replacing_dir(output_dir) as staging:
        files = _write_weights(plan, staging, torch_dtype, max_shard_bytes, progress)
        plan.config.architectures = [plan.model_class.__name__]
        plan.config.dtype = torch_dtype
        plan.config.save_pretrained(staging)
        if getattr(plan.config, "model_type", None) in ("fourds", "moog"):
            # The checkpoint carries its preprocessing (video_preprocessor_config.json) for the pipelines.
            from ..processing import video_processor_for_config

            video_processor_for_config(plan.config).save_pretrained(staging)
        digest = source_sha256 or (sha256_of(plan.source) if compute_sha256 else None)
        _write_model_card(staging, plan, digest, torch_dtype)
        should_verify = verify if isinstance(verify, bool) else plan.source.stat().st_size < 4 * 10**9
        if should_verify:
            verify_conversion(staging, plan, torch_dtype, progress)
    return ConversionResult(
        output_dir=output_dir,
        model_class=plan.model_class.__name__,
        layout=plan.layout_description,
        num_parameters=plan.num_parameters,
        files=files,
        source_sha256=digest,
    )


def _write_weights(plan: ConversionPlan, directory: Path, dtype: torch.dtype, max_shard_bytes: int, progress: bool) -> list[str]:
    by_target = {m.target: m for m in plan.mapped}
    tensors = [TensorPlan(m.target, m.shape, dtype) for m in plan.mapped]
    bar = tqdm(total=sum(t.nbytes for t in tensors), unit="B", unit_scale=True, desc="writing", disable=not progress)
    with NpzCheckpoint(plan.source) as checkpoint:

        def produce(tensor: TensorPlan) -> torch.Tensor:
            mapped = by_target[tensor.name]
            array = checkpoint.load(mapped.source)
            if not np.issubdtype(array.dtype, np.floating):
                raise ConversionError(f"original array {mapped.source!r} has dtype {array.dtype}; expected floats")
            if not np.isfinite(array).all():
                raise ConversionError(f"original array {mapped.source!r} contains NaN or infinite values")
            return torch.from_numpy(mapped.convert(array)).to(dtype)

        try:
            files = write_sharded_safetensors(directory, tensors, produce, max_shard_bytes, lambda t: bar.update(t.nbytes))
        finally:
            bar.close()
    return files


def verify_conversion(directory: Path, plan: ConversionPlan, dtype: torch.dtype, progress: bool = True) -> None:
    """Re-read every written tensor (one at a time) and compare it with the converted source array."""
    by_target = {m.target: m for m in plan.mapped}
    seen: set[str] = set()
    files = sorted(directory.glob("*.safetensors"))
    with NpzCheckpoint(plan.source) as checkpoint, tqdm(total=len(by_target), desc="verifying", disable=not progress) as bar:
        for file in files:
            for name, written in iter_safetensors(file):
                mapped = by_target.get(name)
                if mapped is None or name in seen:
                    raise ConversionError(f"verification failed: unexpected tensor {name!r} in {file.name}")
                expected = torch.from_numpy(mapped.convert(checkpoint.load(mapped.source))).to(dtype)
                if written.shape != expected.shape or not torch.equal(written, expected):
                    raise ConversionError(f"verification failed: {name} differs from {mapped.source} after writing")
                seen.add(name)
                bar.update(1)
    missing = sorted(set(by_target) - seen)
    if missing:
        raise ConversionError(f"verification failed: {len(missing)} tensor(s) were not written: {', '.join(missing[:8])}")


def _write_model_card(directory: Path, plan: ConversionPlan, digest: str | None, dtype: torch.dtype) -> None:
    """The model card (README.md): the catalog entry's card, else a custom one, with the provenance."""
    entry = plan.entry
    provenance = ConversionProvenance(
        original_file=plan.source.name,
        original_url=entry.original_url if entry is not None else None,
        original_sha256=digest,
        layout=plan.layout_description,
        model_class=plan.model_class.__name__,
        num_parameters=plan.num_parameters,
        dtype=str(dtype).replace("torch.", ""),
        fourd_hub_version=__version__,
    )
    if entry is not None:
        text = render_model_card(entry, provenance)
    else:
        architecture = plan.model_class.__name__
        if isinstance(plan.config, head_conversion.ReadoutHeadConfig):
            # A head on its own is used through the task model it attaches to (from_backbone).
            architecture = {"points": "MooGForPointTracking", "boxes": "MooGForBoxTracking"}[plan.config.readout["task"]]
        text = render_custom_model_card(plan.config, architecture=architecture, provenance=provenance)
    (directory / "README.md").write_text(text, encoding="utf-8")
