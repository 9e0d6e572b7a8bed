"""Model-agnostic conversion machinery: named tensor transforms, declarative key tables, strict checks.

A key table is a list of :class:`KeyRule` (original Flax path relative to a section root, with
``{i}`` for a layer index -> PyTorch parameter name, and the name of a transform). A
:class:`Section` applies a table to the keys under one prefix of the original file (for example
``params/layers_0/`` -> ``fourds.``). :func:`map_checkpoint` maps every original key and
refuses, naming them, keys that no rule matches; :func:`check_mapping` then compares with the
model's own parameter shapes and refuses missing or mis-shaped parameters. Nothing is silently
ignored (no ``strict=False`` anywhere).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .npz import CheckpointError


class ConversionError(CheckpointError):
    """The original checkpoint and the target model do not correspond."""


Shapes = Mapping[str, tuple[int, ...]]


def array_shape(shapes: Shapes, key: str, rank: int | tuple[int, ...] | None = None, *, what: str = "") -> tuple[int, ...]:
    """The shape of original array ``key``, checked: present, of the expected rank, no empty axis.

    Config inference reads every shape through this (or :func:`optional_shape`), so a file that
    lacks an array or stores it with another rank fails with a :class:`ConversionError` naming
    the array, instead of a ``KeyError`` or a "not enough values to unpack" from deep inside.

    Args:
        shapes: ``{original key: shape}`` of the file (its headers).
        key: the full original key.
        rank: the rank (or the ranks) the array must have; ``None``: any.
        what: what the array is, for the message (e.g. ``"the patch embedding (t, h, w, C, D)"``).

    Raises:
        ConversionError: the array is missing, has another rank, or has an axis of length 0.
    """
    about = f" ({what})" if what else ""
    shape = shapes.get(key)
    if shape is None:
        raise ConversionError(
            f"original array {key!r}{about} is missing from the checkpoint; the file is incomplete or not the "
            "architecture it looks like (re-download or re-export it)"
        )
    return _checked(key, tuple(int(s) for s in shape), rank, about)


def optional_shape(shapes: Shapes, key: str, rank: int | tuple[int, ...] | None = None, *, what: str = "") -> tuple[int, ...] | None:
    """:func:`array_shape` of an array the file may lack: ``None`` when absent, else checked the same way."""
    shape = shapes.get(key)
    if shape is None:
        return None
    return _checked(key, tuple(int(s) for s in shape), rank, f" ({what})" if what else "")


def _checked(key: str, shape: tuple[int, ...], rank: int | tuple[int, ...] | None, about: str) -> tuple[int, ...]:
    ranks = (rank,) if isinstance(rank, int) else rank
    if ranks is not None and len(shape) not in ranks:
        expected = " or ".join(str(r) for r in ranks)
        raise ConversionError(
            f"original array {key!r}{about} has shape {shape}, rank {len(shape)}, expected rank {expected}; "
            "the file is corrupt or not the architecture it looks like"
        )
    if 0 in shape:
        raise ConversionError(f"original array {key!r}{about} has shape {shape}: an empty axis; the file is corrupt")
    return shape


def check_numbered(found: set[int] | list[int], what: str, key_of: Callable[[int], str]) -> list[int]:
    """``found`` sorted, if it is 0..n-1; else a :class:`ConversionError` naming the arrays of the
    missing numbers (``key_of(i)``: an array every block ``i`` has), e.g. a deleted middle layer."""
    numbers = sorted(set(found))
    missing = [i for i in range(numbers[-1] + 1) if i not in set(numbers)] if numbers else []
    if missing:
        keys = ", ".join(repr(key_of(i)) for i in missing[:5])
        raise ConversionError(f"{what} must be numbered 0..n-1, found {numbers}: {keys} missing")
    return numbers


def check_no_empty_arrays(shapes: Shapes) -> None:
    """Refuse arrays with an axis of length 0: no released weight is empty, and such an axis would
    otherwise reach the config (a width of 0) or a division far from the array that caused it."""
    empty = [f"{key} {tuple(shape)}" for key, shape in shapes.items() if 0 in tuple(shape)]
    if empty:
        raise ConversionError(f"{len(empty)} original array(s) have an empty axis (the file is corrupt): {_listing(empty)}")


def mismatch_error(what: str, conflicts: list[str]) -> ConversionError:
    """The error for fields a catalog entry, preset or config gives differently from the file's shapes.

    Args:
        what: the hint, e.g. ``"preset 'B'"``, ``"the given config"``.
        conflicts: one line per field, ``"hidden_size: checkpoint has 32, preset 'B' says 768"``.
    """
    return ConversionError(
        f"the checkpoint does not match {what}:\n- " + "\n- ".join(conflicts) + "\nThe tensor shapes determine "
        "these fields: give the file's values or leave the fields out of the config (a preset or catalog entry "
        "must match the file as a whole; without one, the file gives every width)"
    )


def build_config(config_class: type, values: Mapping, what: str):
    """``config_class(**values)``, a config validation error turned into a :class:`ConversionError`.

    The values come from the file's shapes merged with ``what`` (a preset, a catalog entry, a
    given config); a combination the config refuses (a width of 0, strides that do not fit the
    file's conv count) is a checkpoint problem to report as such, not a bare ``ValueError``.
    """
    try:
        return config_class(**values)
    except (ValueError, TypeError) as err:
        raise ConversionError(
            f"the checkpoint's shapes with {what} give an invalid {config_class.__name__}: {err}"
        ) from None


# ----------------------------------------------------------------------------------------------
# Named tensor transforms (Flax layout -> PyTorch layout), each with its shape function so a whole
# conversion can be planned and checked from the file's headers before any data is read.


@dataclass(frozen=True)
class TensorTransform:
    name: str
    apply: Callable[[np.ndarray], np.ndarray]
    shape: Callable[[tuple[int, ...]], tuple[int, ...]]
    ndim: int | None  # the original rank it accepts (None: any)


def _conv_permutation(ndim: int) -> tuple[int, ...]:
    # (k..., in, out) -> (out, in, k...)
    return (ndim - 1, ndim - 2, *range(ndim - 2))


TRANSFORMS: dict[str, TensorTransform] = {
    t.name: t
    for t in [
        TensorTransform("identity", lambda a: a, lambda s: s, None),
        # Dense kernel (in, out) -> Linear weight (out, in).
        TensorTransform("dense", lambda a: a.T, lambda s: (s[1], s[0]), 2),
        # DenseGeneral to heads: kernel (in, heads, head_dim) -> (heads * head_dim, in).
        TensorTransform(
            "dense_to_heads", lambda a: a.reshape(a.shape[0], -1).T, lambda s: (s[1] * s[2], s[0]), 3
        ),
        # Its bias (heads, head_dim) -> (heads * head_dim,).
        TensorTransform("heads_bias", lambda a: a.reshape(-1), lambda s: (s[0] * s[1],), 2),
        # Output projection from heads: kernel (heads, head_dim, out) -> (out, heads * head_dim).
        TensorTransform(
            "dense_from_heads", lambda a: a.reshape(-1, a.shape[-1]).T, lambda s: (s[2], s[0] * s[1]), 3
        ),
        # Learned per-head queries (Q, heads, head_dim) -> (Q, heads * head_dim).
        TensorTransform("merge_heads", lambda a: a.reshape(a.shape[0], -1), lambda s: (s[0], s[1] * s[2]), 3),
        # Conv kernel (kt, kh, kw, in, out) or (kh, kw, in, out) -> (out, in, k...).
        TensorTransform(
            "conv",
            lambda a: a.transpose(_conv_permutation(a.ndim)),
            lambda s: tuple(s[i] for i in _conv_permutation(len(s))),
            None,
        ),
    ]
}


@dataclass(frozen=True)
class KeyRule:
    """One line of a key table: ``original`` (relative, ``{i}`` = index) -> ``target`` via ``transform``."""

    original: str
    target: str
    transform: str = "identity"

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORMS:
            raise ValueError(f"unknown transform {self.transform!r} in key rule {self.original}")

    @property
    def pattern(self) -> re.Pattern:
        return re.compile(re.escape(self.original).replace(re.escape("{i}"), r"(?P<i>\d+)") + "$")


@dataclass(frozen=True)
class Section:
    """A key table applied under an original prefix, writing under a target prefix."""

    description: str
    original_prefix: str
    target_prefix: str
    rules: tuple[KeyRule, ...]


@dataclass(frozen=True)
class MappedTensor:
    """How one model parameter is produced from one original array."""

    target: str
    source: str
    transform: str
    source_shape: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return TRANSFORMS[self.transform].shape(self.source_shape)

    def convert(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(TRANSFORMS[self.transform].apply(array))


def map_checkpoint(shapes: Mapping[str, tuple[int, ...]], sections: list[Section]) -> list[MappedTensor]:
    """Map every original key through the sections' tables; any key left over is an error."""
    compiled = [(section, [(rule, rule.pattern) for rule in section.rules]) for section in sections]
    mapped: list[MappedTensor] = []
    unmatched: list[str] = []
    for key, shape in shapes.items():
        result = None
        for section, rules in compiled:
            if not key.startswith(section.original_prefix):
                continue
            relative = key[len(section.original_prefix) :]
            for rule, pattern in rules:
                match = pattern.match(relative)
                if match:
                    target = rule.target.replace("{i}", match.group("i")) if "{i}" in rule.target else rule.target
                    transform = TRANSFORMS[rule.transform]
                    if transform.ndim is not None and len(shape) != transform.ndim:
                        raise ConversionError(
                            f"original array {key!r} has shape {shape}; rule {rule.original!r} ({rule.transform}) "
                            f"expects rank {transform.ndim}. This file is not the architecture it looks like."
                        )
                    result = MappedTensor(section.target_prefix + target, key, rule.transform, tuple(shape))
                    break
            if result is not None:
                break
        if result is None:
            unmatched.append(key)
        else:
            mapped.append(result)
    if unmatched:
        raise ConversionError(
            f"{len(unmatched)} original key(s) are not used by any conversion rule: {_listing(unmatched)}. "
            "The file holds parameters this model does not have (another architecture or head?)."
        )
    duplicates = _duplicates([m.target for m in mapped])
    if duplicates:
        raise ConversionError(f"several original keys map to the same parameter: {_listing(duplicates)}")
    return mapped


def original_key_for(target: str, sections: list[Section]) -> str | None:
    """The original key a section's table reads ``target`` from (``None`` if no rule writes it)."""
    for section in sections:
        if not target.startswith(section.target_prefix):
            continue
        relative = target[len(section.target_prefix) :]
        for rule in section.rules:
            pattern = re.escape(rule.target).replace(re.escape("{i}"), r"(?P<i>\d+)") + "$"
            match = re.match(pattern, relative)
            if match:
                original = rule.original.replace("{i}", match.group("i")) if "{i}" in rule.original else rule.original
                return section.original_prefix + original
    return None


def check_mapping(
    mapped: list[MappedTensor], expected: Mapping[str, tuple[int, ...]], sections: list[Section] | None = None
) -> None:
    """Every model parameter filled exactly once, with its exact shape; raise listing all problems.

    With the ``sections`` the mapping came from, a parameter nothing filled is reported with the
    original array it is read from (the key missing from the file).
    """
    produced = {m.target: m for m in mapped}
    missing = sorted(set(expected) - set(produced))
    if sections is not None:
        named = []
        for name in missing:
            original = original_key_for(name, sections)
            named.append(f"{name} (original array {original!r})" if original is not None else name)
        missing = named
    unexpected = sorted(set(produced) - set(expected))
    mismatched = [
        f"{name}: model {tuple(expected[name])} vs converted {produced[name].shape} (from {produced[name].source} "
        f"{produced[name].source_shape})"
        for name in sorted(set(expected) & set(produced))
        if tuple(expected[name]) != produced[name].shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} model parameter(s) missing from the checkpoint (not filled): {_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} converted tensor(s) the model does not have: {_listing(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {_listing(mismatched)}")
    if problems:
        raise ConversionError("checkpoint and model do not match:\n- " + "\n- ".join(problems))


def convert_arrays(params: Mapping[str, np.ndarray], mapped: list[MappedTensor]) -> dict[str, np.ndarray]:
    """The pure in-memory conversion: original arrays -> {parameter name: converted array}."""
    return {m.target: m.convert(np.asarray(params[m.source])) for m in mapped}


def count_parameters(shapes: Mapping[str, tuple[int, ...]]) -> int:
    return sum(math.prod(shape) for shape in shapes.values())


def _duplicates(items: list[str]) -> list[str]:
    seen, dups = set(), []
    for item in items:
        if item in seen:
            dups.append(item)
        seen.add(item)
    return dups


def _listing(items: list[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


@dataclass
class Layout:
    """What a converter found in a file: the sections to convert and a human-readable summary.

    Attributes:
        family: the family's name (``"fourds"``, ``"moog"``) or ``"head"``.
        description: one line saying what was found (printed, recorded in the model card).
        sections: the key tables to apply, each under its prefix.
        task: the readout's task, if the file holds one.
        details: converter-specific facts (roots, whether a decoder is there).
        assumptions: the config values that no tensor holds and no hint gave, taken from the
            family's defaults (filled by the family's ``plan``).
    """

    family: str
    description: str
    sections: list[Section]
    task: str | None = None
    details: dict = field(default_factory=dict)
    assumptions: list["Assumption"] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# Config values: what a hint claims, and what the converter assumes when nothing says.


@dataclass(frozen=True)
class Assumption:
    """A config value that no tensor of the file holds and no catalog entry, preset or config gave.

    The converter took it from the family's defaults (MooG: the Ego4D preset); it is reported so
    that a file trained otherwise can be converted with the right value.

    Attributes:
        field: the config field, dotted for a sub-config (``"num_tokens"``, ``"decoder.subsample_factor"``).
        value: the value assumed (JSON-compatible).
        source: where it came from, e.g. ``"Ego4D preset default"``.
        presets: the family's presets the file fits as a whole (``--preset`` claims all of one);
            empty when none fits or a config was given.
    """

    field: str
    value: Any
    source: str
    presets: tuple[str, ...] = ()

    @property
    def config_json(self) -> str:
        """The JSON object that sets this field to the assumed value, e.g. ``{"num_tokens": 1024}``."""
        head, _, rest = self.field.partition(".")
        return json.dumps({head: {rest: self.value} if rest else self.value})

    @property
    def how_to_set(self) -> str:
        """How to set the field instead: a ``--config`` JSON file (``config=`` dict), or a preset that fits."""
        text = f"--config FILE.json holding {self.config_json}"
        if self.presets:
            text += " or " + " or ".join(f"--preset {name}" for name in self.presets)
        return text

    def __str__(self) -> str:
        return f"{self.field} = {json.dumps(self.value)} ({self.source}; not stored in the file; set with {self.how_to_set})"


def check_claimed_fields(config_class: type, claims: Mapping[str, Any], what: str) -> None:
    """Refuse fields of a partial config (a dict, e.g. ``--config``) that ``config_class`` does not have.

    A config class accepts unknown keyword arguments silently (transformers' convention), so a
    misspelt field would otherwise be ignored and its value assumed instead.

    Raises:
        ConversionError: naming each unknown field, with the closest known name where there is one.
    """
    known = set(config_class.__dataclass_fields__) | {"model_type", "transformers_version"}
    unknown = sorted(name for name in claims if name not in known)
    if unknown:
        own = sorted(name for name in known if not name.startswith("_"))
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, own, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConversionError(
            f"{what} has field(s) {config_class.__name__} does not have: {', '.join(hints)}; fix or remove them"
        )


def merge_claims(base: Mapping[str, Any], claims: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``claims``, a sub-config dict (``readout``, ``predictor``) key by key.

    A partial config claims only the keys it names, also inside a sub-config: ``{"decoder":
    {"subsample_factor": 4}}`` keeps the other decoder fields of ``base``.
    """
    merged = dict(base)
    for name, value in claims.items():
        known = merged.get(name)
        merged[name] = {**known, **value} if isinstance(value, dict) and isinstance(known, dict) else value
    return merged


def is_claimed(claims: Mapping[str, Any] | None, dotted: str) -> bool:
    """Whether a partial config names ``dotted`` (``"num_tokens"``, ``"decoder.subsample_factor"``)."""
    if claims is None:
        return True  # a full config (object, preset, catalog entry) claims every field
    head, _, rest = dotted.partition(".")
    if head not in claims:
        return False
    return not rest or not isinstance(claims[head], dict) or rest in claims[head]


def dotted_value(values: Mapping[str, Any], dotted: str) -> Any:
    """``values["decoder"]["subsample_factor"]`` for ``"decoder.subsample_factor"`` (``None`` if absent)."""
    head, _, rest = dotted.partition(".")
    value = values.get(head)
    if rest:
        value = value.get(rest) if isinstance(value, dict) else None
    return list(value) if isinstance(value, tuple) else value


def merge_nested(inferred: dict[str, Any], given: dict[str, Any], what: str, strict: bool = True) -> dict[str, Any]:
    """``given`` updated with ``inferred``, sub-spec dicts key by key; a field both define differently
    is refused (``strict``) or taken from the file (``given`` is only a fallback).

    An optional part the file lacks (``inferred`` ``None`` where ``given`` has a sub-spec, e.g. a
    decoder not in the file) is not a conflict: the file decides that it is absent.
    """
    conflicts, merged = [], dict(given)
    for name, value in inferred.items():
        known = given.get(name)
        if isinstance(value, dict):
            base = dict(known) if isinstance(known, dict) else {}
            for key, sub in value.items():
                if key in base and base[key] is not None and _normal(base[key]) != _normal(sub):
                    conflicts.append(f"{name}.{key}: checkpoint has {sub!r}, {what} says {base[key]!r}")
            merged[name] = {**base, **value}
        else:
            if known is not None and _normal(known) != _normal(value) and not (value is None and isinstance(known, dict)):
                conflicts.append(f"{name}: checkpoint has {value!r}, {what} says {known!r}")
            merged[name] = value
    if conflicts and strict:
        raise mismatch_error(what, conflicts)
    return merged


def _normal(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value
