"""4DS specifics of the converter: find the layout of an original file, infer its config.

Accepted layouts (architecture.md section 1), with or without a leading ``params/``:

* backbone only: ``encoder/...`` + ``processor/...`` (optionally under ``layers_0/``);
* backbone + readout: a Sequential ``layers_0/`` (backbone) and ``layers_2/`` (readout), the
  released ScanNet depth file;
* readouts with learned queries (depth, camera pose, classification) or query coordinates
  (``attention_readout/`` + ``query_initializer/``: points, boxes).
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

from ..fourds import FOURDS_TASK_MODELS, FourDSConfig, FourDSModel
from ..readout import READOUT_TASK_DEFAULTS, ReadoutConfig
from .core import ConversionError, Layout, Section
from .tables import FOURDS_BACKBONE_RULES, LEARNED_QUERY_HEAD_RULES, TRACKING_HEAD_RULES

_BACKBONE_ANCHOR = "encoder/patch_embedding/Conv_0/kernel"
_READOUT_ANCHOR = "temporal_posenc/embeddings"
# Keys only a MooG backbone has ("query_initializer/" belongs to tracking heads of both families).
_MOOG_MARKERS = ("predictor_sa/", "predictor_ca/", "state_layer_norm/")

Shapes = Mapping[str, tuple[int, ...]]


def looks_like_moog(keys) -> bool:
    return any(marker in key for key in keys for marker in _MOOG_MARKERS)


def detect_layout(shapes: Shapes, query_fourier_bases: int = 16) -> Layout:
    """Find the backbone and (optional) readout roots of a 4DS file and what kind of head it is.

    ``query_fourier_bases`` only matters for tracking heads (it tells points from boxes).
    """
    keys = list(shapes)
    roots = sorted({key[: -len(_BACKBONE_ANCHOR)] for key in keys if key.endswith(_BACKBONE_ANCHOR)})
    if not roots:
        raise ConversionError(
            f"not a 4DS checkpoint: no key ends with {_BACKBONE_ANCHOR!r} (first keys: {', '.join(keys[:5])})"
        )
    if len(roots) > 1:
        raise ConversionError(f"found several 4DS backbones in one file, under {roots}; convert them separately")
    backbone_root = roots[0]
    backbone_keys = {k for k in keys if k.startswith(backbone_root + "encoder/") or k.startswith(backbone_root + "processor/")}
    rest = [k for k in keys if k not in backbone_keys]
    readout_roots = sorted({k[: -len(_READOUT_ANCHOR)] for k in rest if k.endswith(_READOUT_ANCHOR)})
    if len(readout_roots) > 1:
        raise ConversionError(f"found several readouts in one file, under {readout_roots}; only one head per model")
    details: dict[str, Any] = {"backbone_root": backbone_root}
    parts = [f"4DS backbone under {backbone_root!r}" if backbone_root else "4DS backbone at the top level"]
    if not readout_roots:
        if rest:
            raise ConversionError(
                f"{len(rest)} key(s) belong neither to the 4DS backbone nor to a readout: {', '.join(rest[:8])}"
            )
        sections = [Section("4DS backbone", backbone_root, "", FOURDS_BACKBONE_RULES)]
        return Layout("fourds", parts[0], sections, task=None, details=details)

    readout_root = readout_roots[0]
    if readout_root.endswith("attention_readout/"):
        head_root = readout_root[: -len("attention_readout/")]
        kind, rules = "tracking", TRACKING_HEAD_RULES
    elif readout_root + "query" in shapes:
        head_root, kind, rules = readout_root, "learned-query", LEARNED_QUERY_HEAD_RULES
    else:
        raise ConversionError(f"the readout under {readout_root!r} has neither learned queries nor a query initialiser")
    details.update(head_root=head_root, head_kind=kind)
    task = _infer_task(shapes, head_root, kind, query_fourier_bases)
    parts.append(f"{task} readout ({'query-coordinate' if kind == 'tracking' else 'learned'} queries) under {head_root!r}")
    sections = [
        Section("4DS backbone", backbone_root, "fourds.", FOURDS_BACKBONE_RULES),
        Section(f"{task} readout", head_root, "head.", rules),
    ]
    return Layout("fourds", ", ".join(parts), sections, task=task, details=details)


def _infer_task(shapes: Shapes, head_root: str, kind: str, query_fourier_bases: int) -> str:
    if kind == "tracking":
        # Query coordinates are embedded with 2 * bases features each: points have 2, boxes 4.
        queries_in = shapes[head_root + "query_initializer/layers_1/Dense_0/kernel"][0]
        coord_dim = queries_in / (2 * query_fourier_bases)
        if coord_dim not in (2, 4):
            raise ConversionError(
                f"the tracking head embeds {queries_in} query features, which is neither points nor boxes with "
                f"{query_fourier_bases} Fourier bases; set readout query_fourier_bases in the config"
            )
        return "points" if coord_dim == 2 else "boxes"
    num_queries = shapes[head_root + "query"][0]
    num_outputs = shapes[head_root + "Dense_1/kernel"][1]
    num_frames = shapes[head_root + _READOUT_ANCHOR][0]
    if num_queries > 1:
        return "depth"
    return "camera_pose" if (num_outputs == 12 and num_frames == 2) else "classification"


def infer_backbone_fields(shapes: Shapes, root: str) -> dict[str, Any]:
    """Every FourDSConfig field the backbone tensors determine."""
    kernel = shapes[root + _BACKBONE_ANCHOR]
    if len(kernel) != 5:
        raise ConversionError(f"{root + _BACKBONE_ANCHOR} has shape {kernel}; a 4DS patch embedding is (t, h, w, C, D)")
    pt, ph, pw, channels, width = kernel
    posenc = shapes.get(root + "encoder/posenc/embeddings")
    if posenc is None or len(posenc) != 4:
        raise ConversionError(f"missing or malformed {root}encoder/posenc/embeddings (expected (t, h, w, D))")
    layer_ids = {int(m.group(1)) for k in shapes if (m := re.match(re.escape(root) + r"processor/layers_(\d+)/", k))}
    if not layer_ids or layer_ids != set(range(len(layer_ids))):
        raise ConversionError(f"4DS blocks must be numbered 0..L-1, found {sorted(layer_ids)}")
    query = shapes[root + "processor/layers_0/attention/query/kernel"]
    mlp = shapes[root + "processor/layers_0/mlp/dense_in/kernel"]
    return dict(
        hidden_size=width,
        num_hidden_layers=len(layer_ids),
        intermediate_size=mlp[1],
        num_attention_heads=query[1],
        patch_size=[pt, ph, pw],
        num_channels=channels,
        num_frames=posenc[0] * pt,
        image_size=[posenc[1] * ph, posenc[2] * pw],
    )


def infer_readout_fields(shapes: Shapes, head_root: str, kind: str, task: str, base: dict[str, Any]) -> dict[str, Any]:
    """Every ReadoutConfig field the head tensors determine (others come from ``base`` or defaults)."""
    readout_root = head_root + ("attention_readout/" if kind == "tracking" else "")
    feature_dim, num_heads, head_dim = shapes[readout_root + "key_embedding/kernel"]
    fields: dict[str, Any] = dict(
        task=task,
        num_params=num_heads * head_dim,
        num_heads=num_heads,
        num_frames=shapes[readout_root + _READOUT_ANCHOR][0],
        mlp_ratio=shapes[readout_root + "MLP_0/Dense_0/kernel"][1] // (num_heads * head_dim),
    )
    if kind == "tracking":
        hidden = shapes[head_root + "query_initializer/layers_1/Dense_0/kernel"]
        out = shapes[head_root + "query_initializer/layers_1/Dense_1/kernel"]
        tile = shapes.get(head_root + "temporal_tile_posenc/embeddings", (1,))[0]
        coord_dim = 2 if task == "points" else 4
        bases, remainder = divmod(hidden[0], 2 * coord_dim)
        if remainder:
            raise ConversionError(f"query initialiser input {hidden[0]} is not 2 * bases * {coord_dim}")
        frames_per_query = fields["num_frames"] // tile
        channels = shapes[readout_root + "Dense_2/kernel"][1] // frames_per_query
        fields.update(query_fourier_bases=bases, query_mlp_sizes=[hidden[1], out[1]], temporal_tile_size=tile)
        if task == "points":
            logits = channels - coord_dim
            if logits not in (0, 1, 2):
                raise ConversionError(f"point head predicts {channels} values per frame; expected 2, 3 or 4")
            fields.update(predict_visibility=logits > 0, use_certainty=logits == 2)
    elif task == "depth":
        num_outputs = shapes[readout_root + "Dense_1/kernel"][1]
        patch = list(base.get("decoding_patch_size") or READOUT_TASK_DEFAULTS["depth"]["decoding_patch_size"])
        if math.prod(patch) != num_outputs:
            raise ConversionError(
                f"the depth head predicts {num_outputs} values per query, but decoding_patch_size {patch} has "
                f"{math.prod(patch)} pixels; pass the right readout decoding_patch_size in the config"
            )
        fields["decoding_patch_size"] = patch
    elif task == "classification":
        fields["num_classes"] = shapes[readout_root + "Dense_1/kernel"][1]
    return fields


def merge_fields(inferred: dict[str, Any], given: dict[str, Any], what: str) -> dict[str, Any]:
    """``given`` updated with ``inferred``; a field both define differently is an error naming it."""
    conflicts = [
        f"{name}: checkpoint has {inferred[name]!r}, {what} says {given[name]!r}"
        for name in inferred
        if name in given and given[name] is not None and _normal(given[name]) != _normal(inferred[name])
    ]
    if conflicts:
        raise ConversionError(f"the checkpoint does not match {what}:\n- " + "\n- ".join(conflicts))
    return {**given, **inferred}


def _normal(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def resolve_config(shapes: Shapes, layout: Layout, base: FourDSConfig | None, what: str) -> tuple[FourDSConfig, type]:
    """The config of the converted model (shapes first, then ``base``) and the model class to build."""
    base_dict = base.to_dict() if base is not None else {}
    given = {k: v for k, v in base_dict.items() if k in FourDSConfig.__dataclass_fields__}
    inferred = infer_backbone_fields(shapes, layout.details["backbone_root"])
    values = merge_fields(inferred, given, what)
    model_class: type = FourDSModel
    if layout.task is not None:
        base_readout = dict(values.get("readout") or {})
        if base_readout.get("task", layout.task) != layout.task:
            raise ConversionError(f"the file holds a {layout.task} head, {what} describes a {base_readout['task']} head")
        inferred_readout = infer_readout_fields(
            shapes, layout.details["head_root"], layout.details["head_kind"], layout.task, base_readout
        )
        readout = merge_fields(inferred_readout, base_readout, f"{what} (readout)")
        values["readout"] = ReadoutConfig.for_task(layout.task, readout).to_dict()
        model_class = FOURDS_TASK_MODELS[layout.task]
        if layout.task == "classification":
            values["num_labels"] = readout["num_classes"]
    else:
        values["readout"] = None
    for key in ("architectures", "transformers_version", "model_type", "id2label", "label2id", "dtype"):
        values.pop(key, None)
    if layout.task == "classification":
        values["id2label"] = {i: f"LABEL_{i}" for i in range(values.pop("num_labels"))}
    return FourDSConfig(**values), model_class
