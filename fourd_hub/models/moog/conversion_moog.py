"""MooG specifics of the converter: find the layout of an original file, infer its config.

Accepted layouts (architecture.md section 1): the ``MooG`` module's parameters at the top level,
under ``pretrained_model/`` (the demo's ``EvalWrapper``), and/or under ``params/``; with or
without the reconstruction decoder (without: the converted model has ``decoder=None`` and says
so when asked to predict frames).

The file determines every width, depth and head count. The encoder strides, the token count, the
decoder's training subsample factor and the clip size are not stored in any tensor
(:data:`ASSUMABLE_FIELDS`): they come from the catalog entry, the preset or the given config. A
partial config (a dict, e.g. ``--config``) gives only the fields it names; whatever neither the
file nor it gives comes from the Ego4D preset and is reported as an
:class:`~fourd_hub.conversion.core.Assumption` (``layout.assumptions``). The layout description
names where the strides and the token count came from.
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
    optional_shape,
)
from ...conversion.tables import dense_rules, norm_rules, prefixed
from .configuration_moog import MooGConfig, MooGPixelDecoderSpec, MooGTransformerSpec
from .modeling_moog import MooGModel

# MooG (the demo notebook's modules). ``ImprovedMHDPAttention``: bias-free DenseGeneral q/k/v to
# heads, RMSNorm scales on q and k, DenseGeneral output from heads with bias.
def _moog_attention(original: str, target: str) -> tuple[KeyRule, ...]:
    return (
        KeyRule(f"{original}/dense_query/kernel", f"{target}.q_proj.weight", "dense_to_heads"),
        KeyRule(f"{original}/dense_key/kernel", f"{target}.k_proj.weight", "dense_to_heads"),
        KeyRule(f"{original}/dense_value/kernel", f"{target}.v_proj.weight", "dense_to_heads"),
        KeyRule(f"{original}/norm_query/scale", f"{target}.q_norm.weight"),
        KeyRule(f"{original}/norm_key/scale", f"{target}.k_norm.weight"),
        *dense_rules(f"{original}/dense_out", f"{target}.out_proj", "dense_from_heads"),
    )


# ``ImprovedTransformer``: Dense_0 = input projection (hidden_size), Dense_1 = output projection.
MOOG_TRANSFORMER_RULES: tuple[KeyRule, ...] = (
    *norm_rules("layer_{i}/norm_q", "layers.{i}.query_norm", bias=False),
    *_moog_attention("layer_{i}/self_att", "layers.{i}.self_attention"),
    *_moog_attention("layer_{i}/cross_att", "layers.{i}.cross_attention"),
    *norm_rules("layer_{i}/norm_attn", "layers.{i}.mlp_norm", bias=False),
    *dense_rules("layer_{i}/MLP_in", "layers.{i}.mlp.fc_in"),
    *dense_rules("layer_{i}/MLP_out", "layers.{i}.mlp.fc_out"),
    *norm_rules("norm_encoder", "final_norm", bias=False),
    *dense_rules("Dense_0", "input_proj"),
    *dense_rules("Dense_1", "output_proj"),
)

# ``SRTDecoder``: Fourier pixel queries (``dense_pe`` only with "project_add"), transformer, ``recon``.
MOOG_PIXEL_DECODER_RULES: tuple[KeyRule, ...] = (
    *dense_rules("pos_embedding/dense_pe", "position_embedding.proj"),
    *prefixed(MOOG_TRANSFORMER_RULES, "transformer/", "transformer."),
    *dense_rules("recon", "output_proj"),
)

# The ``MooG`` module: SRTEncoder (ConvNet, FourierEmbedding, transformer), state norm, the two cores, decoder.
MOOG_BACKBONE_RULES: tuple[KeyRule, ...] = (
    *dense_rules("encoder/backbone/Conv_{i}", "encoder.convs.{i}", "conv"),
    *norm_rules("encoder/backbone/LayerNorm_0", "encoder.conv_norm", bias=False),
    *dense_rules("encoder/pos_embedding/dense_pe", "encoder.position_embedding.proj"),
    *prefixed(MOOG_TRANSFORMER_RULES, "encoder/transformer/", "encoder.transformer."),
    *norm_rules("state_layer_norm", "state_norm", bias=False),
    *prefixed(MOOG_TRANSFORMER_RULES, "predictor_sa/", "predictor."),
    *prefixed(MOOG_TRANSFORMER_RULES, "predictor_ca/", "corrector."),
    *prefixed(MOOG_PIXEL_DECODER_RULES, "decoder/", "decoder."),
)

_ANCHOR = "encoder/backbone/Conv_0/kernel"
_CORE_MARKER = "predictor_sa/"

Shapes = Mapping[str, tuple[int, ...]]


#: What :func:`detect` looks for, for messages when no family recognises a file.
MARKERS = f"key ending with {_ANCHOR!r} beside a {_CORE_MARKER!r} core"


def detect(shapes: Shapes) -> bool:
    """Whether the file holds a MooG model: its positive markers are the ConvNet encoder
    (``encoder/backbone/Conv_0/``) beside the recurrent core (``predictor_sa/``)."""
    roots = {key[: -len(_ANCHOR)] for key in shapes if key.endswith(_ANCHOR)}
    return any(key.startswith(root + _CORE_MARKER) for root in roots for key in shapes)


def explain(shapes: Shapes) -> str:
    """Why :func:`detect` does not recognise ``shapes``, naming what is missing."""
    roots = sorted({key[: -len(_ANCHOR)] for key in shapes if key.endswith(_ANCHOR)})
    if not roots:
        # The core is there but not the encoder's first conv: name the anchor the file lacks.
        cores = sorted({key[: key.index(_CORE_MARKER)] for key in shapes if _CORE_MARKER in key})
        if cores:
            return "; ".join(f"the {root + _CORE_MARKER!r} core is there but {root + _ANCHOR!r} is missing" for root in cores)
        return f"no {MARKERS}"
    return "; ".join(f"{root + _ANCHOR!r} is there but the {root + _CORE_MARKER!r} core is missing" for root in roots)


#: The preset that supplies what neither the file nor a partial config gives.
DEFAULT_PRESET = "ego4d"
_DEFAULT_SOURCE = "Ego4D preset default"
_DEFAULT_WHAT = "the Ego4D preset (default)"

#: Config fields no MooG tensor holds that change what the converted model computes or how the
#: pipelines feed it; reported as assumptions when they come from :data:`DEFAULT_PRESET`. (The
#: original code's constants, such as the norm epsilons, are not assumptions.)
ASSUMABLE_FIELDS = ("num_tokens", "encoder_strides", "num_frames", "image_size", "decoder.subsample_factor")


def plan(
    shapes: Shapes, base: MooGConfig | None, what: str, claims: dict[str, Any] | None = None
) -> tuple[Layout, MooGConfig, type]:
    """The layout of a MooG file, the converted config and the class to build.

    Args:
        shapes: ``{original key: shape}`` of the file.
        base: a full config the file is checked against (a catalog entry's, a preset's, a config
            object): every field is a claim, and a contradiction with the shapes is an error.
        what: what ``base`` (or ``claims``) is, for messages (``"preset 'ego4d'"``).
        claims: without ``base``: a partial config (a dict) whose fields alone are claims; the
            rest comes from the shapes, then from the Ego4D preset (``layout.assumptions``).
    """
    layout = detect_layout(shapes)
    config, model_class = resolve_config(shapes, layout, base, what, claims)
    return layout, config, model_class


def detect_layout(shapes: Shapes) -> Layout:
    keys = list(shapes)
    roots = sorted({key[: -len(_ANCHOR)] for key in keys if key.endswith(_ANCHOR)})
    roots = [root for root in roots if any(k.startswith(root + _CORE_MARKER) for k in keys)]
    if not roots:
        raise ConversionError(
            f"not a MooG checkpoint: no key ends with {_ANCHOR!r} next to a {_CORE_MARKER!r} core "
            f"(first keys: {', '.join(keys[:5])})"
        )
    if len(roots) > 1:
        raise ConversionError(f"found several MooG models in one file, under {roots}; convert them separately")
    root = roots[0]
    outside = [k for k in keys if not k.startswith(root)]
    if outside:
        raise ConversionError(
            f"{len(outside)} key(s) are outside the MooG model under {root!r}: {', '.join(outside[:8])}. Readout heads "
            "convert on their own (their own file) and attach with MooGFor*.from_backbone"
        )
    has_decoder = any(k.startswith(root + "decoder/") for k in keys)
    where = f"under {root!r}" if root else "at the top level"
    description = f"MooG backbone {where}, " + (
        "with its reconstruction decoder" if has_decoder else "WITHOUT decoder weights (the model cannot predict frames)"
    )
    return Layout(
        "moog", description, [Section("MooG backbone", root, "", MOOG_BACKBONE_RULES)],
        details={"root": root, "has_decoder": has_decoder},
    )


def _layer_ids(shapes: Shapes, prefix: str) -> list[int]:
    ids = {int(m.group(1)) for k in shapes if (m := re.match(re.escape(prefix) + r"layer_(\d+)/", k))}
    return check_numbered(ids, f"MooG blocks under {prefix!r}", lambda i: f"{prefix}layer_{i}/MLP_in/kernel")


def infer_transformer(shapes: Shapes, prefix: str) -> dict[str, Any]:
    """The :class:`MooGTransformerSpec` fields an ``ImprovedTransformer``'s tensors determine.

    With zero blocks, only ``num_layers`` and ``hidden_size`` are known (qkv size, heads and MLP
    width then come from the given config).
    """
    array_shape(shapes, prefix + "norm_encoder/scale", 1, what="a MooG transformer's final norm (D,)")
    layers = _layer_ids(shapes, prefix)
    fields: dict[str, Any] = {"num_layers": len(layers)}
    dense_in = optional_shape(shapes, prefix + "Dense_0/kernel", 2, what="input projection (in, D)")
    fields["hidden_size"] = dense_in[1] if dense_in is not None else None
    if layers:
        # Any self-attention array makes it a self-attention block (then its query must be there).
        has_self = any(key.startswith(prefix + "layer_0/self_att/") for key in shapes)
        attention = "self_att" if has_self else "cross_att"
        query = array_shape(
            shapes, f"{prefix}layer_0/{attention}/dense_query/kernel", 3, what="attention query (in, heads, head_dim)"
        )
        fields.update(
            num_heads=query[1],
            qkv_size=query[1] * query[2],
            mlp_size=array_shape(shapes, prefix + "layer_0/MLP_in/kernel", 2, what="MLP input (D, mlp)")[1],
            cross_attention_only=not has_self,
        )
    return fields


def _input_width(shapes: Shapes, prefix: str) -> int:
    """Width of the tokens entering an ImprovedTransformer (before its optional input Dense)."""
    dense_in = optional_shape(shapes, prefix + "Dense_0/kernel", 2, what="input projection (in, D)")
    if dense_in is not None:
        return dense_in[0]
    return array_shape(shapes, prefix + "norm_encoder/scale", 1, what="a MooG transformer's final norm (D,)")[0]


def _fourier_bases(extra_width: int, what: str, source: str) -> int:
    bases, remainder = divmod(extra_width, 4)
    if remainder or bases < 1:
        raise ConversionError(
            f"{what}: {extra_width} position channels ({source}) is not 4 * Fourier bases; an array is missing or "
            "has the wrong shape"
        )
    return bases


def infer_fields(shapes: Shapes, layout: Layout) -> dict[str, Any]:
    """Every MooGConfig field the tensors determine (nested transformer specs partially)."""
    root = layout.details["root"]
    convs = sorted(
        int(m.group(1)) for k in shapes if (m := re.match(re.escape(root) + r"encoder/backbone/Conv_(\d+)/kernel$", k))
    )
    check_numbered(convs, "encoder convs", lambda i: f"{root}encoder/backbone/Conv_{i}/kernel")
    kernels = [
        array_shape(shapes, f"{root}encoder/backbone/Conv_{i}/kernel", 4, what="encoder conv (kh, kw, in, out)") for i in convs
    ]
    hidden_size = array_shape(shapes, root + "state_layer_norm/scale", 1, what="state norm (D,)")[0]
    conv_out = kernels[-1][3]
    fields: dict[str, Any] = dict(
        hidden_size=hidden_size,
        num_channels=kernels[0][2],
        encoder_kernel_size=kernels[0][0],
        encoder_conv_features=[k[3] for k in kernels],
    )
    encoder_pe = optional_shape(shapes, root + "encoder/pos_embedding/dense_pe/kernel", 2, what="encoder position projection (in, D)")
    if encoder_pe is not None:
        source = f"the input of {root}encoder/pos_embedding/dense_pe/kernel"
        fields.update(encoder_position_update="project_add", encoder_fourier_bases=_fourier_bases(encoder_pe[0], "encoder", source))
    else:
        width = _input_width(shapes, root + "encoder/transformer/")
        source = (
            f"the encoder transformer's input width {width} ({root}encoder/transformer/Dense_0/kernel, else its "
            f"norm_encoder/scale) minus the {conv_out} channels of {root}encoder/backbone/Conv_{convs[-1]}/kernel"
        )
        fields.update(encoder_position_update="concat", encoder_fourier_bases=_fourier_bases(width - conv_out, "encoder", source))
    fields["encoder_transformer"] = infer_transformer(shapes, root + "encoder/transformer/")
    fields["predictor"] = infer_transformer(shapes, root + "predictor_sa/")
    fields["corrector"] = infer_transformer(shapes, root + "predictor_ca/")
    if layout.details["has_decoder"]:
        prefix = root + "decoder/"
        decoder = infer_transformer(shapes, prefix + "transformer/")
        recon = array_shape(shapes, prefix + "recon/kernel", 2, what="the decoder's recon Dense (in, channels)")
        decoder_pe = optional_shape(shapes, prefix + "pos_embedding/dense_pe/kernel", 2, what="decoder position projection (in, D)")
        if decoder_pe is not None:
            source = f"the input of {prefix}pos_embedding/dense_pe/kernel"
            decoder.update(position_update="project_add", fourier_bases=_fourier_bases(decoder_pe[0], "decoder", source))
        else:
            source = (
                f"the input {recon[0]} of {prefix}recon/kernel minus the state width {hidden_size} of "
                f"{root}state_layer_norm/scale"
            )
            decoder.update(position_update="concat", fourier_bases=_fourier_bases(recon[0] - hidden_size, "decoder", source))
        decoder["output_channels"] = recon[1]
        fields["decoder"] = decoder
    else:
        fields["decoder"] = None
    return fields


def resolve_config(
    shapes: Shapes, layout: Layout, base: MooGConfig | None, what: str, claims: dict[str, Any] | None = None
) -> tuple[MooGConfig, type]:
    """The converted model's config: tensor shapes first, then ``base``, else ``claims`` and the Ego4D preset.

    With ``base`` every field it sets is checked against the file. Without, the fields ``claims``
    names are checked the same way, and those of :data:`ASSUMABLE_FIELDS` that neither gives come
    from the Ego4D preset and are appended to ``layout.assumptions``.

    Raises:
        ConversionError: a claimed field contradicts the shapes (each one named), or the values
            together are not a valid :class:`MooGConfig`.
    """
    inferred, claimed_by = infer_fields(shapes, layout), what
    if base is not None:
        values = merge_nested(inferred, _fields(base.to_dict()), what)
        claims = None  # everything was claimed
    else:
        claims = dict(claims or {})
        merge_nested(inferred, claims, what)  # the fields the config names must be the file's
        fallback = _fields(MooGConfig.from_preset(DEFAULT_PRESET).to_dict())
        fallback.pop("preset")  # the file is not the preset's model
        values = merge_nested(inferred, merge_claims(fallback, claims), _DEFAULT_WHAT, strict=False)
        what = f"{what} with {_DEFAULT_WHAT}" if claims else _DEFAULT_WHAT
    for key in ("architectures", "transformers_version", "model_type", "dtype"):
        values.pop(key, None)
    # Fill spec fields a zero-layer transformer does not determine from the base, then validate.
    for name in ("encoder_transformer", "predictor", "corrector"):
        build_config(MooGTransformerSpec, values[name], f"{what} ({name})")
    if values["decoder"] is not None:
        build_config(MooGPixelDecoderSpec, values["decoder"], f"{what} (decoder)")
    config = build_config(MooGConfig, values, what)
    source = {name: claimed_by if is_claimed(claims, name) else _DEFAULT_WHAT for name in ("encoder_strides", "num_tokens")}
    strides, tokens = f"encoder strides {config.encoder_strides}", f"{config.num_tokens} state tokens"
    if source["encoder_strides"] == source["num_tokens"]:
        layout.description += f"; {strides} and {tokens} from {source['num_tokens']} (not stored in the file)"
    else:
        layout.description += (
            f"; {strides} from {source['encoder_strides']} and {tokens} from {source['num_tokens']} (not stored in the file)"
        )
    described = config.to_dict()
    layout.assumptions.extend(
        Assumption(name, dotted_value(described, name), _DEFAULT_SOURCE)
        for name in ASSUMABLE_FIELDS
        if not is_claimed(claims, name) and dotted_value(described, name) is not None
    )
    return config, MooGModel


def _fields(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in MooGConfig.__dataclass_fields__}
