"""``convert_checkpoint``: an original ``.npz`` in, a ``save_pretrained`` directory out.

The whole conversion is planned and checked from the file's array headers before any data is
read: layout detection, config inference (shapes first, then a catalog entry, a preset or a
config, conflicts refused; a partial config claims only the fields it names, and what nothing
gives is reported as an :class:`~.core.Assumption`), key mapping (every original key used) and
shape checking against the model built on the meta device (every parameter filled, shapes equal). Then arrays are streamed
one at a time into sharded safetensors inside a temporary directory next to the output, which is
renamed into place only when everything (weights, ``config.json``, the processor config and what the
caller's ``on_staged`` adds, e.g. the model card) is written and verified: an interrupted conversion
leaves no partial output. The converter renders no card: it returns the provenance.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .._files import replacing_dir, sha256_of
from .._version import __version__
from ..catalog import CatalogEntry, entry_for_file, get_entry
from ..processing import video_processor_for_config
from ..provenance import ConversionProvenance
from ..registry import FamilySpec, families, family_of, get_family
from ..weight_files import TensorHeader, WeightsError, find_weights, read_tensor_data
from . import heads
from .core import (
    Assumption,
    ConversionError,
    MappedTensor,
    build_config,
    check_claimed_fields,
    check_mapping,
    check_no_empty_arrays,
    convert_arrays,
    map_checkpoint,
    merge_claims,
)
from .npz import NpzCheckpoint
from .safetensors_io import TensorPlan, write_sharded_safetensors

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class ConversionPlan:
    """Everything decided before any data is read.

    Attributes:
        source: the original file.
        layout_description: the key layout found (one line).
        config: the converted model's config.
        model_class: the class the weights load into.
        mapped: how each parameter is produced from an original array.
        entry: the catalog entry converted, if any.
        num_parameters: parameters to write.
        assumptions: config values no tensor holds and no hint gave (the family's defaults).
    """

    source: Path
    layout_description: str
    config: Any
    model_class: type
    mapped: list[MappedTensor]
    entry: CatalogEntry | None
    num_parameters: int
    assumptions: list[Assumption] = field(default_factory=list)


@dataclass
class ConversionResult:
    """What a conversion wrote, and where it came from (model cards are rendered from this).

    Attributes:
        output_dir: the converted directory.
        model_class: the class name the weights load into.
        layout: the key layout the converter found.
        num_parameters: parameters written.
        files: the safetensors files written.
        source_sha256: the original file's sha256, if computed.
        provenance: the machine-readable record a model card carries.
        config: the converted model's config.
        entry: the catalog entry converted, if any.
        assumptions: the config values that no tensor of the file holds and no catalog entry,
            preset or config gave: the family's defaults, assumed (``str()`` of each is the line
            ``fourd-hub convert`` prints after ``assumed:``). Empty for catalog files and full configs.
    """

    output_dir: Path
    model_class: str
    layout: str
    num_parameters: int
    files: list[str] = field(default_factory=list)
    source_sha256: str | None = None
    provenance: ConversionProvenance | None = None
    config: Any = None
    entry: CatalogEntry | None = None
    assumptions: list[Assumption] = field(default_factory=list)


_SIZE_UNITS = {"GIB": 2**30, "MIB": 2**20, "KIB": 2**10, "GB": 10**9, "MB": 10**6, "KB": 10**3, "B": 1}
# Digits with an optional fraction, then an optional unit: no sign, exponent, "inf" or "nan".
_SIZE_PATTERN = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(" + "|".join(_SIZE_UNITS) + r")?")
SIZE_FORMS = (
    "a positive number of bytes (1000000) or a number with a unit: B, KB, MB, GB (powers of 1000) or "
    "KiB, MiB, GiB (powers of 1024), e.g. '2GB', '500MB', '1.5GiB'"
)


def parse_size(size: int | str) -> int:
    """A shard size in bytes from ``"2GB"``, ``"500MB"``, ``"1.5GiB"``, ``"1000000"`` or an int.

    Args:
        size: a positive int (bytes), or a string: digits (bytes) or a number followed by one of
            B, KB, MB, GB (powers of 1000), KiB, MiB, GiB (powers of 1024); case and spaces ignored.

    Returns:
        The size in bytes, at least 1.

    Raises:
        ValueError: zero, negative, infinite, NaN, fractional byte counts below 1 or unreadable
            text; the message lists the accepted forms.
    """
    if isinstance(size, bool) or not isinstance(size, (int, str)) and not hasattr(size, "__index__"):
        raise ValueError(f"cannot read size {size!r} ({type(size).__name__}); use {SIZE_FORMS}")
    if not isinstance(size, str):
        value = int(size.__index__())
        if value < 1:
            raise ValueError(f"size must be positive, got {value}; use {SIZE_FORMS}")
        return value
    text = size.strip().upper().replace(" ", "")
    match = _SIZE_PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(f"cannot read size {size!r}; use {SIZE_FORMS}")
    number, unit = match.groups()
    if unit is None and "." in number:
        raise ValueError(f"cannot read size {size!r}: a byte count is a whole number; use {SIZE_FORMS}")
    # Exact decimal arithmetic: "1.1GB" is 1100000000 bytes, not a float's approximation of it.
    value = int(Decimal(number) * _SIZE_UNITS[unit or "B"])
    if value < 1:
        raise ValueError(f"size {size!r} is {value} bytes; it must be at least 1 byte; use {SIZE_FORMS}")
    return value


def _hinted_family(entry: CatalogEntry | None, preset: str | None, config: Any) -> tuple[FamilySpec, str] | None:
    """(family, what says so) of the caller's hints (catalog entry, config, preset), if any; contradictions refused."""
    hinted: dict[str, str] = {}
    if entry is not None:
        hinted[entry.family] = f"catalog entry {entry.name!r} is a {get_family(entry.family).display_name} model"
    if config is not None and not isinstance(config, dict):
        try:
            hinted.setdefault(family_of(config).name, f"the config is a {type(config).__name__}")
        except KeyError:
            raise TypeError(f"config must be a fourd_hub config or a dict, got {type(config).__name__}") from None
    if isinstance(config, dict) and config.get("model_type") in {spec.name for spec in families()}:
        # A config.json of another model, say: its model_type names the family.
        named = get_family(config["model_type"])
        hinted.setdefault(named.name, f"the given config's model_type is {config['model_type']!r} ({named.display_name})")
    if preset is not None:
        owners = [spec for spec in families() if preset in spec.load("presets")]
        if not owners:
            known = "; ".join(f"{spec.display_name}: {', '.join(spec.load('presets'))}" for spec in families())
            raise ConversionError(f"unknown preset {preset!r}; presets: {known}")
        if len(owners) == 1:
            hinted.setdefault(owners[0].name, f"preset {preset!r} is a {owners[0].display_name} preset")
        # A name several families use (4DS and RVM both have S, B, L, H): the file decides.
    if len(hinted) > 1:
        raise ConversionError(f"the hints name different families: {'; '.join(hinted.values())}")
    return (get_family(next(iter(hinted))), next(iter(hinted.values()))) if hinted else None


def _detect_family(shapes: dict[str, tuple[int, ...]], hint: tuple[FamilySpec, str] | None) -> tuple[FamilySpec, bool]:
    """(family, head_only): each family's detector is asked; the file decides, never a default.

    Raises:
        ConversionError: several families recognise the file, the file contradicts the hints, or
            nothing recognises it and there is no hint (the message names each family's markers).
    """
    hinted, why = hint if hint is not None else (None, "")
    found = [spec for spec in families() if spec.load("converter").detect(shapes)]
    if len(found) > 1:
        raise ConversionError(
            f"the file looks like a checkpoint of several families ({', '.join(s.display_name for s in found)}); "
            "it cannot be converted unambiguously"
        )
    if found:
        if hinted is not None and hinted.name != found[0].name:
            raise ConversionError(f"the file is a {found[0].display_name} checkpoint but {why}")
        return found[0], False
    if heads.has_tracking_readout(shapes):  # no backbone was found: a head file
        candidates = [hinted] if hinted is not None else heads.head_families()
        if len(candidates) != 1 or not candidates[0].standalone_head_tasks:
            raise ConversionError(
                "the file holds a readout head without a backbone; say which backbone it belongs to with a catalog "
                "name (--name) or a config (--config)"
            )
        return candidates[0], True
    if hinted is not None:
        return hinted, False  # its own converter says what the file lacks
    reasons = "; ".join(f"not a {s.display_name} checkpoint ({_why_not(s, shapes)})" for s in families())
    head = heads.explain_missing_anchor(shapes)
    if head is not None:
        reasons += f"; not a standalone head: {head}"
    raise ConversionError(f"no model family recognises the file: {reasons}. First keys: {', '.join(list(shapes)[:5])}")


def _why_not(family: FamilySpec, shapes: dict[str, tuple[int, ...]]) -> str:
    """Why ``family``'s detector refuses the file: its ``explain(shapes)`` (naming a missing marker
    key) where the converter has one, else the markers it looks for."""
    converter = family.load("converter")
    explain = getattr(converter, "explain", None)
    return explain(shapes) if callable(explain) else f"no {converter.MARKERS}"


def _base_config(
    family: FamilySpec, entry: CatalogEntry | None, preset: str | None, config: Any
) -> tuple[Any, str, dict[str, Any] | None]:
    """(base, what, claims): what the file is checked against.

    ``base`` is a full config, every field of which is a claim: a config object, else the
    preset's or the catalog entry's (with a dict config's fields on top). A dict config alone is
    partial: ``base`` is ``None`` and ``claims`` the dict, whose fields alone are checked; the
    family's converter fills the rest from the shapes, then from its defaults (assumptions).
    """
    config_class = family.load("config_class")
    if config is not None and not isinstance(config, dict):
        if not isinstance(config, config_class):
            raise ConversionError(f"the file is a {family.display_name} checkpoint but the config is a {type(config).__name__}")
        return config, "the given config", None
    if config is not None:
        check_claimed_fields(config_class, config, "the given config")
    if preset is not None:
        base, what = config_class.from_preset(preset), f"preset {preset!r}"
    elif entry is not None:
        base, what = config_class.from_preset(entry.preset, **entry.config_overrides), f"catalog entry {entry.name!r}"
    else:
        return None, "the given config" if config is not None else "no config", dict(config or {})
    if config:  # the preset / entry with the given fields on top: still a claim as a whole
        values = {k: v for k, v in base.to_dict().items() if k in config_class.__dataclass_fields__}
        for key in ("architectures", "transformers_version", "model_type", "dtype"):
            values.pop(key, None)
        what = f"{what} with the given config"
        base = build_config(config_class, merge_claims(values, config), what)
    return base, what, None


@dataclass
class _Planned:
    """What :func:`_plan` decided from the shapes (the layout found, with its description)."""

    layout: Any
    config: Any
    model_class: type
    mapped: list[MappedTensor]
    assumptions: list[Assumption]


def _plan(shapes: dict[str, tuple[int, ...]], entry: CatalogEntry | None, preset: str | None, config: Any) -> _Planned:
    """Layout, config, model class, key mapping and assumptions from array shapes alone, strictly checked."""
    check_no_empty_arrays(shapes)
    family, head_only = _detect_family(shapes, _hinted_family(entry, preset, config))
    base, what, claims = _base_config(family, entry, preset, config)
    if head_only:
        layout = heads.detect_layout(shapes)
        named = config.get("backbone") if isinstance(config, dict) else getattr(config, "backbone", None)
        backbone = named or (entry.base_model if entry is not None else None)
        # The head's backbone width is checked against a config that states it (an object, or a dict naming it).
        strict = config is not None and (not isinstance(config, dict) or "hidden_size" in config)
        model_config, model_class = heads.resolve_config(shapes, layout, family, base, backbone, strict=strict, claims=claims)
    else:
        layout, model_config, model_class = family.load("converter").plan(shapes, base, what, claims=claims)
    mapped = map_checkpoint(shapes, layout.sections)
    with torch.device("meta"):
        model = model_class(model_config)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    if head_only:  # a standalone head fills its task model's head; the backbone comes from elsewhere
        expected = {name: shape for name, shape in expected.items() if name.startswith(heads.HEAD_PREFIX)}
    check_mapping(mapped, expected, layout.sections)
    assumptions = list(layout.assumptions)
    if assumptions and not claims:  # nothing was given: name the presets that would claim it all
        fitting = tuple(_fitting_presets(family, shapes))
        assumptions = [dataclasses.replace(a, presets=fitting) for a in assumptions]
    return _Planned(layout, model_config, model_class, mapped, assumptions)


def _fitting_presets(family: FamilySpec, shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """The family's presets the file matches as a whole (``--preset`` with one of them converts it)."""
    config_class, converter = family.load("config_class"), family.load("converter")
    fitting = []
    for name in family.load("presets"):
        try:
            converter.plan(shapes, config_class.from_preset(name), f"preset {name!r}")
        except ConversionError:
            continue
        fitting.append(name)
    return fitting


def _plan_from_shapes(
    shapes: dict[str, tuple[int, ...]], entry: CatalogEntry | None, preset: str | None, config: Any
) -> tuple[str, Any, type, list[MappedTensor]]:
    """Layout description, config, model class and key mapping from array shapes alone, strictly checked."""
    planned = _plan(shapes, entry, preset, config)
    return planned.layout.description, planned.config, planned.model_class, planned.mapped


def plan_conversion(
    source: str | os.PathLike, name: str | None = None, preset: str | None = None, config: Any = None
) -> ConversionPlan:
    """Open ``source`` and plan its conversion (no data read). See :func:`convert_checkpoint`.

    The plan's ``assumptions`` are known here already, before anything is written.
    """
    source = Path(source)
    entry = get_entry(name) if name is not None else entry_for_file(source.name)
    with NpzCheckpoint(source) as checkpoint:
        shapes = checkpoint.shapes()
    planned = _plan(shapes, entry, preset, config)
    return ConversionPlan(
        source=source,
        layout_description=planned.layout.description,
        config=planned.config,
        model_class=planned.model_class,
        mapped=planned.mapped,
        entry=entry,
        num_parameters=sum(int(np.prod(m.shape)) for m in planned.mapped),
        assumptions=planned.assumptions,
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
    on_staged: Callable[[Path, ConversionResult], None] | None = None,
) -> ConversionResult:
    """Convert an original representations4d ``.npz`` into a Hugging Face model directory.

    The directory holds the weights, ``config.json`` and the video processor config. The model card
    is not the converter's business: the result carries the provenance, and ``on_staged`` lets
    the caller add files (``fourd-hub convert`` and the hub write the card with
    :func:`fourd_hub.cards.write_conversion_card`) before the directory is put in place, atomically.

    Args:
        source: the original ``.npz`` file.
        output_dir: directory to create (``config.json``, safetensors, processor config, and what ``on_staged`` adds).
        name: catalog name (e.g. ``"4ds-b-dist-e-scannet-depth"``); defaults to the entry whose
            original file has ``source``'s name, if any.
        preset: a preset (a 4DS size ``"B"``, ``"e"``, ...; MooG ``"ego4d"``, ``"movi"``) to check
            the file against instead: a claim about every field, so any contradiction is refused.
        config: a config object (:class:`FourDSConfig`, :class:`MooGConfig`): a full claim like a
            preset. Or a dict (``--config``): a partial claim, only for the fields it names (a
            sub-config such as ``readout`` or ``decoder`` key by key); the shapes give the rest,
            and what neither gives comes from the family's defaults and is listed in the result's
            ``assumptions``. With a catalog entry or a preset, the dict's fields go on top of it.
            A field the shapes determine must match the file (refused naming it otherwise).
        dtype: ``"float32"`` (as released), ``"bfloat16"`` or ``"float16"``.
        max_shard_size: safetensors shard size (transformers' convention).
        overwrite: replace an existing ``output_dir``.
        verify: re-read every written tensor and compare with the source (``"auto"``: for
            checkpoints under 4 GB).
        compute_sha256: record the source file's sha256 in the model card.
        source_sha256: the source's sha256 when the caller already knows it (a download computed
            it while streaming): recorded as is instead of hashing the file again.
        progress: show progress bars.
        on_staged: called with (staging directory, result) once everything is written and
            verified, before the staging directory replaces ``output_dir``.

    Returns:
        The :class:`ConversionResult`; its ``assumptions`` are printed by ``fourd-hub convert``
        (``assumed: <assumption>``), not by this function.

    Raises:
        ConversionError: the file and the model, or the file and the hints, do not correspond
            (naming the arrays or fields); CheckpointError: an unreadable file.
    """
    output_dir = Path(output_dir)
    torch_dtype = _DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype
    if torch_dtype not in _DTYPES.values():
        raise ValueError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}")
    try:
        max_shard_bytes = parse_size(max_shard_size)
    except ValueError as err:
        raise ValueError(f"max_shard_size (CLI: --max-shard-size): {err}") from None
    check_output_dir(output_dir, overwrite)
    plan = plan_conversion(source, name=name, preset=preset, config=config)
    if progress:
        tqdm.write(f"Converting {plan.source.name}: {plan.layout_description} -> {plan.model_class.__name__}")

    with replacing_dir(output_dir) as staging:
        files = _write_weights(plan, staging, torch_dtype, max_shard_bytes, progress)
        plan.config.architectures = [plan.model_class.__name__]
        plan.config.dtype = torch_dtype
        plan.config.save_pretrained(staging)
        # The checkpoint carries its preprocessing (video_preprocessor_config.json) for the pipelines.
        video_processor_for_config(plan.config).save_pretrained(staging)
        digest = source_sha256 or (sha256_of(plan.source) if compute_sha256 else None)
        should_verify = verify if isinstance(verify, bool) else plan.source.stat().st_size < 4 * 10**9
        if should_verify:
            verify_conversion(staging, plan, torch_dtype, progress)
        result = ConversionResult(
            output_dir=output_dir,
            model_class=plan.model_class.__name__,
            layout=plan.layout_description,
            num_parameters=plan.num_parameters,
            files=files,
            source_sha256=digest,
            provenance=_provenance(plan, digest, torch_dtype),
            config=plan.config,
            entry=plan.entry,
            assumptions=list(plan.assumptions),
        )
        if on_staged is not None:
            on_staged(staging, result)
    return result


def check_output_dir(output_dir: Path, overwrite: bool) -> None:
    """Refuse, before the (possibly large) source is read, an output the conversion could not replace.

    Only an empty directory or a model directory (one with ``config.json``) is ever replaced
    (``overwrite``): one holding anything else is refused, so that a mistyped output never
    deletes unrelated files. A file at ``output_dir`` or a symbolic link
    (to a directory or not) is refused with the path even with ``overwrite``, since replacing the
    link would delete the link instead of writing into its target, and a file is not a
    conversion's output.

    Raises:
        FileExistsError: ``output_dir`` exists and ``overwrite`` is false, or it is a symbolic link.
        NotADirectoryError: ``output_dir`` is an existing file.
    """
    if output_dir.is_symlink():
        raise FileExistsError(
            f"refusing to write the converted model to {output_dir}: it is a symbolic link (to {os.readlink(output_dir)}); "
            "--overwrite replaces a directory, not a link; remove the link or pass the directory it points to"
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(
            f"cannot write the converted model to {output_dir}: it is an existing file, not a directory; "
            "remove it or choose another output directory"
        )
    if output_dir.exists() and not overwrite:
        raise FileExistsError(f"{output_dir} already exists; pass overwrite=True (CLI: --overwrite) to replace it")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not (output_dir / "config.json").is_file():
        # --overwrite deletes the old directory: only ever a model directory (say, an earlier
        # conversion), never one that holds something else (`fourd-hub convert x.npz ~ --overwrite`).
        names = sorted(p.name for p in output_dir.iterdir())
        raise FileExistsError(
            f"refusing to replace {output_dir}: it is not a model directory (no config.json; it holds "
            f"{', '.join(names[:4])}{' ...' if len(names) > 4 else ''}); --overwrite replaces only an empty directory or "
            "an earlier model; choose another output directory"
        )
    parent = output_dir.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # the directories up to the first existing one are created
    if not parent.is_dir():
        raise NotADirectoryError(f"cannot create {output_dir}: {parent} is a file, not a directory")


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
    """Re-read every written tensor and compare it with the converted source array; verify the files' sha256.

    The files are read by the loader's own reader (:func:`~fourd_hub.weight_files.read_tensor_data`:
    the directory's layout and headers checked as a load checks them, plain reads in file order,
    one tensor in memory at a time), so what is verified here is what loading will read.

    Raises:
        ConversionError: a tensor that differs from its source, an unexpected or missing one, or
            a file whose data does not match its recorded sha256.
    """
    by_target = {m.target: m for m in plan.mapped}
    seen: set[str] = set()
    with NpzCheckpoint(plan.source) as checkpoint, tqdm(total=len(by_target), desc="verifying", disable=not progress) as bar:

        def compare(header: TensorHeader, data: memoryview) -> None:
            mapped = by_target.get(header.name)
            if mapped is None or header.name in seen:
                raise ConversionError(f"verification failed: unexpected tensor {header.name!r} in {header.file.name}")
            expected = torch.from_numpy(mapped.convert(checkpoint.load(mapped.source))).to(dtype).contiguous()
            written = torch.frombuffer(data, dtype=torch.uint8) if len(data) else torch.empty(0, dtype=torch.uint8)
            if (
                header.torch_dtype != dtype
                or tuple(header.shape) != tuple(expected.shape)
                or not torch.equal(written, expected.reshape(-1).view(torch.uint8))
            ):
                raise ConversionError(f"verification failed: {header.name} differs from {mapped.source} after writing")
            seen.add(header.name)
            bar.update(1)

        try:
            # One file at a time (max_workers=1): the source archive is read from one thread.
            read_tensor_data(find_weights(directory), compare, max_workers=1)
        except WeightsError as error:
            raise ConversionError(f"verification failed: {error}") from None
    missing = sorted(set(by_target) - seen)
    if missing:
        raise ConversionError(f"verification failed: {len(missing)} tensor(s) were not written: {', '.join(missing[:8])}")


def _provenance(plan: ConversionPlan, digest: str | None, dtype: torch.dtype) -> ConversionProvenance:
    return ConversionProvenance(
        original_file=plan.source.name,
        original_url=plan.entry.original_url if plan.entry is not None else None,
        original_sha256=digest,
        layout=plan.layout_description,
        model_class=plan.model_class.__name__,
        num_parameters=plan.num_parameters,
        dtype=str(dtype).replace("torch.", ""),
        fourd_hub_version=__version__,
    )
