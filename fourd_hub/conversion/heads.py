"""Readout heads in the converter: the fields their tensors determine, and heads converted on their own.

:func:`infer_readout_fields` reads a readout's :class:`~fourd_hub.readout.ReadoutConfig` fields from
its tensor shapes (any family's head: 4DS files with a readout, the released MooG head files).

A head file (keys ``attention_readout/``, ``query_initializer/``, ``temporal_tile_posenc/``) holds
no backbone. It converts to an ordinary model directory of the family whose heads come in files
of their own (:attr:`~fourd_hub.registry.FamilySpec.standalone_head_tasks`): ``config.json`` is the
task model's config (the backbone architecture of the catalog entry or of the given config, the
head's readout), with ``use_pretrained_backbone: true`` and the ``backbone`` it reads (the catalog
entry's ``base_model``, or the given config's ``backbone``); the safetensors hold the head's
parameters alone, under ``head.``. ``from_pretrained`` of the directory loads the backbone, then
the head.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from ..readout import READOUT_TASK_DEFAULTS, ReadoutConfig
from ..registry import FamilySpec, families
from ..tasks import TASKS
from .core import ConversionError, Layout, Section, array_shape, build_config, merge_claims, mismatch_error, optional_shape
from .tables import TRACKING_HEAD_RULES

#: Every readout has a temporal position embedding here (relative to its root).
READOUT_ANCHOR = "temporal_posenc/embeddings"
_TRACKING_ANCHOR = "attention_readout/" + READOUT_ANCHOR
#: The prefix of a head's parameters in its task model (and in a standalone head's safetensors).
HEAD_PREFIX = "head."

Shapes = Mapping[str, tuple[int, ...]]


def infer_readout_fields(shapes: Shapes, head_root: str, kind: str, task: str, base: dict[str, Any]) -> dict[str, Any]:
    """Every ReadoutConfig field the head tensors determine (others come from ``base`` or defaults)."""
    readout_root = head_root + ("attention_readout/" if kind == "tracking" else "")
    _, num_heads, head_dim = array_shape(
        shapes, readout_root + "key_embedding/kernel", 3, what="readout key projection (in, heads, head_dim)"
    )
    fields: dict[str, Any] = dict(
        task=task,
        num_params=num_heads * head_dim,
        num_heads=num_heads,
        num_frames=array_shape(shapes, readout_root + READOUT_ANCHOR, 3, what="readout temporal embedding (T, 1, D)")[0],
        mlp_ratio=array_shape(shapes, readout_root + "MLP_0/Dense_0/kernel", 2, what="readout MLP input (in, out)")[1]
        // (num_heads * head_dim),
    )
    if kind == "tracking":
        initialiser = head_root + "query_initializer/layers_1/"
        hidden = array_shape(shapes, initialiser + "Dense_0/kernel", 2, what="query initialiser input (in, out)")
        out = array_shape(shapes, initialiser + "Dense_1/kernel", 2, what="query initialiser output (in, out)")
        tile_shape = optional_shape(
            shapes, head_root + "temporal_tile_posenc/embeddings", 2, what="temporal tiling embedding (tiles, D)"
        )
        tile = tile_shape[0] if tile_shape is not None else 1
        coord_dim = 2 if task == "points" else 4
        bases, remainder = divmod(hidden[0], 2 * coord_dim)
        if remainder:
            raise ConversionError(f"query initialiser input {hidden[0]} is not 2 * bases * {coord_dim}")
        if fields["num_frames"] % tile:
            raise ConversionError(
                f"the readout reads {fields['num_frames']} frames, not a multiple of its {tile} temporal tiles "
                f"({head_root}temporal_tile_posenc/embeddings); the file is corrupt"
            )
        frames_per_query = fields["num_frames"] // tile
        outputs = array_shape(shapes, readout_root + "Dense_2/kernel", 2, what="readout output (in, out)")[1]
        channels, leftover = divmod(outputs, frames_per_query)
        if leftover or not channels:
            tile_key = head_root + "temporal_tile_posenc/embeddings"
            raise ConversionError(
                f"the readout output {readout_root + 'Dense_2/kernel'!r} has {outputs} values per query, not a multiple of "
                f"its {frames_per_query} frames per query ({fields['num_frames']} frames / {tile} temporal tiles"
                + (f"; {tile_key!r} is missing" if tile_shape is None else "") + ")"
            )
        fields.update(query_fourier_bases=bases, query_mlp_sizes=[hidden[1], out[1]], temporal_tile_size=tile)
        if task == "points":
            logits = channels - coord_dim
            if logits not in (0, 1, 2):
                raise ConversionError(f"point head predicts {channels} values per frame; expected 2, 3 or 4")
            fields.update(predict_visibility=logits > 0, use_certainty=logits == 2)
    elif task == "depth":
        num_outputs = array_shape(shapes, readout_root + "Dense_1/kernel", 2, what="depth readout output (in, out)")[1]
        patch = list(base.get("decoding_patch_size") or READOUT_TASK_DEFAULTS["depth"]["decoding_patch_size"])
        if math.prod(patch) != num_outputs:
            raise ConversionError(
                f"the depth head predicts {num_outputs} values per query, but decoding_patch_size {patch} has "
                f"{math.prod(patch)} pixels; pass the right readout decoding_patch_size in the config"
            )
        fields["decoding_patch_size"] = patch
    elif task == "classification":
        fields["num_classes"] = array_shape(shapes, readout_root + "Dense_1/kernel", 2, what="classifier output (in, classes)")[1]
    return fields


def build_readout(task: str, fields: dict[str, Any], what: str) -> ReadoutConfig:
    """:meth:`ReadoutConfig.for_task`, its validation errors reported as the checkpoint's (a :class:`ConversionError`)."""
    try:
        return ReadoutConfig.for_task(task, fields)
    except (ValueError, TypeError) as err:
        raise ConversionError(f"the readout's shapes with {what} give an invalid {task} readout config: {err}") from None


def merge_fields(inferred: dict[str, Any], given: dict[str, Any], what: str) -> dict[str, Any]:
    """``given`` updated with ``inferred``; a field both define differently is an error naming it."""
    conflicts = [
        f"{name}: checkpoint has {inferred[name]!r}, {what} says {given[name]!r}"
        for name in inferred
        if name in given and given[name] is not None and _normal(given[name]) != _normal(inferred[name])
    ]
    if conflicts:
        raise mismatch_error(what, conflicts)
    return {**given, **inferred}


def _normal(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def tracking_task(shapes: Shapes, head_root: str, query_fourier_bases: int) -> str:
    """``"points"`` or ``"boxes"``: query coordinates are embedded with 2 * bases features each, points have 2, boxes 4."""
    queries_in = array_shape(
        shapes, head_root + "query_initializer/layers_1/Dense_0/kernel", 2, what="query initialiser input (in, out)"
    )[0]
    if isinstance(query_fourier_bases, bool) or not isinstance(query_fourier_bases, int) or query_fourier_bases < 1:
        raise ConversionError(f"readout query_fourier_bases must be a positive integer, got {query_fourier_bases!r}")
    coord_dim = queries_in / (2 * query_fourier_bases)
    if coord_dim not in (2, 4):
        raise ConversionError(
            f"the tracking head embeds {queries_in} query features, which is neither points nor boxes with "
            f"{query_fourier_bases} Fourier bases; set readout query_fourier_bases in the config"
        )
    return "points" if coord_dim == 2 else "boxes"


def has_tracking_readout(shapes: Shapes) -> bool:
    """Whether the file holds a tracking readout (a head file, when no family found a backbone in it)."""
    return any(key.endswith(_TRACKING_ANCHOR) for key in shapes)


def explain_missing_anchor(shapes: Shapes) -> str | None:
    """For a file that holds a tracking readout's arrays but not its anchor (so it is not seen as a
    head file): which key is missing, for the message; ``None`` otherwise."""
    roots = sorted({k[: -len("key_embedding/kernel")] for k in shapes if k.endswith("attention_readout/key_embedding/kernel")})
    missing = [root + READOUT_ANCHOR for root in roots if root + READOUT_ANCHOR not in shapes]
    return f"a tracking readout whose {missing[0]!r} is missing" if missing else None


def head_families() -> list[FamilySpec]:
    """The families whose released heads come in files of their own."""
    return [spec for spec in families() if spec.standalone_head_tasks]


def detect_layout(shapes: Shapes) -> Layout:
    roots = sorted({key[: -len(_TRACKING_ANCHOR)] for key in shapes if key.endswith(_TRACKING_ANCHOR)})
    if len(roots) != 1:
        raise ConversionError(f"expected one tracking readout in the file, found them under {roots}")
    root = roots[0]
    initialiser = root + "query_initializer/layers_1/Dense_0/kernel"
    if optional_shape(shapes, initialiser, 2, what="query initialiser input (in, out)") is None:
        raise ConversionError(
            f"the readout under {root!r} has no query initialiser ({initialiser!r} is missing); only tracking heads "
            "convert on their own"
        )
    description = f"standalone tracking readout under {root!r} (no backbone)"
    return Layout("head", description, [Section("tracking readout", root, HEAD_PREFIX, TRACKING_HEAD_RULES)], details={"root": root})


def resolve_config(
    shapes: Shapes,
    layout: Layout,
    family: FamilySpec,
    base: Any,
    backbone: str | None,
    strict: bool = True,
    claims: dict[str, Any] | None = None,
) -> tuple[Any, type]:
    """The head directory's config (``base``'s backbone fields, the head's readout) and its task model class.

    The task (points / boxes) comes from the query width; the readout fields from the shapes,
    merged with ``base.readout``. ``strict``: the backbone width of ``base`` must be the one the
    head reads (an explicit config); else it is only a fallback (a catalog entry's preset).
    ``claims`` (without ``base``): a partial config (a dict) whose fields are used as given (its
    ``readout`` fields are checked against the head's shapes); the family's defaults fill the rest.
    """
    if base is None and claims:
        base = build_config(family.load("config_class"), _claimed_values(family, claims), "the given config")
    root = layout.details["root"]
    base_readout = dict(getattr(base, "readout", None) or {})
    readout_task = tracking_task(shapes, root, base_readout.get("query_fourier_bases", 16))
    if base_readout.get("task", readout_task) != readout_task:
        raise ConversionError(f"the file holds a {readout_task} head, the given config describes a {base_readout['task']} head")
    task = next(spec.name for spec in TASKS.values() if spec.readout_key == readout_task)
    if task not in family.standalone_head_tasks:
        raise ConversionError(f"{family.display_name} has no standalone {task} heads")
    inferred = infer_readout_fields(shapes, root, "tracking", readout_task, base_readout)
    readout = build_readout(readout_task, merge_fields(inferred, base_readout, "the given readout config"), "the given readout config")
    norm_key, key_key = root + "attention_readout/LayerNorm_0/scale", root + "attention_readout/key_embedding/kernel"
    feature_dim = array_shape(shapes, norm_key, 1, what="readout input norm (D,)")[0]
    key_width = array_shape(shapes, key_key, 3, what="readout key projection (in, heads, head_dim)")[0]
    if key_width != feature_dim:  # both read the backbone's features: one of them is damaged
        raise ConversionError(
            f"{norm_key!r} normalises {feature_dim}-wide features but {key_key!r} reads {key_width}-wide ones; the file is corrupt"
        )
    config_class = family.load("config_class")
    # Without a config, the family's defaults stand in for the backbone fields the head file cannot
    # tell; the backbone the head is attached to supplies its own config when it loads.
    values = {k: v for k, v in (base or config_class()).to_dict().items() if k in config_class.__dataclass_fields__}
    if strict and base is not None and values.get("hidden_size", feature_dim) != feature_dim:
        raise ConversionError(
            f"the head reads {feature_dim}-wide features, but the backbone config's hidden_size is {values['hidden_size']}"
        )
    values.update(
        hidden_size=feature_dim, readout=readout.to_dict(), num_frames=readout.num_frames,
        use_pretrained_backbone=True, backbone=backbone if backbone is not None else values.get("backbone"),
    )
    for key in ("architectures", "transformers_version", "model_type", "dtype"):
        values.pop(key, None)
    return build_config(config_class, values, "the head's backbone config"), family.task_model(task)


def _claimed_values(family: FamilySpec, claims: dict[str, Any]) -> dict[str, Any]:
    """The family's default config fields updated with a partial config's, sub-configs key by key."""
    config_class = family.load("config_class")
    defaults = {k: v for k, v in config_class().to_dict().items() if k in config_class.__dataclass_fields__}
    for key in ("architectures", "transformers_version", "model_type", "dtype"):
        defaults.pop(key, None)
    return merge_claims(defaults, claims)


__all__ = [
    "HEAD_PREFIX",
    "build_readout",
    "READOUT_ANCHOR",
    "detect_layout",
    "explain_missing_anchor",
    "head_families",
    "infer_readout_fields",
    "has_tracking_readout",
    "merge_fields",
    "resolve_config",
    "tracking_task",
]
