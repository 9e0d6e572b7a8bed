"""Readout heads converted on their own (the released MooG point and box heads).

A head file (keys ``attention_readout/``, ``query_initializer/``, ``temporal_tile_posenc/``) holds
no backbone. It converts to a small directory: ``readout_head.json`` (the
:class:`~fourd_hub.readout.ReadoutConfig`, the feature width and the frame count it reads) and
``model.safetensors`` (the head's parameters). Any backbone whose features have that width takes it:
``MooGForPointTracking.from_backbone("moog-ego4d", head="moog-ego4d-point-tracking")``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from ..readout import ReadoutConfig, TrackingReadoutHead
from .core import ConversionError, Layout, Section
from .fourds import infer_readout_fields, merge_fields
from .npz import CheckpointError
from .tables import TRACKING_HEAD_RULES

HEAD_CONFIG_NAME = "readout_head.json"
HEAD_FORMAT = "fourd_hub.readout_head"
_TRACKING_ANCHOR = "attention_readout/temporal_posenc/embeddings"

Shapes = Mapping[str, tuple[int, ...]]


@dataclass
class ReadoutHeadConfig:
    """What a standalone head directory records besides its weights."""

    readout: dict[str, Any]
    feature_dim: int
    num_frames: int
    family: str | None = None
    architectures: list[str] | None = None
    dtype: Any = None

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        values = {
            "format": HEAD_FORMAT,
            "family": self.family,
            "feature_dim": self.feature_dim,
            "num_frames": self.num_frames,
            "readout": self.readout,
            "architectures": self.architectures,
            "dtype": None if self.dtype is None else str(self.dtype).replace("torch.", ""),
        }
        Path(directory, HEAD_CONFIG_NAME).write_text(json.dumps(values, indent=2) + "\n")


class ReadoutHeadModel(TrackingReadoutHead):
    """A tracking head built from a :class:`ReadoutHeadConfig` (what a head file converts into)."""

    def __init__(self, config: ReadoutHeadConfig):
        super().__init__(ReadoutConfig.for_task(config.readout["task"], config.readout), config.feature_dim, config.num_frames)


def is_head_only(shapes: Shapes) -> bool:
    """A file with a tracking readout and nothing that looks like a backbone."""
    keys = list(shapes)
    has_head = any(key.endswith(_TRACKING_ANCHOR) for key in keys)
    has_backbone = any("encoder/" in key or "processor/" in key or "predictor_" in key for key in keys)
    return has_head and not has_backbone


def detect_layout(shapes: Shapes) -> Layout:
    roots = sorted({key[: -len(_TRACKING_ANCHOR)] for key in shapes if key.endswith(_TRACKING_ANCHOR)})
    if len(roots) != 1:
        raise ConversionError(f"expected one tracking readout in the file, found them under {roots}")
    root = roots[0]
    queries_in = shapes.get(root + "query_initializer/layers_1/Dense_0/kernel")
    if queries_in is None:
        raise ConversionError(f"the readout under {root!r} has no query initialiser; only tracking heads convert on their own")
    description = f"standalone tracking readout under {root!r} (no backbone)"
    return Layout("head", description, [Section("tracking readout", root, "", TRACKING_HEAD_RULES)], details={"root": root})


def resolve_config(shapes: Shapes, layout: Layout, base_readout: dict[str, Any] | None, family: str | None) -> ReadoutHeadConfig:
    """Task (points/boxes from the query width), ReadoutConfig fields from the shapes, merged with ``base_readout``."""
    root = layout.details["root"]
    base = dict(base_readout or {})
    bases = base.get("query_fourier_bases", 16)
    queries_in = shapes[root + "query_initializer/layers_1/Dense_0/kernel"][0]
    coord_dim = queries_in / (2 * bases)
    if coord_dim not in (2, 4):
        raise ConversionError(
            f"the tracking head embeds {queries_in} query features: neither points nor boxes with {bases} Fourier bases"
        )
    task = "points" if coord_dim == 2 else "boxes"
    if base.get("task", task) != task:
        raise ConversionError(f"the file holds a {task} head, the given config describes a {base['task']} head")
    inferred = infer_readout_fields(shapes, root, "tracking", task, base)
    readout = ReadoutConfig.for_task(task, merge_fields(inferred, base, "the given readout config"))
    feature_dim = shapes[root + "attention_readout/LayerNorm_0/scale"][0]
    return ReadoutHeadConfig(readout=readout.to_dict(), feature_dim=feature_dim, num_frames=readout.num_frames, family=family)


def load_readout_head(directory: str | os.PathLike) -> tuple[ReadoutConfig, int, dict[str, torch.Tensor]]:
    """Read a converted head directory: (readout config, feature width, state dict of the head)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    config_path = directory / HEAD_CONFIG_NAME
    if not config_path.is_file():
        hint = " (it is a full model directory: load it with from_pretrained)" if (directory / "config.json").is_file() else ""
        raise CheckpointError(f"{directory} is not a converted readout head: {HEAD_CONFIG_NAME} is missing{hint}")
    try:
        values = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{config_path} is not valid JSON: {error}") from None
    if not isinstance(values, dict) or values.get("format") != HEAD_FORMAT:
        raise CheckpointError(f"{config_path} is not a fourd_hub readout-head description")
    readout = ReadoutConfig.for_task(values["readout"]["task"], values["readout"])
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"{directory} has no .safetensors weights")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            state.update(load_file(file))
        except Exception as error:  # safetensors raises its own error types on corrupt files
            raise CheckpointError(f"cannot read {file}: {error}") from None
    return readout, int(values["feature_dim"]), state


__all__ = [
    "ReadoutHeadConfig",
    "ReadoutHeadModel",
    "detect_layout",
    "is_head_only",
    "load_readout_head",
    "resolve_config",
]
