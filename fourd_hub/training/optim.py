"""The one weight-decay rule of both trainers (pretraining and readouts).

Paper A.1: AdamW "omitting from weight decay the learned positional embeddings and layer norm
parameters". Biases are exempt too (as everywhere since BERT), and so are the other learned
position tables: readout temporal embeddings and the 4DS latent decoding grid.
"""

from __future__ import annotations

from torch import nn

NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._NormBase)
POSITION_EMBEDDING_NAMES = ("position_embedding", "temporal_embedding", "temporal_tile_embedding", "latent_tokens")


def no_weight_decay_parameter_names(model: nn.Module) -> set[str]:
    """Names of the parameters AdamW must not decay.

    Exempt: 0- or 1-dimensional parameters (biases, norm scales and offsets, q/k norm scales),
    every parameter of a normalisation module, and learned position tables
    (:data:`POSITION_EMBEDDING_NAMES`). Weight matrices and learned readout queries are decayed.
    """
    exempt = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{param_name}" if module_name else param_name
            if param.ndim <= 1 or isinstance(module, NORM_TYPES) or param_name in POSITION_EMBEDDING_NAMES:
                exempt.add(full)
    return exempt


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups of the trainable parameters: decayed, and exempt (weight decay 0)."""
    exempt = no_weight_decay_parameter_names(model)
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if name in exempt else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
