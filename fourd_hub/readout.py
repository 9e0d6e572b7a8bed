"""Readout heads shared by every backbone (4DS, MooG, RVM): attention readout, task heads, losses, task models.

All heads read backbone features of shape (B, T, N, C) (T frames, N tokens per frame) and know
nothing else about the backbone. They follow the original ``AttentionReadout`` of
representations4d (architecture.md section 4):

1. LayerNorm over C, plus a learned temporal embedding (T, 1, C): heads are tied to T frames.
2. Keys and values: Linear(C -> num_params) with bias, split into heads.
3. Queries: learned (Q, num_params) or given query vectors through Linear(num_params).
4. Attention; ``tok = query + Linear(attn)``; ``tok = tok + MLP(LN(tok))``; ``out = Linear(tok)``.

Task heads wrap it: dense depth (one learned query per output patch), point and box tracking
(Fourier-embedded query coordinates, temporal tiling), camera pose (first + last frame,
12 outputs projected to SO(3)) and video classification. Coordinates inside the heads are
normalised to [0, 1] in the head's own order (``ReadoutConfig.coordinate_order``); task models
convert from and to pixel (x, y) at the public API.

The task models themselves are written once here too: :class:`ReadoutTaskModel` (config copy,
readout resolution, backbone + head) and one mixin per task (head, forward, loss, typed output),
e.g. :class:`PointTrackingTask`; a family's ``<Family>For<Task>`` is the mixin plus the family's
base, which only builds the backbone and says what the head reads.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from transformers import initialization as init
from transformers.utils import ModelOutput

from .config_checks import check_field_types
from .layers import FLAX_NORM_EPS, MLP, check_sequence, fourier_features, multi_head_attention

READOUT_TASKS = ("depth", "points", "boxes", "camera_pose", "classification")


@dataclass
class ReadoutConfig:
    """Hyper-parameters of one readout head. Stored in a model config as a plain dict (``readout``).

    Attributes:
        task: one of ``"depth"``, ``"points"``, ``"boxes"``, ``"camera_pose"``, ``"classification"``.
        num_params: width of queries, keys and values (``num_heads * head_dim``).
        num_heads: attention heads.
        num_frames: frames the head reads (length of its temporal embedding); ``None`` means the
            backbone's frame count. Released heads use 16.
        mlp_ratio: hidden width of the residual MLP, in multiples of ``num_params``.
        layer_norm_eps: epsilon of both LayerNorms (Flax default 1e-6).
        decoding_patch_size: depth only; (t, h, w) output patch predicted by each learned query.
        query_fourier_bases: tracking only; Fourier octaves of the query coordinates.
        query_mlp_sizes: tracking only; (hidden, out) widths of the query-initialiser MLP.
        temporal_tile_size: tracking only; copies of each query (each predicts
            ``num_frames // temporal_tile_size`` frames). Points: 8, boxes: 1.
        coordinate_order: order of the normalised coordinates inside the head: ``"xy"`` (points) or
            ``"yx"``; for boxes ``"xyxy"`` or ``"yxyx"`` (the MooG demo feeds Waymo boxes as y1, x1, y2, x2).
        output_activation: ``"sigmoid"`` (points) or ``None`` applied to predicted coordinates.
        predict_visibility: points only; two extra logits per frame (visibility, certainty).
        use_certainty: points only; whether the second logit (certainty) exists.
        certainty_threshold: a point is visible when sigmoid(vis) * sigmoid(cert) > threshold.
        num_classes: classification only; number of classes.
        depth_range: depth only; (min, max) metres outside which targets are masked in the loss.
        huber_delta: points only; Huber delta in normalised units (4 px at 256 px).
        certainty_radius: points only; a prediction within this normalised distance is "certain".
        loss_weights: points only; weights of (position, visibility, certainty) losses.
    """

    task: str = "depth"
    num_params: int = 1024
    num_heads: int = 16
    num_frames: int | None = None
    mlp_ratio: int = 4
    layer_norm_eps: float = FLAX_NORM_EPS
    decoding_patch_size: tuple[int, int, int] = (2, 8, 8)
    query_fourier_bases: int = 16
    query_mlp_sizes: tuple[int, int] = (512, 512)
    temporal_tile_size: int = 1
    coordinate_order: str = "xy"
    output_activation: str | None = None
    predict_visibility: bool = False
    use_certainty: bool = False
    certainty_threshold: float = 0.5
    num_classes: int | None = None
    depth_range: tuple[float, float] = (0.001, 10.0)
    huber_delta: float = 4.0 / 256.0
    certainty_radius: float = 6.0 / 256.0
    loss_weights: tuple[float, float, float] = (100.0, 0.1, 0.1)

    def __post_init__(self) -> None:
        check_field_types(type(self), {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, hint="fix config.readout")
        if self.task not in READOUT_TASKS:
            raise ValueError(f"readout task must be one of {READOUT_TASKS}, got {self.task!r}")
        for name in ("num_params", "num_heads", "mlp_ratio", "query_fourier_bases", "temporal_tile_size", "num_frames", "num_classes"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "query_fourier_bases" else 1):
                raise ValueError(f"readout {name} must be a positive integer, got {value!r}")
        self.decoding_patch_size = check_sequence("decoding_patch_size", self.decoding_patch_size, 3)
        self.query_mlp_sizes = check_sequence("query_mlp_sizes", self.query_mlp_sizes, 2)
        self.depth_range = tuple(float(v) for v in self.depth_range)
        self.loss_weights = tuple(float(v) for v in self.loss_weights)
        if self.num_params % self.num_heads:
            raise ValueError(
                f"readout num_params ({self.num_params}) must be a multiple of num_heads ({self.num_heads})"
            )
        valid_orders = ("xyxy", "yxyx") if self.task == "boxes" else ("xy", "yx")
        if self.task in ("points", "boxes") and self.coordinate_order not in valid_orders:
            raise ValueError(f"coordinate_order for {self.task} must be one of {valid_orders}, got {self.coordinate_order!r}")
        if self.output_activation not in (None, "sigmoid"):
            raise ValueError(f"output_activation must be None or 'sigmoid', got {self.output_activation!r}")
        if self.task == "classification" and not self.num_classes:
            raise ValueError("a classification readout needs num_classes (set config.num_labels / id2label)")

    @classmethod
    def for_task(cls, task: str, overrides: dict[str, Any] | None = None) -> "ReadoutConfig":
        """The released/paper defaults of a task's head, updated with ``overrides``."""
        if task not in READOUT_TASK_DEFAULTS:
            raise ValueError(f"unknown readout task {task!r}; expected one of {READOUT_TASKS}")
        values = dict(READOUT_TASK_DEFAULTS[task])
        overrides = dict(overrides or {})
        if overrides.get("task", task) != task:
            raise ValueError(f"config.readout is for task {overrides['task']!r}, but a {task!r} model was asked for")
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown readout config fields {sorted(unknown)}")
        values.update(overrides)
        values["task"] = task
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @property
    def head_dim(self) -> int:
        return self.num_params // self.num_heads


# Paper / released-checkpoint defaults per task (architecture.md section 4, paper A.2).
READOUT_TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "depth": dict(num_params=1024, num_heads=16, decoding_patch_size=(2, 8, 8)),
    "points": dict(
        num_params=1024, num_heads=8, temporal_tile_size=8, coordinate_order="xy",
        output_activation="sigmoid", predict_visibility=True, use_certainty=True,
    ),
    "boxes": dict(num_params=1024, num_heads=4, temporal_tile_size=1, coordinate_order="yxyx"),
    "camera_pose": dict(num_params=1024, num_heads=8, num_frames=2),
    "classification": dict(num_params=768, num_heads=12),
}


class AttentionReadout(nn.Module):
    """Cross-attention readout of the original (``match_vjepa_implementation=True``).

    Args:
        feature_dim: C, the backbone feature width.
        num_frames: T, the number of feature frames (temporal embedding length).
        num_params: query/key/value width.
        num_heads: attention heads.
        num_outputs: outputs per query.
        num_queries: number of learned queries; ``None`` when queries are given at call time.
        query_dim: width of given query vectors (when ``num_queries`` is ``None``).
        mlp_ratio, layer_norm_eps: see :class:`ReadoutConfig`.

    Shapes:
        ``features`` (B, T, N, C), ``queries`` (B, Q, query_dim) or None -> (B, Q, num_outputs).
    """

    def __init__(
        self,
        feature_dim: int,
        num_frames: int,
        num_params: int,
        num_heads: int,
        num_outputs: int,
        num_queries: int | None = None,
        query_dim: int | None = None,
        mlp_ratio: int = 4,
        layer_norm_eps: float = FLAX_NORM_EPS,
    ) -> None:
        super().__init__()
        if (num_queries is None) == (query_dim is None):
            raise ValueError("AttentionReadout needs exactly one of num_queries (learned) or query_dim (given)")
        self.num_heads = num_heads
        self.num_frames = num_frames
        self.input_norm = nn.LayerNorm(feature_dim, eps=layer_norm_eps)
        self.temporal_embedding = nn.Parameter(torch.zeros(num_frames, 1, feature_dim))
        if num_queries is not None:
            self.query = nn.Parameter(torch.zeros(num_queries, num_params))
            self.query_proj = None
        else:
            self.query = None
            self.query_proj = nn.Linear(query_dim, num_params)
        self.key_proj = nn.Linear(feature_dim, num_params)
        self.value_proj = nn.Linear(feature_dim, num_params)
        self.attention_out_proj = nn.Linear(num_params, num_params)
        self.mlp_norm = nn.LayerNorm(num_params, eps=layer_norm_eps)
        self.mlp = MLP(num_params, mlp_ratio * num_params)
        self.output_proj = nn.Linear(num_params, num_outputs)

    def forward(self, features: torch.Tensor, queries: torch.Tensor | None = None) -> torch.Tensor:
        if features.ndim != 4:
            raise ValueError(f"readout features must be (B, T, N, C), got shape {tuple(features.shape)}")
        batch, frames = features.shape[:2]
        if frames != self.num_frames:
            raise ValueError(
                f"this readout head was built for {self.num_frames} frames of features, got {frames}; "
                "heads carry a learned temporal embedding, so feed clips of the trained length"
            )
        feats = self.input_norm(features) + self.temporal_embedding
        feats = feats.flatten(1, 2)
        if self.query is not None:
            if queries is not None:
                raise ValueError("this readout head has learned queries; do not pass queries")
            query = self.query.unsqueeze(0).expand(batch, -1, -1)
        else:
            if queries is None or queries.ndim != 3 or queries.shape[0] != batch:
                raise ValueError(
                    f"this readout head needs queries of shape (B={batch}, Q, D), got "
                    f"{None if queries is None else tuple(queries.shape)}"
                )
            query = self.query_proj(queries)
        attended = multi_head_attention(query, self.key_proj(feats), self.value_proj(feats), self.num_heads)
        token = query + self.attention_out_proj(attended)
        token = token + self.mlp(self.mlp_norm(token))
        return self.output_proj(token)


def _num_frames(config: ReadoutConfig, backbone_frames: int) -> int:
    return config.num_frames if config.num_frames is not None else backbone_frames


class DepthReadoutHead(nn.Module):
    """Dense depth: one learned query per (pt, ph, pw) output patch, each predicting its pixels.

    Shapes: features (B, T, N, C) -> depth (B, T, H, W), for the (T, H, W) it was built for.
    """

    def __init__(self, config: ReadoutConfig, feature_dim: int, num_frames: int, image_size: tuple[int, int]):
        super().__init__()
        self.num_frames = _num_frames(config, num_frames)
        self.image_size = tuple(image_size)
        self.patch = config.decoding_patch_size
        out_shape = (self.num_frames, *self.image_size)
        for size, patch, name in zip(out_shape, self.patch, ("frames", "height", "width")):
            if size % patch:
                raise ValueError(f"depth output {name} {size} is not divisible by decoding patch {patch}")
        self.grid = tuple(s // p for s, p in zip(out_shape, self.patch))
        self.readout = AttentionReadout(
            feature_dim, self.num_frames, config.num_params, config.num_heads,
            num_outputs=math.prod(self.patch), num_queries=math.prod(self.grid),
            mlp_ratio=config.mlp_ratio, layer_norm_eps=config.layer_norm_eps,
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.readout(features)  # (B, nt*nh*nw, pt*ph*pw)
        batch = out.shape[0]
        (nt, nh, nw), (pt, ph, pw) = self.grid, self.patch
        out = out.reshape(batch, nt, nh, nw, pt, ph, pw).permute(0, 1, 4, 2, 5, 3, 6)
        return out.reshape(batch, nt * pt, nh * ph, nw * pw)


@dataclass
class TrackingPrediction:
    """Raw tracking-head output in normalised head coordinates (see :class:`TrackingReadoutHead`)."""

    values: torch.Tensor
    logits_visible: torch.Tensor | None = None
    logits_certainty: torch.Tensor | None = None
    visible: torch.Tensor | None = None


class TrackingReadoutHead(nn.Module):
    """Point or box tracking from query coordinates (the original ``TrackingReadoutWrapper``).

    Query coordinates (normalised, head order) -> Fourier features (``replace`` mode) -> MLP;
    each query is tiled ``temporal_tile_size`` times with a learned embedding, each copy predicting
    ``num_frames // temporal_tile_size`` frames.

    Shapes:
        features (B, T, N, C), queries (B, Q, D) with D = 2 (points) or 4 (boxes) ->
        values (B, T, Q, D); for points also logits (B, T, Q, 1) and visible (B, T, Q) bool.
    """

    def __init__(self, config: ReadoutConfig, feature_dim: int, num_frames: int):
        super().__init__()
        if config.task not in ("points", "boxes"):
            raise ValueError(f"TrackingReadoutHead is for points or boxes, not {config.task!r}")
        self.config = config
        self.num_frames = _num_frames(config, num_frames)
        self.coord_dim = 2 if config.task == "points" else 4
        tile = config.temporal_tile_size
        if self.num_frames % tile:
            raise ValueError(f"num_frames {self.num_frames} is not divisible by temporal_tile_size {tile}")
        self.frames_per_query = self.num_frames // tile
        self.num_logits = (1 + int(config.use_certainty)) if config.predict_visibility else 0
        hidden, out = config.query_mlp_sizes
        self.query_initializer = MLP(2 * config.query_fourier_bases * self.coord_dim, hidden, out)
        self.temporal_tile_embedding = nn.Parameter(torch.zeros(tile, out)) if tile > 1 else None
        self.readout = AttentionReadout(
            feature_dim, self.num_frames, config.num_params, config.num_heads,
            num_outputs=self.frames_per_query * (self.coord_dim + self.num_logits), query_dim=out,
            mlp_ratio=config.mlp_ratio, layer_norm_eps=config.layer_norm_eps,
        )

    def forward(self, features: torch.Tensor, queries: torch.Tensor) -> TrackingPrediction:
        if queries.ndim != 3 or queries.shape[-1] != self.coord_dim:
            raise ValueError(
                f"{self.config.task} queries must be (B, Q, {self.coord_dim}), got {tuple(queries.shape)}"
            )
        batch, num_queries, _ = queries.shape
        tile = self.config.temporal_tile_size
        embedded = self.query_initializer(fourier_features(queries, self.config.query_fourier_bases))
        if self.temporal_tile_embedding is not None:
            embedded = embedded.unsqueeze(2) + self.temporal_tile_embedding  # (B, Q, k, D)
            embedded = embedded.flatten(1, 2)
        out = self.readout(features, embedded)  # (B, Q*k, t*c)
        # 'B (Q k) (t c) -> B (k t) Q c': copy k of query q predicts frames k*t .. k*t + t - 1.
        channels = self.coord_dim + self.num_logits
        out = out.reshape(batch, num_queries, tile, self.frames_per_query, channels)
        out = out.permute(0, 2, 3, 1, 4).reshape(batch, self.num_frames, num_queries, channels)
        values = out[..., : self.coord_dim]
        if self.config.output_activation == "sigmoid":
            values = torch.sigmoid(values)
        prediction = TrackingPrediction(values=values)
        if self.num_logits:
            prediction.logits_visible = out[..., self.coord_dim : self.coord_dim + 1]
            probability = torch.sigmoid(prediction.logits_visible)
            if self.config.use_certainty:
                prediction.logits_certainty = out[..., self.coord_dim + 1 :]
                probability = probability * torch.sigmoid(prediction.logits_certainty)
            prediction.visible = (probability > self.config.certainty_threshold).squeeze(-1)
        return prediction


def procrustes_to_rotation(matrix: torch.Tensor) -> torch.Tensor:
    """Closest rotation (in Frobenius norm) to each 3x3 matrix: ``U diag(1, 1, det(U V^T)) V^T``.

    Shapes: (..., 3, 3) -> (..., 3, 3). Computed in float32 for a stable SVD.
    """
    u, _, vh = torch.linalg.svd(matrix.float())
    det = torch.det(u @ vh)
    diag = torch.ones_like(matrix[..., 0].float())
    diag[..., -1] = det
    return ((u * diag.unsqueeze(-2)) @ vh).to(matrix.dtype)


class CameraPoseReadoutHead(nn.Module):
    """Relative camera pose between the first and last frame (RE10k readout, paper A.2.2).

    The features of the first and last frame are concatenated along time and read by a single
    learned query that outputs 12 numbers: a 3x3 matrix (row-major) and a translation.

    Shapes: features (B, T, N, C) -> raw (B, 3, 4), pose (B, 4, 4) with the rotation
    projected to SO(3) by Procrustes.
    """

    def __init__(self, config: ReadoutConfig, feature_dim: int):
        super().__init__()
        if _num_frames(config, 2) != 2:
            raise ValueError("the camera-pose readout reads exactly 2 frames (first and last); set num_frames=2")
        self.readout = AttentionReadout(
            feature_dim, 2, config.num_params, config.num_heads, num_outputs=12, num_queries=1,
            mlp_ratio=config.mlp_ratio, layer_norm_eps=config.layer_norm_eps,
        )

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pair = torch.stack([features[:, 0], features[:, -1]], dim=1)
        raw = self.readout(pair)[:, 0].reshape(-1, 3, 4)
        pose = torch.zeros(raw.shape[0], 4, 4, dtype=raw.dtype, device=raw.device)
        pose[:, :3, :3] = procrustes_to_rotation(raw[:, :, :3])
        pose[:, :3, 3] = raw[:, :, 3]
        pose[:, 3, 3] = 1
        return raw, pose


class ClassificationReadoutHead(nn.Module):
    """Video classification with one learned query (SSv2 readout). features (B, T, N, C) -> (B, classes)."""

    def __init__(self, config: ReadoutConfig, feature_dim: int, num_frames: int):
        super().__init__()
        self.readout = AttentionReadout(
            feature_dim, _num_frames(config, num_frames), config.num_params, config.num_heads,
            num_outputs=config.num_classes, num_queries=1,
            mlp_ratio=config.mlp_ratio, layer_norm_eps=config.layer_norm_eps,
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.readout(features)[:, 0]


# ----------------------------------------------------------------------------------------------
# Losses of the paper (A.2). All return a scalar float32 tensor.


def masked_depth_loss(prediction: torch.Tensor, target: torch.Tensor, depth_range: tuple[float, float]) -> torch.Tensor:
    """Mean squared error over pixels whose target depth lies strictly inside ``depth_range``.

    Shapes: prediction and target (B, T, H, W), metres. Zero (with gradient) if no pixel is valid.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"depth labels must have shape {tuple(prediction.shape)}, got {tuple(target.shape)}")
    target = target.to(torch.float32)
    valid = (target > depth_range[0]) & (target < depth_range[1])
    squared = (prediction.float() - torch.where(valid, target, 0.0)) ** 2
    return (squared * valid).sum() / valid.sum().clamp(min=1)


def point_tracking_loss(
    prediction: TrackingPrediction, target_points: torch.Tensor, target_visible: torch.Tensor, config: ReadoutConfig
) -> torch.Tensor:
    """Huber on positions (visible frames only), BCE on visibility and on certainty (TAPIR-style).

    Args:
        prediction: head output; values (B, T, Q, 2) normalised.
        target_points: (B, T, Q, 2) normalised, same order as the values.
        target_visible: (B, T, Q) bool or {0, 1}.
        config: the head's config (huber_delta, certainty_radius, loss_weights).
    """
    if target_points.shape != prediction.values.shape:
        raise ValueError(f"point labels must have shape {tuple(prediction.values.shape)}, got {tuple(target_points.shape)}")
    if target_visible.shape != prediction.values.shape[:-1]:
        raise ValueError(f"visibility labels must have shape {tuple(prediction.values.shape[:-1])}, got {tuple(target_visible.shape)}")
    visible = target_visible.to(torch.float32)
    values = prediction.values.float()
    target_points = target_points.float()
    huber = F.huber_loss(values, target_points, delta=config.huber_delta, reduction="none").sum(-1)
    position = (huber * visible).sum() / visible.sum().clamp(min=1)
    w_pos, w_vis, w_cert = config.loss_weights
    loss = w_pos * position
    if prediction.logits_visible is not None:
        loss = loss + w_vis * F.binary_cross_entropy_with_logits(prediction.logits_visible[..., 0].float(), visible)
    if prediction.logits_certainty is not None:
        error = torch.linalg.vector_norm(values.detach() - target_points, dim=-1)
        certain = (error <= config.certainty_radius).float()
        bce = F.binary_cross_entropy_with_logits(prediction.logits_certainty[..., 0].float(), certain, reduction="none")
        loss = loss + w_cert * (bce * visible).sum() / visible.sum().clamp(min=1)
    return loss


def box_tracking_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L2 on box coordinates. Shapes: (B, T, Q, 4) both, normalised, same order."""
    if prediction.shape != target.shape:
        raise ValueError(f"box labels must have shape {tuple(prediction.shape)}, got {tuple(target.shape)}")
    return F.mse_loss(prediction.float(), target.float())


def camera_pose_loss(raw_pose: torch.Tensor, target_pose: torch.Tensor) -> torch.Tensor:
    """L2 between the predicted 3x4 pose matrix and the target's top 3x4 block.

    Shapes: raw_pose (B, 3, 4); target_pose (B, 4, 4) or (B, 3, 4).
    """
    if target_pose.shape[-2:] not in ((4, 4), (3, 4)) or target_pose.shape[0] != raw_pose.shape[0]:
        raise ValueError(f"pose labels must be (B, 4, 4) or (B, 3, 4), got {tuple(target_pose.shape)}")
    return F.mse_loss(raw_pose.float(), target_pose[:, :3, :].float())


# ----------------------------------------------------------------------------------------------
# Task-model plumbing shared by every backbone: typed outputs, pixel <-> head coordinates, weight
# init. A task model = backbone features + one of the heads above + these.


@dataclass
class DepthEstimationOutput(ModelOutput):
    r"""Args:
    loss (`torch.FloatTensor`, *optional*): masked L2 depth loss, when ``labels`` are given.
    predicted_depth (`torch.FloatTensor` of shape `(B, T, H, W)`): depth in metres (at the sampled
        pixels only, `(B, T, H / f, W / f)`, when a MooG depth decoder subsamples in training).
    readout_features (`torch.FloatTensor` of shape `(B, T, N, D)`): the features the head read.
    state (`torch.FloatTensor` of shape `(B, N, D)`, *optional*): recurrent families only: the
        state after the last frame, to pass back as ``initial_state`` (streaming).
    """

    loss: torch.FloatTensor | None = None
    predicted_depth: torch.FloatTensor | None = None
    readout_features: torch.FloatTensor | None = None
    state: torch.FloatTensor | None = None


@dataclass
class PointTrackingOutput(ModelOutput):
    r"""Args:
    loss (`torch.FloatTensor`, *optional*): Huber + BCE (weights 100, 0.1, 0.1) when labels are given.
    tracks (`torch.FloatTensor` of shape `(B, T, Q, 2)`): pixel (x, y) of each query in each frame.
    visible (`torch.BoolTensor` of shape `(B, T, Q)`): sigmoid(vis) * sigmoid(certainty) > threshold.
    logits_visible, logits_certainty (`torch.FloatTensor` of shape `(B, T, Q)`): raw logits.
    normalized_tracks (`torch.FloatTensor` of shape `(B, T, Q, 2)`): the head's [0, 1] output, (x, y).
    readout_features (`torch.FloatTensor` of shape `(B, T, N, D)`): the features the head read.
    """

    loss: torch.FloatTensor | None = None
    tracks: torch.FloatTensor | None = None
    visible: torch.BoolTensor | None = None
    logits_visible: torch.FloatTensor | None = None
    logits_certainty: torch.FloatTensor | None = None
    normalized_tracks: torch.FloatTensor | None = None
    readout_features: torch.FloatTensor | None = None


@dataclass
class BoxTrackingOutput(ModelOutput):
    r"""Args:
    loss (`torch.FloatTensor`, *optional*): L2 on normalised boxes when labels are given.
    boxes (`torch.FloatTensor` of shape `(B, T, Q, 4)`): pixel (x1, y1, x2, y2) per frame.
    normalized_boxes (`torch.FloatTensor` of shape `(B, T, Q, 4)`): [0, 1] (x1, y1, x2, y2).
    readout_features (`torch.FloatTensor` of shape `(B, T, N, D)`): the features the head read.
    """

    loss: torch.FloatTensor | None = None
    boxes: torch.FloatTensor | None = None
    normalized_boxes: torch.FloatTensor | None = None
    readout_features: torch.FloatTensor | None = None


@dataclass
class RecurrentPointTrackingOutput(PointTrackingOutput):
    r""":class:`PointTrackingOutput` of a recurrent family (MooG, RVM), plus ``state`` (`(B, S, D)`): the
    state after the last frame, to pass back as ``initial_state`` (streaming)."""

    state: torch.FloatTensor | None = None


@dataclass
class RecurrentBoxTrackingOutput(BoxTrackingOutput):
    r""":class:`BoxTrackingOutput` of a recurrent family (MooG, RVM), plus ``state`` (`(B, S, D)`): the
    state after the last frame, to pass back as ``initial_state`` (streaming)."""

    state: torch.FloatTensor | None = None


def pixel_scale(image_size: tuple[int, int], device: torch.device | None = None) -> torch.Tensor:
    """(W, H) of an (H, W) image, for (x, y) pixel <-> [0, 1] conversion."""
    height, width = image_size
    return torch.tensor([width, height], dtype=torch.float32, device=device)


def to_head_order(xy: torch.Tensor, order: str) -> torch.Tensor:
    """Reorder (x, y)-ordered coordinates (last axis 2 or 4) to the head's order, and back (involution)."""
    if order in ("xy", "xyxy"):
        return xy
    return xy[..., [1, 0, 3, 2][: xy.shape[-1]]]


def _check_queries(queries: torch.Tensor, coord_dim: int, batch_size: int, what: str) -> None:
    if not isinstance(queries, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(queries).__name__}")
    if queries.ndim != 3 or queries.shape[-1] != coord_dim or queries.shape[0] != batch_size:
        raise ValueError(f"{what} must be (B={batch_size}, Q, {coord_dim}), got {tuple(queries.shape)}")
    if not torch.isfinite(queries).all():
        raise ValueError(f"{what} contains NaN or infinite values")


def _normalize(values: torch.Tensor | None, scale: torch.Tensor, already: bool) -> torch.Tensor | None:
    if values is None:
        return None
    return values.float() if already else values.float() / scale


def track_points(
    head: TrackingReadoutHead,
    features: torch.Tensor,
    query_points: torch.Tensor,
    image_size: tuple[int, int],
    labels: torch.Tensor | None = None,
    visibility_labels: torch.Tensor | None = None,
    normalized_coordinates: bool = False,
) -> PointTrackingOutput:
    """A point-tracking head on backbone features, with pixel (x, y) in and out.

    Args:
        head: the point head.
        features: (B, T, N, D) backbone features.
        query_points: (B, Q, 2) pixel (x, y) in the first frame.
        image_size: (H, W) of the video the pixels refer to.
        labels: (B, T, Q, 2) target pixel (x, y), optional.
        visibility_labels: (B, T, Q) bool, required with ``labels``.
        normalized_coordinates: ``query_points`` and ``labels`` are already [0, 1] (x / W, y / H),
            as in TAP-Vid. Used as given: the heads' Fourier features resolve the last float bit,
            which a pixel round trip can change.
    """
    _check_queries(query_points, 2, features.shape[0], "query_points, (x, y),")
    scale = pixel_scale(image_size, features.device)
    order = head.config.coordinate_order
    prediction = head(features, to_head_order(_normalize(query_points, scale, normalized_coordinates), order))
    normalized = to_head_order(prediction.values, order)
    loss = None
    if labels is not None:
        if visibility_labels is None:
            raise ValueError("point-tracking labels need visibility_labels (B, T, Q) as well")
        head_labels = to_head_order(_normalize(labels, scale, normalized_coordinates), order)
        loss = point_tracking_loss(prediction, head_labels, visibility_labels, head.config)
    return PointTrackingOutput(
        loss=loss,
        tracks=normalized * scale,
        visible=prediction.visible,
        logits_visible=None if prediction.logits_visible is None else prediction.logits_visible[..., 0],
        logits_certainty=None if prediction.logits_certainty is None else prediction.logits_certainty[..., 0],
        normalized_tracks=normalized,
        readout_features=features,
    )


def track_boxes(
    head: TrackingReadoutHead,
    features: torch.Tensor,
    query_boxes: torch.Tensor,
    image_size: tuple[int, int],
    labels: torch.Tensor | None = None,
    normalized_coordinates: bool = False,
) -> BoxTrackingOutput:
    """A box-tracking head on backbone features, with pixel (x1, y1, x2, y2) in and out.

    Args:
        head: the box head.
        features: (B, T, N, D) backbone features.
        query_boxes: (B, Q, 4) pixel (x1, y1, x2, y2) in the first frame.
        image_size: (H, W) of the video the pixels refer to.
        labels: (B, T, Q, 4) target pixel boxes, optional.
        normalized_coordinates: ``query_boxes`` and ``labels`` are already [0, 1] (x1, y1, x2, y2).
    """
    _check_queries(query_boxes, 4, features.shape[0], "query_boxes, (x1, y1, x2, y2),")
    scale = pixel_scale(image_size, features.device).repeat(2)
    order = head.config.coordinate_order
    prediction = head(features, to_head_order(_normalize(query_boxes, scale, normalized_coordinates), order))
    normalized = to_head_order(prediction.values, order)
    target = _normalize(labels, scale, normalized_coordinates)
    loss = box_tracking_loss(normalized, target) if target is not None else None
    return BoxTrackingOutput(loss=loss, boxes=normalized * scale, normalized_boxes=normalized, readout_features=features)


class ReturnDictMixin:
    """transformers' output convention for every model of both families."""

    def finish(self, output: ModelOutput, return_dict: bool | None) -> ModelOutput | tuple:
        """The output object, or its tuple when ``return_dict=False`` (default: ``config.return_dict``)."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()


@torch.no_grad()
def init_module_weights(module: nn.Module, std: float) -> None:
    """Fresh weights for any module of both families: truncated normal for dense/conv weights and
    learned embeddings, zero biases, unit norm scales (the transformers ``_init_weights`` hook)."""
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.Conv3d)):
        init.trunc_normal_(module.weight, std=std)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
        if module.weight is not None:
            init.ones_(module.weight)
        if getattr(module, "bias", None) is not None:
            init.zeros_(module.bias)
    elif isinstance(module, AttentionReadout):
        init.trunc_normal_(module.temporal_embedding, std=std)
        if module.query is not None:
            init.trunc_normal_(module.query, std=std)
    elif isinstance(module, TrackingReadoutHead) and module.temporal_tile_embedding is not None:
        init.trunc_normal_(module.temporal_tile_embedding, std=std)


# ----------------------------------------------------------------------------------------------
# Task models, once for every family. A family's task class is a task mixin below plus the
# family's base (a ReadoutTaskModel placed before the family's PreTrainedModel), e.g.
#
#     class RVMForPointTracking(RecurrentPointTrackingTask, _RVMTaskModel):
#         output_class = RVMPointTrackingOutput
#
# The family's base builds the backbone and says what the head reads (features_and_state); the
# task mixin builds the head and runs it (build_head, forward). A recurrent family takes the
# Recurrent* mixins: the same code path (_forward), whose signature adds ``initial_state`` and
# ``generator`` before ``return_dict``, and whose output carries the state after the last frame.


class ReadoutTaskModel:
    """A backbone plus one readout head: the base of every family's task models, placed before the
    family's ``PreTrainedModel``.

    Building copies the config (the caller's is left as it was: a second task model from it must
    build), resolves the head's hyper-parameters (:meth:`resolve_readout`) into ``readout_config``
    and into the copy's ``readout`` (so ``save_pretrained`` keeps them), builds the backbone under
    ``base_model_prefix`` (:meth:`build_backbone`), then ``head`` (:meth:`build_head`), and
    initialises the weights (``post_init``).

    Class attributes:
        readout_task: the head's task, one of :data:`READOUT_TASKS`.
        output_class: the ``ModelOutput`` that ``forward`` returns. Where it has a ``state`` field
            (the recurrent families' outputs), the state after the last frame goes there.
    """

    readout_task: str = ""
    output_class: type[ModelOutput] | None = None

    def __init__(self, config):
        super().__init__(copy.deepcopy(config))
        self.readout_config = self.resolve_readout(self.config)
        if self.readout_config is not None:
            self.config.readout = self.readout_config.to_dict()
        setattr(self, self.base_model_prefix, self.build_backbone())
        self.head = self.build_head(self.readout_config)
        self.post_init()

    def resolve_readout(self, config) -> ReadoutConfig | None:
        """The head's hyper-parameters: the task's defaults (the family's, e.g. RVM's per-frame
        depth) updated with ``config.readout``; None for a head described elsewhere than in
        ``config.readout`` (MooG's depth decoder)."""
        return config.readout_config(self.readout_task)

    def build_backbone(self) -> nn.Module:
        """The family's backbone, from ``self.config`` (without a pixel decoder: heads read features)."""
        raise NotImplementedError

    def build_head(self, readout: ReadoutConfig | None) -> nn.Module:
        """The task's head, from the resolved ``readout`` and ``self.config`` (feature width, clip size)."""
        raise NotImplementedError

    def features_and_state(
        self, pixel_values_videos: torch.Tensor, initial_state: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the head reads, and the state after the last frame: where every task forward starts.

        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(B, T, C, H, W)`): RGB in [0, 1].
            initial_state (`torch.FloatTensor` of shape `(B, S, D)`, *optional*): recurrent families
                only: the state to start from, e.g. the ``state`` of the previous chunk's output
                (S: MooG's tokens, RVM's 1 + N slots). Default: the family's initial state (MooG:
                noise drawn from ``generator``; RVM: zeros).
            generator (`torch.Generator`, *optional*): draws a random default initial state (MooG);
                unused where it is zeros (RVM) or where there is no state (4DS).

        Returns:
            The features, `(B, T, N, D)`, and the state, `(B, S, D)` (None for a family without one).
        """
        raise NotImplementedError

    def task_output(self, fields: Mapping[str, Any], state: torch.Tensor | None, return_dict: bool | None) -> ModelOutput | tuple:
        """``output_class(**fields)``, plus ``state`` where the class has that field; its tuple with ``return_dict=False``."""
        if "state" in self.output_class.__dataclass_fields__:
            fields = {**fields, "state": state}
        return self.finish(self.output_class(**fields), return_dict)


class _TrackingTask(ReadoutTaskModel):
    """Points or boxes: the shared :class:`TrackingReadoutHead` on the backbone's features, reading
    clips of ``config.num_frames`` frames (the head's ``num_frames`` where its readout sets one)."""

    def build_head(self, readout: ReadoutConfig) -> nn.Module:
        return TrackingReadoutHead(readout, self.config.hidden_size, self.config.num_frames)


class PointTrackingTask(_TrackingTask):
    """Point tracking: the shared :class:`TrackingReadoutHead` on the backbone's features, pixel
    (x, y) in and out (:func:`track_points`). ``output_class`` defaults to :class:`PointTrackingOutput`."""

    readout_task = "points"
    output_class = PointTrackingOutput

    def forward(
        self, pixel_values_videos: torch.Tensor, query_points: torch.Tensor, labels: torch.Tensor | None = None,
        visibility_labels: torch.Tensor | None = None, normalized_coordinates: bool = False, return_dict: bool | None = None, **kwargs,
    ) -> ModelOutput | tuple:
        r"""
        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(B, T, C, H, W)`): RGB in [0, 1], T =
                the head's frames (16 for the released heads).
            query_points (`torch.FloatTensor` of shape `(B, Q, 2)`): pixel (x, y) in the first frame.
            labels (`torch.FloatTensor` of shape `(B, T, Q, 2)`, *optional*): target pixel (x, y).
            visibility_labels (`torch.BoolTensor` of shape `(B, T, Q)`, *optional*): required with labels.
            normalized_coordinates (`bool`): queries and labels are [0, 1] (x / W, y / H) instead of pixels.
            return_dict (`bool`, *optional*): the output object, or its tuple (default: ``config.return_dict``).

        Returns:
            ``output_class``: ``tracks`` `(B, T, Q, 2)` pixel (x, y), ``visible`` `(B, T, Q)`, the
            logits, and ``loss`` with labels (see :class:`PointTrackingOutput`).
        """
        return self._forward(pixel_values_videos, query_points, labels, visibility_labels, normalized_coordinates, return_dict=return_dict)

    def _forward(self, pixel_values_videos, query_points, labels, visibility_labels, normalized_coordinates, initial_state=None, generator=None, return_dict=None):
        features, state = self.features_and_state(pixel_values_videos, initial_state, generator)  # validates the video
        tracked = track_points(self.head, features, query_points, pixel_values_videos.shape[-2:], labels, visibility_labels, normalized_coordinates)
        return self.task_output(tracked, state, return_dict)


class RecurrentPointTrackingTask(PointTrackingTask):
    """:class:`PointTrackingTask` of a recurrent family: ``initial_state`` in, ``state`` out
    (``output_class`` defaults to :class:`RecurrentPointTrackingOutput`)."""

    output_class = RecurrentPointTrackingOutput

    def forward(
        self, pixel_values_videos: torch.Tensor, query_points: torch.Tensor, labels: torch.Tensor | None = None,
        visibility_labels: torch.Tensor | None = None, normalized_coordinates: bool = False,
        initial_state: torch.Tensor | None = None, generator: torch.Generator | None = None, return_dict: bool | None = None, **kwargs,
    ) -> ModelOutput | tuple:
        r"""As :meth:`PointTrackingTask.forward`, from ``initial_state`` (``initial_state`` and ``generator``:
        see :meth:`ReadoutTaskModel.features_and_state`); the output's ``state``, where it has one, continues the video."""
        return self._forward(pixel_values_videos, query_points, labels, visibility_labels, normalized_coordinates, initial_state, generator, return_dict)


class BoxTrackingTask(_TrackingTask):
    """Box tracking: the shared :class:`TrackingReadoutHead` (one query per box predicts every
    frame), pixel (x1, y1, x2, y2) in and out (:func:`track_boxes`). ``output_class`` defaults to
    :class:`BoxTrackingOutput`."""

    readout_task = "boxes"
    output_class = BoxTrackingOutput

    def forward(
        self, pixel_values_videos: torch.Tensor, query_boxes: torch.Tensor, labels: torch.Tensor | None = None,
        normalized_coordinates: bool = False, return_dict: bool | None = None, **kwargs,
    ) -> ModelOutput | tuple:
        r"""
        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(B, T, C, H, W)`): RGB in [0, 1], T = the head's frames.
            query_boxes (`torch.FloatTensor` of shape `(B, Q, 4)`): pixel (x1, y1, x2, y2) in the first frame.
            labels (`torch.FloatTensor` of shape `(B, T, Q, 4)`, *optional*): target pixel boxes.
            normalized_coordinates (`bool`): queries and labels are [0, 1] instead of pixels.
            return_dict (`bool`, *optional*): the output object, or its tuple (default: ``config.return_dict``).

        Returns:
            ``output_class``: ``boxes`` `(B, T, Q, 4)` pixel (x1, y1, x2, y2), and ``loss`` with labels
            (see :class:`BoxTrackingOutput`).
        """
        return self._forward(pixel_values_videos, query_boxes, labels, normalized_coordinates, return_dict=return_dict)

    def _forward(self, pixel_values_videos, query_boxes, labels, normalized_coordinates, initial_state=None, generator=None, return_dict=None):
        features, state = self.features_and_state(pixel_values_videos, initial_state, generator)  # validates the video
        tracked = track_boxes(self.head, features, query_boxes, pixel_values_videos.shape[-2:], labels, normalized_coordinates)
        return self.task_output(tracked, state, return_dict)


class RecurrentBoxTrackingTask(BoxTrackingTask):
    """:class:`BoxTrackingTask` of a recurrent family: ``initial_state`` in, ``state`` out
    (``output_class`` defaults to :class:`RecurrentBoxTrackingOutput`)."""

    output_class = RecurrentBoxTrackingOutput

    def forward(
        self, pixel_values_videos: torch.Tensor, query_boxes: torch.Tensor, labels: torch.Tensor | None = None,
        normalized_coordinates: bool = False, initial_state: torch.Tensor | None = None,
        generator: torch.Generator | None = None, return_dict: bool | None = None, **kwargs,
    ) -> ModelOutput | tuple:
        r"""As :meth:`BoxTrackingTask.forward`, from ``initial_state`` (``initial_state`` and ``generator``:
        see :meth:`ReadoutTaskModel.features_and_state`); the output's ``state``, where it has one, continues the video."""
        return self._forward(pixel_values_videos, query_boxes, labels, normalized_coordinates, initial_state, generator, return_dict)


class VideoReadoutTask(ReadoutTaskModel):
    """The tasks read from the video alone and trained from ``labels``: depth, camera pose and
    classification (:class:`DepthEstimationTask`, :class:`CameraPoseTask`,
    :class:`VideoClassificationTask`, which implement ``_forward``)."""

    def forward(
        self, pixel_values_videos: torch.Tensor, labels: torch.Tensor | None = None, return_dict: bool | None = None, **kwargs
    ) -> ModelOutput | tuple:
        r"""
        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(B, T, C, H, W)`): RGB in [0, 1] (a depth
                head predicts one size: see its ``check_depth_video``).
            labels (`torch.Tensor`, *optional*): the targets of the loss. Depth: `(B, T, H, W)` float,
                metres (pixels outside ``readout.depth_range`` are ignored). Camera pose: `(B, 4, 4)`
                or `(B, 3, 4)` float, the last frame's camera relative to the first's.
                Classification: `(B,)` long, class indices.
            return_dict (`bool`, *optional*): the output object, or its tuple (default: ``config.return_dict``).

        Returns:
            ``output_class``. Depth: ``predicted_depth`` `(B, T, H, W)` and ``readout_features``.
            Camera pose: ``pose`` `(B, 4, 4)` (rotation projected to SO(3)) and ``raw_pose`` `(B, 3, 4)`.
            Classification: ``logits`` `(B, num_labels)`. With labels, ``loss``: masked L2, L2 on the
            3x4 pose, cross-entropy.
        """
        return self._forward(pixel_values_videos, labels, return_dict=return_dict)

    def _forward(self, pixel_values_videos, labels, initial_state=None, generator=None, return_dict=None):
        raise NotImplementedError


class RecurrentVideoReadoutTask(VideoReadoutTask):
    """:class:`VideoReadoutTask` of a recurrent family: ``initial_state`` in, ``state`` out."""

    def forward(
        self, pixel_values_videos: torch.Tensor, labels: torch.Tensor | None = None, initial_state: torch.Tensor | None = None,
        generator: torch.Generator | None = None, return_dict: bool | None = None, **kwargs,
    ) -> ModelOutput | tuple:
        r"""As :meth:`VideoReadoutTask.forward`, from ``initial_state`` (``initial_state`` and ``generator``:
        see :meth:`ReadoutTaskModel.features_and_state`); the output's ``state``, where it has one, continues the video."""
        return self._forward(pixel_values_videos, labels, initial_state, generator, return_dict)


class DepthEstimationTask(VideoReadoutTask):
    """Dense depth from a :class:`DepthReadoutHead`, the masked L2 loss, :class:`DepthEstimationOutput`.

    Which frames one head call reads differs between families (4DS: the whole clip; RVM: one
    frame's state at a time), so a family's depth model implements :meth:`build_head`,
    :meth:`check_depth_video` and :meth:`predict_depth`. MooG's depth is a pixel decoder with a
    forward of its own (it subsamples pixels in training) and does not use this mixin.
    """

    readout_task = "depth"
    output_class = DepthEstimationOutput

    def check_depth_video(self, pixel_values_videos: torch.Tensor) -> None:
        """Refuse, before the backbone runs, a video of another size than the head predicts."""
        raise NotImplementedError

    def predict_depth(self, features: torch.Tensor) -> torch.Tensor:
        """Depth in metres, `(B, T, H, W)`, from the features `(B, T, N, D)`."""
        raise NotImplementedError

    def _forward(self, pixel_values_videos, labels, initial_state=None, generator=None, return_dict=None):
        self.check_depth_video(pixel_values_videos)
        features, state = self.features_and_state(pixel_values_videos, initial_state, generator)
        depth = self.predict_depth(features)
        loss = masked_depth_loss(depth, labels, self.readout_config.depth_range) if labels is not None else None
        return self.task_output(dict(loss=loss, predicted_depth=depth, readout_features=features), state, return_dict)


class CameraPoseTask(VideoReadoutTask):
    """Relative camera pose: the shared :class:`CameraPoseReadoutHead` (first and last frame,
    Procrustes to SO(3)), the L2 pose loss. ``output_class``: the family's (``loss``, ``pose``,
    ``raw_pose``)."""

    readout_task = "camera_pose"

    def build_head(self, readout: ReadoutConfig) -> nn.Module:
        return CameraPoseReadoutHead(readout, self.config.hidden_size)

    def _forward(self, pixel_values_videos, labels, initial_state=None, generator=None, return_dict=None):
        features, state = self.features_and_state(pixel_values_videos, initial_state, generator)
        raw, pose = self.head(features)
        loss = camera_pose_loss(raw, labels) if labels is not None else None
        return self.task_output(dict(loss=loss, pose=pose, raw_pose=raw), state, return_dict)


class VideoClassificationTask(VideoReadoutTask):
    """Video classification: the shared :class:`ClassificationReadoutHead` (one learned query) with
    ``config.num_labels`` classes (``config.id2label``), cross-entropy. ``output_class``: the
    family's (``loss``, ``logits``)."""

    readout_task = "classification"

    def resolve_readout(self, config) -> ReadoutConfig:
        return ReadoutConfig.for_task(self.readout_task, {**(config.readout or {}), "num_classes": config.num_labels})

    def build_head(self, readout: ReadoutConfig) -> nn.Module:
        return ClassificationReadoutHead(readout, self.config.hidden_size, self.config.num_frames)

    def _forward(self, pixel_values_videos, labels, initial_state=None, generator=None, return_dict=None):
        features, state = self.features_and_state(pixel_values_videos, initial_state, generator)
        logits = self.head(features)
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return self.task_output(dict(loss=loss, logits=logits), state, return_dict)


class RecurrentDepthEstimationTask(RecurrentVideoReadoutTask, DepthEstimationTask):
    """:class:`DepthEstimationTask` of a recurrent family: ``initial_state`` in, ``state`` out."""


class RecurrentCameraPoseTask(RecurrentVideoReadoutTask, CameraPoseTask):
    """:class:`CameraPoseTask` of a recurrent family: ``initial_state`` in, ``state`` out."""


class RecurrentVideoClassificationTask(RecurrentVideoReadoutTask, VideoClassificationTask):
    """:class:`VideoClassificationTask` of a recurrent family: ``initial_state`` in, ``state`` out."""
