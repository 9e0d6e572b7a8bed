"""Declarative key tables: original Flax paths -> fourd_hub parameter names.

Paths are relative to the root of the module in the original file (a :class:`~.core.Section`
supplies the prefixes). ``{i}`` stands for a layer index. Transforms are named in
:data:`~.core.TRANSFORMS`.
"""

from __future__ import annotations

from .core import KeyRule


def prefixed(rules: tuple[KeyRule, ...], original: str, target: str) -> tuple[KeyRule, ...]:
    """The same rules under an extra original and target prefix."""
    return tuple(KeyRule(original + r.original, target + r.target, r.transform) for r in rules)


def _norm(original: str, target: str, bias: bool = True) -> tuple[KeyRule, ...]:
    rules = (KeyRule(f"{original}/scale", f"{target}.weight"),)
    return rules + ((KeyRule(f"{original}/bias", f"{target}.bias"),) if bias else ())


def _dense(original: str, target: str, kernel: str = "dense", bias: str = "identity") -> tuple[KeyRule, ...]:
    return (KeyRule(f"{original}/kernel", f"{target}.weight", kernel), KeyRule(f"{original}/bias", f"{target}.bias", bias))


# 4DS backbone (``Model(encoder=Tokenizer, processor=GeneralizedTransformer)``).
FOURDS_BACKBONE_RULES: tuple[KeyRule, ...] = (
    KeyRule("encoder/patch_embedding/Conv_0/kernel", "embeddings.patch_embedding.weight", "conv"),
    KeyRule("encoder/patch_embedding/Conv_0/bias", "embeddings.patch_embedding.bias"),
    KeyRule("encoder/posenc/embeddings", "embeddings.position_embedding"),
    *_norm("processor/layers_{i}/attention_norm", "layers.{i}.attention_norm"),
    *_dense("processor/layers_{i}/attention/query", "layers.{i}.attention.q_proj", "dense_to_heads", "heads_bias"),
    *_dense("processor/layers_{i}/attention/key", "layers.{i}.attention.k_proj", "dense_to_heads", "heads_bias"),
    *_dense("processor/layers_{i}/attention/value", "layers.{i}.attention.v_proj", "dense_to_heads", "heads_bias"),
    *_dense("processor/layers_{i}/attention/out", "layers.{i}.attention.out_proj", "dense_from_heads"),
    *_norm("processor/layers_{i}/mlp_norm", "layers.{i}.mlp_norm"),
    *_dense("processor/layers_{i}/mlp/dense_in", "layers.{i}.mlp.fc_in"),
    *_dense("processor/layers_{i}/mlp/dense_out", "layers.{i}.mlp.fc_out"),
)

# ``AttentionReadout`` parts common to both query modes.
_READOUT_COMMON: tuple[KeyRule, ...] = (
    *_norm("LayerNorm_0", "input_norm"),
    KeyRule("temporal_posenc/embeddings", "temporal_embedding"),
    *_dense("key_embedding", "key_proj", "dense_to_heads", "heads_bias"),
    *_dense("value_embedding", "value_proj", "dense_to_heads", "heads_bias"),
    *_norm("LayerNorm_1", "mlp_norm"),
    *_dense("MLP_0/Dense_0", "mlp.fc_in"),
    *_dense("MLP_0/Dense_1", "mlp.fc_out"),
)

# Learned queries (depth, camera pose, classification): Flax numbers the Dense layers it creates,
# so Dense_0 is the post-attention projection and Dense_1 the output.
LEARNED_QUERY_READOUT_RULES: tuple[KeyRule, ...] = (
    *_READOUT_COMMON,
    KeyRule("query", "query", "merge_heads"),
    *_dense("Dense_0", "attention_out_proj"),
    *_dense("Dense_1", "output_proj"),
)

# Given queries (tracking): an extra Dense_0 projects the queries first, shifting the numbering.
GIVEN_QUERY_READOUT_RULES: tuple[KeyRule, ...] = (
    *_READOUT_COMMON,
    *_dense("Dense_0", "query_proj"),
    *_dense("Dense_1", "attention_out_proj"),
    *_dense("Dense_2", "output_proj"),
)

# ``TrackingReadoutWrapper``: query initialiser (Sequential[Fourier, MLP] -> layers_1 is the MLP),
# optional temporal tiling embedding, and the attention readout.
TRACKING_HEAD_RULES: tuple[KeyRule, ...] = (
    *_dense("query_initializer/layers_1/Dense_0", "query_initializer.fc_in"),
    *_dense("query_initializer/layers_1/Dense_1", "query_initializer.fc_out"),
    KeyRule("temporal_tile_posenc/embeddings", "temporal_tile_embedding"),
    *prefixed(GIVEN_QUERY_READOUT_RULES, "attention_readout/", "readout."),
)

LEARNED_QUERY_HEAD_RULES: tuple[KeyRule, ...] = prefixed(LEARNED_QUERY_READOUT_RULES, "", "readout.")


# MooG (the demo notebook's modules). ``ImprovedMHDPAttention``: bias-free DenseGeneral q/k/v to
# heads, RMSNorm scales on q and k, DenseGeneral output from heads with bias.
def _moog_attention(original: str, target: str) -> tuple[KeyRule, ...]:
    return (
        KeyRule(f"{original}/dense_query/kernel", f"{target}.q_proj.weight", "dense_to_heads"),
        KeyRule(f"{original}/dense_key/kernel", f"{target}.k_proj.weight", "dense_to_heads"),
        KeyRule(f"{original}/dense_value/kernel", f"{target}.v_proj.weight", "dense_to_heads"),
        KeyRule(f"{original}/norm_query/scale", f"{target}.q_norm.weight"),
        KeyRule(f"{original}/norm_key/scale", f"{target}.k_norm.weight"),
        *_dense(f"{original}/dense_out", f"{target}.out_proj", "dense_from_heads"),
    )


# ``ImprovedTransformer``: Dense_0 = input projection (hidden_size), Dense_1 = output projection.
MOOG_TRANSFORMER_RULES: tuple[KeyRule, ...] = (
    *_norm("layer_{i}/norm_q", "layers.{i}.query_norm", bias=False),
    *_moog_attention("layer_{i}/self_att", "layers.{i}.self_attention"),
    *_moog_attention("layer_{i}/cross_att", "layers.{i}.cross_attention"),
    *_norm("layer_{i}/norm_attn", "layers.{i}.mlp_norm", bias=False),
    *_dense("layer_{i}/MLP_in", "layers.{i}.mlp.fc_in"),
    *_dense("layer_{i}/MLP_out", "layers.{i}.mlp.fc_out"),
    *_norm("norm_encoder", "final_norm", bias=False),
    *_dense("Dense_0", "input_proj"),
    *_dense("Dense_1", "output_proj"),
)

# ``SRTDecoder``: Fourier pixel queries (``dense_pe`` only with "project_add"), transformer, ``recon``.
MOOG_PIXEL_DECODER_RULES: tuple[KeyRule, ...] = (
    *_dense("pos_embedding/dense_pe", "position_embedding.proj"),
    *prefixed(MOOG_TRANSFORMER_RULES, "transformer/", "transformer."),
    *_dense("recon", "output_proj"),
)

# The ``MooG`` module: SRTEncoder (ConvNet, FourierEmbedding, transformer), state norm, the two cores, decoder.
MOOG_BACKBONE_RULES: tuple[KeyRule, ...] = (
    *_dense("encoder/backbone/Conv_{i}", "encoder.convs.{i}", "conv"),
    *_norm("encoder/backbone/LayerNorm_0", "encoder.conv_norm", bias=False),
    *_dense("encoder/pos_embedding/dense_pe", "encoder.position_embedding.proj"),
    *prefixed(MOOG_TRANSFORMER_RULES, "encoder/transformer/", "encoder.transformer."),
    *_norm("state_layer_norm", "state_norm", bias=False),
    *prefixed(MOOG_TRANSFORMER_RULES, "predictor_sa/", "predictor."),
    *prefixed(MOOG_TRANSFORMER_RULES, "predictor_ca/", "corrector."),
    *prefixed(MOOG_PIXEL_DECODER_RULES, "decoder/", "decoder."),
)
