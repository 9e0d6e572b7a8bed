"""The RVM cases of the reference directory: their configs, built from cases.json alone (nothing hard-coded)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def rvm_cases(cases: dict) -> dict[str, dict]:
    """Every ``"model": "RVM"`` case of cases.json (held-out cases of other shapes included)."""
    return {name: case for name, case in cases.items() if case.get("model") == "RVM"}


def rvm_config_kwargs(case: dict) -> dict[str, Any]:
    """RVMConfig fields of a cases.json RVM case."""
    encoder, core, decoder = case["encoder"], case["core"], case["decoder"]
    return dict(
        hidden_size=case["width"],
        num_hidden_layers=encoder["num_layers"],
        num_attention_heads=encoder["num_heads"],
        intermediate_size=encoder["mlp_size"],
        patch_size=case["patch_size"],
        base_token_shape=case["base_token_shape"],
        num_frames=case["num_frames"],
        image_size=case["image_size"],
        core=dict(num_layers=core["num_layers"], num_heads=core["num_heads"], num_feats=core["num_feats"], mlp_size=core["mlp_dim"]),
        decoder=dict(
            num_layers=decoder["num_layers"], num_heads=decoder["num_heads"], num_feats=decoder["num_feats"],
            mlp_size=decoder["mlp_dim"], hidden_size=decoder["emb_dim"], num_delta_classes=decoder["num_delta_classes"],
        ),
        state_layer_norm_eps=core["state_layer_norm_epsilon"],
        layer_norm_eps=encoder["layer_norm_epsilon"],
        masking_ratio=case["masking_ratio"],
    )


def channels_first(array: np.ndarray) -> torch.Tensor:
    """A reference video (B, T, H, W, C) as ``pixel_values_videos`` (B, T, C, H, W)."""
    return torch.from_numpy(array).permute(0, 1, 4, 2, 3)


def max_error(actual: torch.Tensor, expected: np.ndarray) -> float:
    """max |actual - expected| in float64, shapes checked."""
    assert tuple(actual.shape) == expected.shape, f"shape {tuple(actual.shape)} != {expected.shape}"
    return float(np.abs(actual.detach().double().numpy() - expected.astype(np.float64)).max())
