"""4DS specifics of the converter: find the layout of an original file, infer its config.

Accepted layouts (architecture.md section 1), with or without a leading ``params/``:

* backbone only: ``encoder/...`` + ``processor/...`` (optionally under ``layers_0/``);
* backbone + readout: a Sequential ``layers_0/`` (backbone) and ``layers_2/`` (readout), the
  released ScanNet depth file;
* readouts with learned queries (depth, camera pose, classification) or query coordinates
  (``attention_readout/`` + ``query_initializer/``: points, boxes).

The backbone's tensors give every field of its architecture, including the clip size (the
position embedding). A partial config (a dict, e.g. ``--config``) gives only the fields it names;
what no tensor holds and nothing gives (:data:`ASSUMABLE_FIELDS`) keeps the 4DS default and is
reported as an :class:`~fourd_hub.conversion.core.Assumption` (``layout.assumptions``).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from ...conversion.core import (
    Assumption,
    ConversionError,
    KeyRule,
    Layout,
    Section,
    array_shape,
    build_config,
    check_numbered,
    dotted_value,
    is_claimed,
)
from ...conversion.heads import READOUT_ANCHOR, build_readout, infer_readout_fields, merge_fields, tracking_task
from ...conversion.tables import LEARNED_QUERY_HEAD_RULES, TRACKING_HEAD_RULES, dense_rules, norm_rules
from ...registry import get_family
from ...tasks import get_task
from .configuration_fourds import FourDSConfig
from .modeling_fourds import FourDSModel

# 4DS backbone (``Model(encoder=Tokenizer, processor=GeneralizedTransformer)``).
FOURDS_BACKBONE_RULES: tuple[KeyRule, ...] = (
    KeyRule("encoder/patch_embedding/Conv_0/kernel", "embeddings.patch_embedding.weight", "conv"),
    KeyRule("encoder/patch_embedding/Conv_0/bias", "embeddings.patch_embedding.bias"),
    KeyRule("encoder/posenc/embeddings", "embeddings.position_embedding"),
    *norm_rules("processor/layers_{i}/attention_norm", "layers.{i}.attention_norm"),
    *dense_rules("processor/layers_{i}/attention/query", "layers.{i}.attention.q_proj", "dense_to_heads", "heads_bias"),
    *dense_rules("processor/layers_{i}/attention/key", "layers.{i}.attention.k_proj", "dense_to_heads", "heads_bias"),
    *dense_rules("processor/layers_{i}/attention/value", "layers.{i}.attention.v_proj", "dense_to_heads", "heads_bias"),
    *dense_rules("processor/layers_{i}/attention/out", "layers.{i}.attention.out_proj", "dense_from_heads"),
    *norm_rules("processor/layers_{i}/mlp_norm", "layers.{i}.mlp_norm"),
    *dense_rules("processor/layers_{i}/mlp/dense_in", "layers.{i}.mlp.fc_in"),
    *dense_rules("processor/layers_{i}/mlp/dense_out", "layers.{i}.mlp.fc_out"),
)

_BACKBONE_ANCHOR = "encoder/patch_embedding/Conv_0/kernel"

Shapes = Mapping[str, tuple[int, ...]]


#: What :func:`detect` looks for, for messages when no family recognises a file.
MARKERS = f"key ending with {_BACKBONE_ANCHOR!r} beside 'processor/layers_0/attention/query/kernel'"


def detect(shapes: Shapes) -> bool:
    """Whether the file holds a 4DS backbone: its positive markers are a Conv3d patch embedding
    under ``encoder/patch_embedding/`` and blocks under ``processor/layers_<i>/attention/``."""
    keys = list(shapes)
    roots = {key[: -len(_BACKBONE_ANCHOR)] for key in keys if key.endswith(_BACKBONE_ANCHOR)}
    return any(root + "processor/layers_0/attention/query/kernel" in shapes for root in roots)


def explain(shapes: Shapes) -> str:
    """Why :func:`detect` does not recognise ``shapes``, naming the marker key that is missing."""
    roots = sorted({key[: -len(_BACKBONE_ANCHOR)] for key in shapes if key.endswith(_BACKBONE_ANCHOR)})
    query = "processor/layers_0/attention/query/kernel"
    if not roots:
        # The blocks are there but not the patch embedding: name the anchor the file lacks.
        cores = sorted({key[: -len(query)] for key in shapes if key.endswith(query)})
        if cores:
            return "; ".join(f"{root + query!r} is there but {root + _BACKBONE_ANCHOR!r} is missing" for root in cores)
        return f"no {MARKERS}"
    return "; ".join(f"{root + _BACKBONE_ANCHOR!r} is there but {root + query!r} is missing" for root in roots)


#: Config fields no 4DS tensor holds that change what the converted model computes, per readout
#: task (``None``: every file): reported as assumptions when they keep their default.
#: ``readout_depth`` picks the block that feeds readouts; a depth head's file holds only the
#: pixel count of its ``decoding_patch_size``.
ASSUMABLE_FIELDS: dict[str | None, tuple[str, ...]] = {
    None: ("readout_depth",),
    "depth": ("readout.decoding_patch_size",),
}
_DEFAULT_SOURCE = {"readout_depth": "4DS default", "readout.decoding_patch_size": "4DS depth readout default"}


def plan(
    shapes: Shapes, base: FourDSConfig | None, what: str, claims: dict[str, Any] | None = None
) -> tuple[Layout, FourDSConfig, type]:
    """The layout of a 4DS file, the converted config and the class to build.

    Args:
        shapes: ``{original key: shape}`` of the file.
        base: a full config the file is checked against (a catalog entry's, a preset's, a config
            object): every field is a claim, and a contradiction with the shapes is an error.
        what: what ``base`` (or ``claims``) is, for messages (``"preset 'B'"``).
        claims: without ``base``: a partial config (a dict) whose fields alone are claims; the
            rest comes from the shapes, then from the defaults (``layout.assumptions``).
    """
    readout = (base.readout if base is not None else (claims or {}).get("readout")) or {}
    layout = detect_layout(shapes, query_fourier_bases=readout.get("query_fourier_bases", 16))
    config, model_class = resolve_config(shapes, layout, base, what, claims)
    return layout, config, model_class


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
    readout_roots = sorted({k[: -len(READOUT_ANCHOR)] for k in rest if k.endswith(READOUT_ANCHOR)})
    if len(readout_roots) > 1:
        raise ConversionError(f"found several readouts in one file, under {readout_roots}; only one head per model")
    details: dict[str, Any] = {"backbone_root": backbone_root}
    parts = [f"4DS backbone under {backbone_root!r}" if backbone_root else "4DS backbone at the top level"]
    if not readout_roots:
        partial = sorted({k[: -len("key_embedding/kernel")] for k in rest if k.endswith("key_embedding/kernel")})
        if partial:  # a readout's other arrays are there: name the anchor it lacks
            raise ConversionError(
                f"the readout under {partial[0]!r} is incomplete: {partial[0] + READOUT_ANCHOR!r} is missing; "
                "the file is truncated or was exported without it"
            )
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
        raise ConversionError(
            f"the readout under {readout_root!r} has neither learned queries ({readout_root + 'query'!r} is missing) "
            "nor a query initialiser (attention_readout/ + query_initializer/)"
        )
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
        return tracking_task(shapes, head_root, query_fourier_bases)
    num_queries = array_shape(shapes, head_root + "query", 3, what="learned readout queries (Q, heads, head_dim)")[0]
    num_outputs = array_shape(shapes, head_root + "Dense_1/kernel", 2, what="readout output (in, out)")[1]
    num_frames = array_shape(shapes, head_root + READOUT_ANCHOR, 3, what="readout temporal embedding (T, 1, D)")[0]
    if num_queries > 1:
        return "depth"
    return "camera_pose" if (num_outputs == 12 and num_frames == 2) else "classification"


def infer_backbone_fields(shapes: Shapes, root: str) -> dict[str, Any]:
    """Every FourDSConfig field the backbone tensors determine."""
    pt, ph, pw, channels, width = array_shape(shapes, root + _BACKBONE_ANCHOR, 5, what="the 4DS patch embedding (t, h, w, C, D)")
    posenc = array_shape(shapes, root + "encoder/posenc/embeddings", 4, what="the position embedding (t, h, w, D)")
    layer_ids = {int(m.group(1)) for k in shapes if (m := re.match(re.escape(root) + r"processor/layers_(\d+)/", k))}
    if not layer_ids:
        raise ConversionError(f"the 4DS file has no blocks under {root + 'processor/'!r} ('processor/layers_0/...' missing)")
    check_numbered(layer_ids, "4DS blocks", lambda i: f"{root}processor/layers_{i}/attention/query/kernel")
    query = array_shape(shapes, root + "processor/layers_0/attention/query/kernel", 3, what="attention query (D, heads, head_dim)")
    mlp = array_shape(shapes, root + "processor/layers_0/mlp/dense_in/kernel", 2, what="MLP input (D, mlp)")
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


def resolve_config(
    shapes: Shapes, layout: Layout, base: FourDSConfig | None, what: str, claims: dict[str, Any] | None = None
) -> tuple[FourDSConfig, type]:
    """The config of the converted model (shapes first, then ``base`` or ``claims``) and the model class to build.

    With ``base`` every field it sets is checked against the file; without, only those
    ``claims`` names, and the fields of :data:`ASSUMABLE_FIELDS` it leaves out keep their defaults
    and are appended to ``layout.assumptions``.

    Raises:
        ConversionError: a given field contradicts the shapes (each one named), or the values
            together are not a valid :class:`FourDSConfig`.
    """
    if base is not None:
        given, claims = {k: v for k, v in base.to_dict().items() if k in FourDSConfig.__dataclass_fields__}, None
    else:
        claims = dict(claims or {})
        given = dict(claims)
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
        values["readout"] = build_readout(layout.task, readout, what).to_dict()
        model_class = get_family("fourds").task_model(get_task(layout.task).name)
        if layout.task == "classification":
            values["num_labels"] = readout["num_classes"]
    else:
        values["readout"] = None
    for key in ("architectures", "transformers_version", "model_type", "id2label", "label2id", "dtype"):
        values.pop(key, None)
    if layout.task == "classification":
        values["id2label"] = {i: f"LABEL_{i}" for i in range(values.pop("num_labels"))}
    config = build_config(FourDSConfig, values, what)
    described = config.to_dict()
    layout.assumptions.extend(
        Assumption(name, dotted_value(described, name), _DEFAULT_SOURCE[name])
        for name in (*ASSUMABLE_FIELDS[None], *(ASSUMABLE_FIELDS.get(layout.task, ()) if layout.task else ()))
        if not is_claimed(claims, name)
    )
    return config, model_class
