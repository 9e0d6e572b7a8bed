"""Declarative key tables shared by the families: the readout heads, and helpers for writing a family's table.

Paths are relative to the root of the module in the original file (a :class:`~.core.Section`
supplies the prefixes). ``{i}`` stands for a layer index. Transforms are named in
:data:`~.core.TRANSFORMS`.
"""

from __future__ import annotations

from .core import KeyRule


def prefixed(rules: tuple[KeyRule, ...], original: str, target: str) -> tuple[KeyRule, ...]:
    """The same rules under an extra original and target prefix."""
    return tuple(KeyRule(original + r.original, target + r.target, r.transform) for r in rules)


def norm_rules(original: str, target: str, bias: bool = True) -> tuple[KeyRule, ...]:
    rules = (KeyRule(f"{original}/scale", f"{target}.weight"),)
    return rules + ((KeyRule(f"{original}/bias", f"{target}.bias"),) if bias else ())


def dense_rules(original: str, target: str, kernel: str = "dense", bias: str = "identity") -> tuple[KeyRule, ...]:
    return (KeyRule(f"{original}/kernel", f"{target}.weight", kernel), KeyRule(f"{original}/bias", f"{target}.bias", bias))


# ``AttentionReadout`` parts common to both query modes.
_READOUT_COMMON: tuple[KeyRule, ...] = (
    *norm_rules("LayerNorm_0", "input_norm"),
    KeyRule("temporal_posenc/embeddings", "temporal_embedding"),
    *dense_rules("key_embedding", "key_proj", "dense_to_heads", "heads_bias"),
    *dense_rules("value_embedding", "value_proj", "dense_to_heads", "heads_bias"),
    *norm_rules("LayerNorm_1", "mlp_norm"),
    *dense_rules("MLP_0/Dense_0", "mlp.fc_in"),
    *dense_rules("MLP_0/Dense_1", "mlp.fc_out"),
)

# Learned queries (depth, camera pose, classification): Flax numbers the Dense layers it creates,
# so Dense_0 is the post-attention projection and Dense_1 the output.
LEARNED_QUERY_READOUT_RULES: tuple[KeyRule, ...] = (
    *_READOUT_COMMON,
    KeyRule("query", "query", "merge_heads"),
    *dense_rules("Dense_0", "attention_out_proj"),
    *dense_rules("Dense_1", "output_proj"),
)

# Given queries (tracking): an extra Dense_0 projects the queries first, shifting the numbering.
GIVEN_QUERY_READOUT_RULES: tuple[KeyRule, ...] = (
    *_READOUT_COMMON,
    *dense_rules("Dense_0", "query_proj"),
    *dense_rules("Dense_1", "attention_out_proj"),
    *dense_rules("Dense_2", "output_proj"),
)

# ``TrackingReadoutWrapper``: query initialiser (Sequential[Fourier, MLP] -> layers_1 is the MLP),
# optional temporal tiling embedding, and the attention readout.
TRACKING_HEAD_RULES: tuple[KeyRule, ...] = (
    *dense_rules("query_initializer/layers_1/Dense_0", "query_initializer.fc_in"),
    *dense_rules("query_initializer/layers_1/Dense_1", "query_initializer.fc_out"),
    KeyRule("temporal_tile_posenc/embeddings", "temporal_tile_embedding"),
    *prefixed(GIVEN_QUERY_READOUT_RULES, "attention_readout/", "readout."),
)

LEARNED_QUERY_HEAD_RULES: tuple[KeyRule, ...] = prefixed(LEARNED_QUERY_READOUT_RULES, "", "readout.")
