"""RVM specifics of the converter: find the layout of an original file, infer its config.

Accepted layouts (rvm.md section 1): the ``VideoSiamMAE`` parameters at the model root, as the
released files hold them (``cls_token``, ``tokenizer/...``, ``encoder/...``, ``rnn_core/...``,
``decoder/...``; trap 1: no ``params/``), or under a prefix such as ``params/``; with or without
the reconstruction decoder (without: the converted model has ``decoder=None``, the layout says so,
and reconstructing says why it cannot).

Every size is read from the tensor shapes (trap 2: the core and decoder sizes of S/B/H are in no
code): width from ``cls_token``, encoder depth from the ``encoder/layers_<i>`` present, heads and
attention widths from each attention's ``query/kernel`` (in, heads, head_dim), MLP widths from
``mlp/dense_in``, core depth from ``rnn_core/transformer/xa_blocks_<i>``, decoder width from
``mask_token``, delta classes from ``delta_embedder``, patch from the conv kernel. What no tensor
holds (:data:`ASSUMABLE_FIELDS`: the position table's base grid, the clip size, the masking
ratio) comes from the catalog entry, the preset or the given config; left out of a partial
config, it keeps the released models' value and is reported as an
:class:`~fourd_hub.conversion.core.Assumption`.
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
    merge_claims,
    merge_nested,
)
from ...conversion.tables import dense_rules, norm_rules, prefixed
from ..fourds.conversion_fourds import FOURDS_BACKBONE_RULES
from .configuration_rvm import RVMConfig, RVMDecoderSpec, RVMTransformerSpec
from .modeling_rvm import RVMModel

Shapes = Mapping[str, tuple[int, ...]]


# ----------------------------------------------------------------------------------------------
# Key tables (original path relative to the model root -> parameter of RVMModel)

# The encoder blocks are 4DS's blocks (same module, same Flax names under ``layers_<i>/``): their
# rules are the 4DS table's block rules, moved from ``processor/`` to ``encoder/``.
_BLOCK_PREFIX = "processor/layers_{i}/"
ENCODER_BLOCK_RULES: tuple[KeyRule, ...] = tuple(
    KeyRule(rule.original[len("processor/"):], rule.target, rule.transform)
    for rule in FOURDS_BACKBONE_RULES
    if rule.original.startswith(_BLOCK_PREFIX)
)


def _attention_rules(original: str, target: str) -> tuple[KeyRule, ...]:
    """A biased DenseGeneral attention (q/k/v to heads, out from heads) -> :class:`~fourd_hub.layers.Attention`."""
    return (
        *dense_rules(f"{original}/query", f"{target}.q_proj", "dense_to_heads", "heads_bias"),
        *dense_rules(f"{original}/key", f"{target}.k_proj", "dense_to_heads", "heads_bias"),
        *dense_rules(f"{original}/value", f"{target}.v_proj", "dense_to_heads", "heads_bias"),
        *dense_rules(f"{original}/out", f"{target}.out_proj", "dense_from_heads"),
    )


# ``CrossAttentionTransformer``: xa_blocks_<i> (cross-attention, MLP, self-attention), output_norm.
CROSS_ATTENTION_TRANSFORMER_RULES: tuple[KeyRule, ...] = (
    *norm_rules("xa_blocks_{i}/ca_attention_norm", "layers.{i}.cross_attention_norm"),
    *_attention_rules("xa_blocks_{i}/ca_attention", "layers.{i}.cross_attention"),
    *norm_rules("xa_blocks_{i}/mlp_norm", "layers.{i}.mlp_norm"),
    *dense_rules("xa_blocks_{i}/mlp/dense_in", "layers.{i}.mlp.fc_in"),
    *dense_rules("xa_blocks_{i}/mlp/dense_out", "layers.{i}.mlp.fc_out"),
    *norm_rules("xa_blocks_{i}/attention_norm", "layers.{i}.attention_norm"),
    *_attention_rules("xa_blocks_{i}/attention", "layers.{i}.attention"),
    *norm_rules("output_norm", "output_norm"),
)

# Tokenizer, encoder and recurrent core: what the features need.
RVM_BACKBONE_RULES: tuple[KeyRule, ...] = (
    KeyRule("cls_token", "embeddings.cls_token"),
    # The 5-D kernel (1, 16, 16, 3, D) (trap 1) becomes the (D, 3, 1, 16, 16) weight of the
    # per-frame Conv3d (kernel 1 along time) by the generic conv transform.
    *dense_rules("tokenizer/patch_embedding/Conv_0", "embeddings.patch_embedding", "conv"),
    *prefixed(ENCODER_BLOCK_RULES, "encoder/", "encoder."),
    *norm_rules("encoder/LayerNorm_0", "encoder.final_norm"),
    # The gates: Dense layers without bias (trap 5).
    KeyRule("rnn_core/input_update/kernel", "core.input_update.weight", "dense"),
    KeyRule("rnn_core/input_reset/kernel", "core.input_reset.weight", "dense"),
    KeyRule("rnn_core/state_update/kernel", "core.state_update.weight", "dense"),
    KeyRule("rnn_core/state_reset/kernel", "core.state_reset.weight", "dense"),
    *norm_rules("rnn_core/state_layer_norm", "core.state_norm", bias=False),  # scale only (trap 5)
    *prefixed(CROSS_ATTENTION_TRANSFORMER_RULES, "rnn_core/transformer/", "core.transformer."),
)

# The masked-reconstruction decoder (optional in a file).
RVM_DECODER_RULES: tuple[KeyRule, ...] = (
    KeyRule("mask_token", "decoder.mask_token"),
    *dense_rules("decoder_embedder", "decoder.embedder"),
    *dense_rules("delta_embedder", "decoder.delta_embedder"),
    *dense_rules("detokenizer/Dense_0", "decoder.detokenizer"),
    *prefixed(CROSS_ATTENTION_TRANSFORMER_RULES, "decoder/", "decoder.transformer."),
)

#: Keys (relative to the root) of which any one means the file holds the decoder.
_DECODER_PARTS = ("mask_token", "decoder/", "decoder_embedder/", "delta_embedder/", "detokenizer/")

_ANCHOR = "rnn_core/state_layer_norm/scale"
_TOKENIZER = "tokenizer/patch_embedding/Conv_0/kernel"

#: What :func:`detect` looks for, for messages when no family recognises a file.
MARKERS = f"key ending with {_ANCHOR!r} (the recurrent core) beside {_TOKENIZER!r}"


def _roots(shapes: Shapes) -> list[str]:
    return sorted({key[: -len(_ANCHOR)] for key in shapes if key.endswith(_ANCHOR)})


def detect(shapes: Shapes) -> bool:
    """Whether the file holds an RVM model: its positive markers are the gated recurrent core's
    state norm (``rnn_core/state_layer_norm/``) beside the per-frame tokenizer
    (``tokenizer/patch_embedding/``), under one root. Neither exists in a 4DS or MooG file."""
    return any(root + _TOKENIZER in shapes for root in _roots(shapes))


def explain(shapes: Shapes) -> str:
    """Why :func:`detect` does not recognise ``shapes``, naming the marker key that is missing."""
    roots = _roots(shapes)
    if not roots:
        tokenizers = sorted({key[: -len(_TOKENIZER)] for key in shapes if key.endswith(_TOKENIZER)})
        if tokenizers:
            return "; ".join(f"{root + _TOKENIZER!r} is there but the core's {root + _ANCHOR!r} is missing" for root in tokenizers)
        return f"no {MARKERS}"
    return "; ".join(f"{root + _ANCHOR!r} is there but {root + _TOKENIZER!r} is missing" for root in roots)


def detect_layout(shapes: Shapes) -> Layout:
    """The root of the RVM model in the file and whether its decoder is there."""
    keys = list(shapes)
    roots = [root for root in _roots(shapes) if root + _TOKENIZER in shapes]
    if not roots:
        raise ConversionError(f"not an RVM checkpoint: {explain(shapes)} (first keys: {', '.join(keys[:5])})")
    if len(roots) > 1:
        raise ConversionError(f"found several RVM models in one file, under {roots}; convert them separately")
    root = roots[0]
    outside = [k for k in keys if not k.startswith(root)]
    if outside:
        raise ConversionError(
            f"{len(outside)} key(s) are outside the RVM model under {root!r}: {', '.join(outside[:8])}; the file holds "
            "something else besides the model (RVM files hold the model alone)"
        )
    has_decoder = any(k[len(root):].startswith(_DECODER_PARTS) for k in keys)
    where = f"under {root!r}" if root else "at the model root"
    description = f"RVM encoder + recurrent core {where}, " + (
        "with its masked-reconstruction decoder" if has_decoder else "WITHOUT decoder weights (the model cannot reconstruct frames)"
    )
    sections = [Section("RVM encoder + recurrent core", root, "", RVM_BACKBONE_RULES)]
    if has_decoder:
        sections.append(Section("RVM decoder", root, "", RVM_DECODER_RULES))
    return Layout("rvm", description, sections, details={"root": root, "has_decoder": has_decoder})


# ----------------------------------------------------------------------------------------------
# Config inference


def _numbered(shapes: Shapes, prefix: str, what: str, probe: str) -> list[int]:
    ids = {int(m.group(1)) for k in shapes if (m := re.match(re.escape(prefix) + r"(\d+)/", k))}
    if not ids:
        raise ConversionError(f"the RVM file has no {what} ({prefix}0/... missing)")
    return check_numbered(ids, what, lambda i: f"{prefix}{i}/{probe}")


def _heads(shapes: Shapes, keys: list[str], width: int) -> tuple[int, int]:
    """(heads, head_dim) shared by every attention query kernel in ``keys``, checked.

    The conversion flattens (in, heads, head_dim) kernels: two attentions with the same total
    width but other head splits would convert to the same shapes and compute something else, so
    every one is compared here.
    """
    found: dict[tuple[int, int], str] = {}
    for key in keys:
        shape = array_shape(shapes, key, 3, what="attention query kernel (in, heads, head_dim)")
        if shape[0] != width:
            raise ConversionError(f"original array {key!r} has shape {shape}: its input width {shape[0]} is not the block width {width}")
        found.setdefault((shape[1], shape[2]), key)
    if len(found) > 1:
        listing = "; ".join(f"{key} has {heads} heads x {dim}" for (heads, dim), key in found.items())
        raise ConversionError(f"RVM attentions of one transformer must share their head split, found: {listing}")
    return next(iter(found))


def _transformer(shapes: Shapes, prefix: str, width: int, what: str) -> dict[str, Any]:
    """The :class:`RVMTransformerSpec` fields of a ``CrossAttentionTransformer`` under ``prefix``."""
    array_shape(shapes, prefix + "output_norm/scale", 1, what=f"the {what}'s output norm ({width},)")
    blocks = _numbered(shapes, prefix + "xa_blocks_", f"{what} blocks", "attention/query/kernel")
    queries = [f"{prefix}xa_blocks_{i}/{part}/query/kernel" for i in blocks for part in ("ca_attention", "attention")]
    heads, head_dim = _heads(shapes, queries, width)
    mlp = array_shape(shapes, f"{prefix}xa_blocks_0/mlp/dense_in/kernel", 2, what=f"the {what}'s MLP input (width, mlp)")
    return dict(num_layers=len(blocks), num_heads=heads, num_feats=heads * head_dim, mlp_size=mlp[1])


def infer_fields(shapes: Shapes, layout: Layout) -> dict[str, Any]:
    """Every RVMConfig field the tensors determine (rvm.md section 1)."""
    root = layout.details["root"]
    width = array_shape(shapes, root + "cls_token", 2, what="the cls token (1, D)")[1]
    kt, ph, pw, channels, conv_width = array_shape(shapes, root + _TOKENIZER, 5, what="the patch embedding (1, ph, pw, C, D)")
    if kt != 1:
        raise ConversionError(
            f"original array {root + _TOKENIZER!r} has a temporal kernel of {kt}: RVM's tokenizer embeds one frame "
            "(kernel 1 along time); this is not an RVM file"
        )
    if conv_width != width:
        raise ConversionError(f"the patch embedding's width {conv_width} is not the cls token's {width} ({root}cls_token)")
    layers = _numbered(shapes, root + "encoder/layers_", "encoder blocks", "attention/query/kernel")
    heads, head_dim = _heads(shapes, [f"{root}encoder/layers_{i}/attention/query/kernel" for i in layers], width)
    if heads * head_dim != width:
        raise ConversionError(
            f"the encoder's attention is {heads} heads x {head_dim} = {heads * head_dim} wide, not the model width {width}; "
            "fourd_hub's RVM encoder needs them equal (as every released file)"
        )
    mlp = array_shape(shapes, root + "encoder/layers_0/mlp/dense_in/kernel", 2, what="the encoder MLP input (D, mlp)")
    fields: dict[str, Any] = dict(
        hidden_size=width,
        num_hidden_layers=len(layers),
        num_attention_heads=heads,
        intermediate_size=mlp[1],
        patch_size=[ph, pw],
        num_channels=channels,
        core=_transformer(shapes, root + "rnn_core/transformer/", width, "recurrent core"),
    )
    if layout.details["has_decoder"]:
        decoder_width = array_shape(shapes, root + "mask_token", 2, what="the mask token (1, Dd)")[1]
        decoder = _transformer(shapes, root + "decoder/", decoder_width, "decoder")
        classes = array_shape(shapes, root + "delta_embedder/kernel", 2, what="the delta embedding (classes, Dd)")[0]
        pixels = array_shape(shapes, root + "detokenizer/Dense_0/kernel", 2, what="the detokenizer (Dd, ph * pw * C)")[1]
        if pixels != ph * pw * channels:
            raise ConversionError(
                f"the detokenizer outputs {pixels} values per token, not the {ph}x{pw}x{channels} = {ph * pw * channels} "
                f"pixels of the tokenizer's patch ({root}detokenizer/Dense_0/kernel)"
            )
        fields["decoder"] = dict(decoder, hidden_size=decoder_width, num_delta_classes=classes)
    else:
        fields["decoder"] = None
    return fields


#: Config fields no RVM tensor holds that change what the converted model computes or how the
#: pipelines feed it: reported as assumptions when nothing gives them (the position table's base
#: grid changes the features at every other grid).
ASSUMABLE_FIELDS = ("base_token_shape", "image_size", "num_frames", "masking_ratio")
_DEFAULT_SOURCE = "released RVM models' value"
_DEFAULT_WHAT = "the released RVM models' defaults"


def plan(shapes: Shapes, base: RVMConfig | None, what: str, claims: dict[str, Any] | None = None) -> tuple[Layout, RVMConfig, type]:
    """The layout of an RVM file, the converted config and the class to build.

    Args:
        shapes: ``{original key: shape}`` of the file.
        base: a full config the file is checked against (a catalog entry's, a preset's, a config
            object): every field is a claim, and a contradiction with the shapes is an error.
        what: what ``base`` (or ``claims``) is, for messages (``"preset 'B'"``).
        claims: without ``base``: a partial config (a dict) whose fields alone are claims; the
            rest comes from the shapes, then from the released models' values (``layout.assumptions``).
    """
    layout = detect_layout(shapes)
    return layout, resolve_config(shapes, layout, base, what, claims), RVMModel


def _fields(values: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in values.items() if k in RVMConfig.__dataclass_fields__}
    for key in ("architectures", "transformers_version", "model_type", "dtype"):
        values.pop(key, None)
    return values


def resolve_config(
    shapes: Shapes, layout: Layout, base: RVMConfig | None, what: str, claims: dict[str, Any] | None = None
) -> RVMConfig:
    """The converted model's config: tensor shapes first, then ``base``, else ``claims`` and the released defaults.

    A file without decoder keys gives ``decoder=None`` whatever ``base`` says (reported in the
    layout). Fields of :data:`ASSUMABLE_FIELDS` that neither ``base`` nor ``claims`` gives are
    appended to ``layout.assumptions``.

    Raises:
        ConversionError: a given field contradicts the shapes (each one named), or the values
            together are not a valid :class:`RVMConfig`.
    """
    inferred = infer_fields(shapes, layout)
    if base is not None:
        values = merge_nested(inferred, _fields(base.to_dict()), what)
        claims = None  # everything was claimed
    else:
        claims = dict(claims or {})
        merge_nested(inferred, claims, what)  # the fields the config names must be the file's
        fallback = _fields(RVMConfig().to_dict())
        fallback.pop("preset")  # the file is not a preset's model unless it is claimed
        values = merge_nested(inferred, merge_claims(fallback, claims), _DEFAULT_WHAT, strict=False)
        what = f"{what} with {_DEFAULT_WHAT}" if claims else _DEFAULT_WHAT
    build_config(RVMTransformerSpec, values["core"], f"{what} (core)")
    if values["decoder"] is not None:
        build_config(RVMDecoderSpec, values["decoder"], f"{what} (decoder)")
    config = build_config(RVMConfig, values, what)
    source = what if is_claimed(claims, "base_token_shape") else _DEFAULT_WHAT
    rows, cols = config.base_token_shape
    layout.description += f"; position-table base grid {rows}x{cols} from {source} (not stored in the file)"
    described = config.to_dict()
    layout.assumptions.extend(
        Assumption(name, dotted_value(described, name), _DEFAULT_SOURCE) for name in ASSUMABLE_FIELDS if not is_claimed(claims, name)
    )
    return config
