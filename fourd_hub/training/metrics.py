"""Evaluation metrics of "Scaling 4D Representations" (appendix A.2), in numpy.

One function per readout task, plus :func:`make_compute_metrics`, which wraps them as the
``compute_metrics`` callable that :class:`transformers.Trainer` expects.

Conventions (the same as the models'): pixel coordinates are ``(x, y)`` with ``(0, 0)`` the
top-left corner of the top-left pixel; boxes are ``(x1, y1, x2, y2)`` in pixels; depth is in
metres; camera poses are 4x4 (or 3x4) rigid transforms ``X -> R @ X + t`` with the camera
looking along ``+z``.

Every function accepts numpy arrays or torch tensors (converted with
``np.asarray(t.detach().cpu())``), validates shapes (``ValueError`` naming the expected and the
actual shape) and rejects NaN / inf in predictions: a non-finite prediction is a bug upstream
and averaging it away would hide it (depth may exclude pixels without a prediction with an
explicit mask). Evaluating on nothing (no valid pixel, no evaluated point, no valid box) is an
error too, for the same reason.

Metrics (paper sections), each with the benchmark's own averaging (docs/readout_training.md,
"Metric conventions"):

- :func:`abs_rel` (A.2.5, ScanNet depth): ``|d* - d| / (d + eps)`` over each frame's valid
  pixels, then the mean over frames (Depth Anything's evaluation, which the paper cites).
- :func:`average_jaccard` (A.2.3, Perception Test points): TAP-Vid's Average Jaccard
  (Doersch et al. 2022, ``compute_tapvid_metrics``), thresholds in 256 x 256 coordinates, per
  video then over videos, with its ``pts_within`` and occlusion-accuracy companions.
- :func:`box_iou`, :func:`mean_iou` (A.2.4, Waymo Open boxes): IoU over frames excluding the
  initial one (where the boxes are given), per track, then per video, then over videos (the
  Perception Test box tracking evaluator's order).
- :func:`pose_end_point_error` (A.2.2, RealEstate10k pose): mean distance between the 8 corners
  of a virtual cube in front of the first camera moved into the last camera's frame by the
  true and by the estimated pose.
- :func:`top1_accuracy` (classification readouts).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "IOU_AVERAGES",
    "POSE_DIRECTIONS",
    "TASKS",
    "TAPVID_RESOLUTION",
    "THRESHOLD_SPACES",
    "UNDEFINED_VIDEO_RULES",
    "abs_rel",
    "average_jaccard",
    "box_iou",
    "default_cube_points",
    "make_compute_metrics",
    "mean_iou",
    "pose_end_point_error",
    "project_to_rotation",
    "top1_accuracy",
]

# TAP-Vid's pixel thresholds are defined at 256x256 (Doersch et al. 2022); `average_jaccard`
# rescales the clips' coordinates to it by default (thresholds_in="tapvid").
TAPVID_RESOLUTION = (256, 256)

# What the Trainer pads with when it concatenates eval batches whose shapes differ beyond the
# first dimension (`Trainer`'s default `padding_index`).
_HF_PADDING = -100


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------


def _to_numpy(value: Any, name: str) -> np.ndarray:
    """numpy array from an array-like or a torch tensor (bfloat16 widened: numpy has none)."""
    if value is None:
        raise ValueError(f"{name} is None")
    if hasattr(value, "detach"):  # a torch tensor; duck-typed so this module needs no torch
        tensor = value.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":
            tensor = tensor.float()
        return np.asarray(tensor)
    return np.asarray(value)


def _float(value: Any, name: str) -> np.ndarray:
    array = _to_numpy(value, name)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    # float64: sums over millions of pixels or points must not lose precision.
    return array.astype(np.float64, copy=False)


def _bool(value: Any, name: str) -> np.ndarray:
    """Boolean flags from bool or numeric arrays: numeric means ``> 0.5``.

    The threshold also turns probabilities into decisions and the Trainer's -100 padding
    into False.
    """
    array = _to_numpy(value, name)
    if array.dtype == bool:
        return array
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be bool or numeric, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf")
    return array > 0.5


def _non_finite_counts(array: np.ndarray) -> str:
    """``"<n> NaN, <m> inf"`` of an array, for error messages."""
    nan = int(np.isnan(array).sum())
    return f"{nan} NaN, {int(array.size - np.isfinite(array).sum() - nan)} inf"


def _check_finite(array: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values ({_non_finite_counts(array)})")


def _shape_error(name: str, expected: str, got: tuple[int, ...]) -> ValueError:
    return ValueError(f"{name} must have shape {expected}, got {got}")


def _check_same_shape(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{b_name} must have the shape of {a_name} {a.shape}, got {b.shape}")


# --------------------------------------------------------------------------------------------
# Depth (A.2.5)
# --------------------------------------------------------------------------------------------


def abs_rel(
    prediction: Any,
    target: Any,
    *,
    valid_range: tuple[float, float] = (0.001, 10.0),
    mask: Any = None,
    eps: float = 0.0,
    reduction: str = "frames",
    min_valid_pixels: int = 1,
) -> float:
    """Absolute relative depth error ``|d* - d| / (d + eps)``: per frame, then the mean over frames.

    A pixel is valid when its target depth lies strictly inside ``valid_range`` (the paper
    masks ScanNet targets outside (0.001, 10) m; NaN targets are therefore invalid too) and
    ``mask`` is True there.

    Reduction (``reduction="frames"``, the default) follows Depth Anything's evaluation (which
    the paper cites for AbsRel; ``metric_depth/train.py`` + ``util/metric.py`` of Depth
    Anything V2): each frame's AbsRel is the mean over its valid pixels, and the result is
    the mean over frames, every frame weighing the same whatever its number of valid pixels.
    Frames with fewer than ``min_valid_pixels`` valid pixels are left out (Depth Anything V2
    skips images with fewer than 10; pass ``min_valid_pixels=10`` to match it exactly).
    ``reduction="pixels"`` is the pooled mean over every valid pixel of the input (this
    function's behaviour before the per-frame convention).

    Predictions must be finite wherever ``mask`` is True (with no mask: everywhere), so a
    NaN from a bug is never averaged away. Pixels without a prediction — a
    :class:`~fourd_hub.results.DepthEstimationResult` is NaN outside its centre crop — are
    scored by excluding them: ``mask=np.isfinite(result.depth)``, or ``mask="finite"``,
    which is the same (note that it also skips a NaN a bug left inside the crop; an explicit
    crop mask catches those).

    Args:
        prediction: predicted depth in metres, (..., H, W), e.g. (B, T, H, W); every leading
            index is one frame. With ``reduction="pixels"`` any shape.
        target: ground-truth depth in metres, same shape.
        valid_range: (low, high) open interval of target depths that count.
        mask: optional bool array of the same shape (False pixels are ignored), or
            ``"finite"``: the prediction's own validity, ``np.isfinite(prediction)``.
        eps: added to the target in the denominator (the paper's epsilon; 0 is safe because
            valid targets are > valid_range[0] > 0 with the default range).
        reduction: ``"frames"`` (mean of per-frame AbsRel) or ``"pixels"`` (pooled).
        min_valid_pixels: with ``"frames"``, frames with fewer valid pixels are skipped.

    Returns:
        The AbsRel as a Python float.

    Raises:
        ValueError: shapes differ, the prediction is not finite where it is scored (or, with
            no mask, anywhere), a bad option, or nothing valid to score.
    """
    prediction = _float(prediction, "depth prediction")
    target = _float(target, "depth target")
    _check_same_shape(prediction, "depth prediction", target, "depth target")
    if reduction not in ("frames", "pixels"):
        raise ValueError(f"reduction must be 'frames' (mean of per-frame AbsRel) or 'pixels' (pooled), got {reduction!r}")
    if reduction == "frames" and prediction.ndim < 2:
        raise _shape_error("depth prediction", "(..., H, W) (frames of H x W pixels) with reduction='frames'", prediction.shape)
    if isinstance(min_valid_pixels, bool) or not isinstance(min_valid_pixels, (int, np.integer)) or min_valid_pixels < 1:
        raise ValueError(f"min_valid_pixels must be a positive integer, got {min_valid_pixels!r}")
    low, high = valid_range
    if not low < high:
        raise ValueError(f"valid_range must be (low, high) with low < high, got {valid_range}")

    if mask is None:
        if not np.all(np.isfinite(prediction)):
            raise ValueError(
                f"depth prediction contains non-finite values ({_non_finite_counts(prediction)}). "
                "If NaN marks pixels without a prediction (a DepthEstimationResult outside its centre crop), "
                "pass mask='finite' or a mask that is False there"
            )
        mask = np.ones(prediction.shape, dtype=bool)
    elif isinstance(mask, str):
        if mask != "finite":
            raise ValueError(f"mask must be a bool array or 'finite' (the prediction's own validity), got {mask!r}")
        mask = np.isfinite(prediction)
    else:
        mask = _bool(mask, "depth mask")
        _check_same_shape(prediction, "depth prediction", mask, "depth mask")
        scored = prediction[mask]
        if not np.all(np.isfinite(scored)):
            raise ValueError(
                f"depth prediction is non-finite inside the mask ({_non_finite_counts(scored)}); "
                "only pixels where the mask is False may lack a prediction"
            )
    with np.errstate(invalid="ignore"):  # NaN targets compare False: invalid, as intended
        valid = (target > low) & (target < high) & mask
    if not valid.any():
        raise ValueError(f"no valid depth: no target pixel inside {valid_range} (and the mask)")
    denominator = target[valid] + eps
    if np.any(denominator <= 0):
        raise ValueError(f"target + eps must be > 0 on valid pixels; valid_range {valid_range}, eps {eps}")
    errors = np.zeros(target.shape, dtype=np.float64)
    errors[valid] = np.abs(prediction[valid] - target[valid]) / denominator
    if reduction == "pixels":
        return float(errors[valid].mean())
    frame_pixels = valid.reshape(-1, valid.shape[-2] * valid.shape[-1]).sum(axis=1)
    frame_sums = errors.reshape(frame_pixels.shape[0], -1).sum(axis=1)
    scored_frames = frame_pixels >= min_valid_pixels
    if not scored_frames.any():
        raise ValueError(
            f"no frame has {min_valid_pixels} or more valid depth pixels (most: {int(frame_pixels.max())}); "
            "lower min_valid_pixels or check valid_range and the mask"
        )
    return float(np.mean(frame_sums[scored_frames] / frame_pixels[scored_frames]))


# --------------------------------------------------------------------------------------------
# Point tracking (A.2.3): TAP-Vid metrics
# --------------------------------------------------------------------------------------------


def _threshold_name(threshold: float) -> str:
    return str(int(threshold)) if float(threshold).is_integer() else str(threshold)


# `average_jaccard(thresholds_in=...)`: where the pixel thresholds are measured.
THRESHOLD_SPACES = ("tapvid", "clip")
# `average_jaccard(undefined=...)`: what a video whose metric is 0/0 contributes.
UNDEFINED_VIDEO_RULES = ("skip", "nan")


def _ratio_per_video(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """(B,) float ratios, NaN where the denominator is 0 (TAP-Vid's 0/0), without a warning."""
    numerator = numerator.astype(np.float64)
    return np.divide(numerator, denominator, out=np.full(numerator.shape, np.nan), where=denominator > 0)


def _mean_over_videos(per_video: np.ndarray, undefined: str) -> float:
    """The benchmark mean of a per-video metric (B,) that is NaN where the video has no value.

    ``undefined="nan"`` is TAP-Vid's ``np.mean``: one undefined video makes the mean NaN.
    ``"skip"`` averages over the videos that define it (NaN only if none does).
    """
    if undefined == "nan":
        return float(np.mean(per_video))
    defined = ~np.isnan(per_video)
    return float(np.mean(per_video[defined])) if defined.any() else float("nan")


def _size(value: Any, name: str) -> tuple[float, float]:
    array = _float(value, name)
    if array.shape != (2,) or not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"{name} must be (height, width), two positive numbers, got {value!r}")
    return float(array[0]), float(array[1])


def average_jaccard(
    pred_tracks: Any,
    pred_visible: Any,
    gt_tracks: Any,
    gt_visible: Any,
    *,
    thresholds: Sequence[float] = (1, 2, 4, 8, 16),
    query_frames: Any = None,
    query_mode: str = "first",
    evaluation_mask: Any = None,
    image_size: tuple[int, int] | None = None,
    thresholds_in: str = "tapvid",
    metric_size: tuple[int, int] = TAPVID_RESOLUTION,
    undefined: str = "skip",
) -> dict[str, float]:
    """TAP-Vid metrics: Average Jaccard, ``< delta^x_avg`` and occlusion accuracy.

    Follows ``compute_tapvid_metrics`` of google-deepmind/tapnet (Doersch et al. 2022). For
    each threshold ``thr`` and evaluated (frame, point):

    - ``within = ||pred - gt|| < thr``;
    - true positive: ``within & gt_visible & pred_visible``;
    - false positive: ``pred_visible & ~(gt_visible & within)`` (predicted visible but
      occluded in the ground truth, or too far);
    - false negative: ``gt_visible & ~(pred_visible & within)``;
    - ``jaccard = TP / (TP + FP + FN)``, computed as ``TP / (gt_visible + FP)``.

    ``pts_within_thr`` is the fraction of evaluated gt-visible points within ``thr``,
    ignoring the visibility prediction; ``occlusion_accuracy`` the fraction of evaluated
    points whose visibility is predicted right. Positions on frames where the ground truth is
    occluded never matter.

    Coordinates (``thresholds_in``): TAP-Vid's thresholds are pixels of 256 x 256 frames;
    its readers scale every video to 256 x 256 before the metric. By default
    (``"tapvid"``) the (x, y) coordinates are therefore rescaled from ``image_size`` to
    ``metric_size`` (256 x 256; each axis on its own, as a resize does) before thresholding,
    and ``image_size`` is required: 1 px at 256 is 0.875 px of a 224 x 224 clip.
    ``"clip"`` applies the thresholds to the coordinates as given (the clip's own pixels;
    more lenient on clips smaller than 256; ``image_size`` is then not used).

    Averaging: each metric is computed per video (counts summed over the video's frames and
    points, then the ratio; AJ per video is the mean of its Jaccards over the thresholds),
    and the result is the mean over the videos of the batch, as TAP-Vid's benchmark mean.
    A ratio that is 0/0 for a video — no evaluated gt-visible point (``pts_within``), no
    gt-visible point and no predicted-visible one (Jaccard), no evaluated point at all
    (everything) — is NaN in TAP-Vid's code, and its ``np.mean`` over videos is then NaN.
    ``undefined="skip"`` (default) leaves such a video out of that metric's mean (the metric
    is NaN only when no video defines it); ``undefined="nan"`` reproduces the reference: the
    mean is NaN as soon as one video is undefined.

    Query protocol: with ``query_frames`` given, only frames the protocol evaluates count —
    ``query_mode="first"`` (TAP-Vid's "query first"): frames strictly after the query frame;
    ``"strided"``: every frame but the query frame — and tracks not visible at their query
    frame are ignored entirely (paper A.2.3). Without ``query_frames`` every frame counts.

    Args:
        pred_tracks: (B, T, Q, 2) predicted (x, y) pixels of ``image_size`` frames.
        pred_visible: (B, T, Q) bool, True = predicted visible (numeric: ``> 0.5``).
        gt_tracks: (B, T, Q, 2) ground-truth (x, y) pixels; only read where gt is visible.
        gt_visible: (B, T, Q) bool, True = visible (numeric: ``> 0.5``).
        thresholds: pixel thresholds, in ``metric_size`` pixels (``"tapvid"``) or the
            coordinates' own (``"clip"``).
        query_frames: optional (B, Q) int frame index of each track's query.
        query_mode: ``"first"`` or ``"strided"``; only used with ``query_frames``.
        evaluation_mask: optional (B, T, Q) bool; False entries are not evaluated (padding).
        image_size: (H, W) of the frames the coordinates are pixels of; required with
            ``thresholds_in="tapvid"``.
        thresholds_in: ``"tapvid"`` (default: thresholds at ``metric_size``) or ``"clip"``.
        metric_size: (H, W) the thresholds are defined at with ``"tapvid"`` (TAP-Vid: 256 x 256).
        undefined: ``"skip"`` or ``"nan"``: what a video whose ratio is 0/0 does to the mean.

    Returns:
        ``{"average_jaccard", "jaccard_<thr>"..., "average_pts_within_thresh",
        "pts_within_<thr>"..., "occlusion_accuracy"}`` as floats in [0, 1] (NaN as above).

    Raises:
        ValueError: bad shapes or options, no ``image_size`` with ``"tapvid"``, non-finite
            predictions, non-finite visible ground truth, query frames out of range, or
            nothing to evaluate.
    """
    if thresholds_in not in THRESHOLD_SPACES:
        raise ValueError(
            f"thresholds_in must be 'tapvid' (thresholds in TAP-Vid's 256x256 pixels) or 'clip' (the clip's own pixels), "
            f"got {thresholds_in!r}"
        )
    if undefined not in UNDEFINED_VIDEO_RULES:
        raise ValueError(f"undefined must be 'skip' (leave 0/0 videos out) or 'nan' (TAP-Vid's NaN mean), got {undefined!r}")
    scale = None
    if thresholds_in == "tapvid":
        if image_size is None:
            raise ValueError(
                "average_jaccard puts its thresholds in TAP-Vid's 256x256 coordinates (thresholds_in='tapvid') and needs "
                "image_size=(H, W), the frames the tracks are pixels of; or pass thresholds_in='clip' to threshold in "
                "those pixels as they are"
            )
        height, width = _size(image_size, "image_size")
        metric_height, metric_width = _size(metric_size, "metric_size")
        scale = np.array([metric_width / width, metric_height / height])  # (x, y) order
    pred_tracks = _float(pred_tracks, "predicted tracks")
    gt_tracks = _float(gt_tracks, "ground-truth tracks")
    if gt_tracks.ndim != 4 or gt_tracks.shape[-1] != 2:
        raise _shape_error("ground-truth tracks", "(B, T, Q, 2)", gt_tracks.shape)
    batch, frames, points, _ = gt_tracks.shape
    _check_same_shape(gt_tracks, "ground-truth tracks", pred_tracks, "predicted tracks")
    _check_finite(pred_tracks, "predicted tracks")
    pred_visible = _bool(pred_visible, "predicted visibility")
    gt_visible = _bool(gt_visible, "ground-truth visibility")
    if pred_visible.shape != (batch, frames, points):
        raise _shape_error("predicted visibility", f"(B, T, Q) = {(batch, frames, points)}", pred_visible.shape)
    if gt_visible.shape != (batch, frames, points):
        raise _shape_error("ground-truth visibility", f"(B, T, Q) = {(batch, frames, points)}", gt_visible.shape)
    if len(thresholds) == 0 or any(float(t) <= 0 for t in thresholds):
        raise ValueError(f"thresholds must be a non-empty sequence of positive pixels, got {thresholds}")

    evaluated = np.ones((batch, frames, points), dtype=bool)
    if evaluation_mask is not None:
        evaluation_mask = _bool(evaluation_mask, "evaluation mask")
        if evaluation_mask.shape != evaluated.shape:
            raise _shape_error("evaluation mask", f"(B, T, Q) = {evaluated.shape}", evaluation_mask.shape)
        evaluated &= evaluation_mask
    if query_frames is not None:
        query = _float(query_frames, "query frames")
        if query.shape != (batch, points):
            raise _shape_error("query frames", f"(B, Q) = {(batch, points)}", query.shape)
        _check_finite(query, "query frames")
        query = np.round(query).astype(np.int64)  # TAP-Vid rounds float query times
        if np.any((query < 0) | (query >= frames)):
            raise ValueError(f"query frames must lie in [0, {frames}), got [{query.min()}, {query.max()}]")
        frame_index = np.arange(frames)[None, :, None]  # (1, T, 1) against (B, 1, Q)
        if query_mode == "first":
            # Everything before the query is known to be occluded (the query is the first
            # visible point), and the query frame itself is given: evaluate after it only.
            evaluated &= frame_index > query[:, None, :]
        elif query_mode == "strided":
            evaluated &= frame_index != query[:, None, :]
        else:
            raise ValueError(f"query_mode must be 'first' or 'strided', got {query_mode!r}")
        # Paper A.2.3: tracks whose query point is not visible are ignored.
        visible_at_query = np.take_along_axis(gt_visible, query[:, None, :], axis=1)  # (B, 1, Q)
        evaluated &= visible_at_query
    if not evaluated.any():
        raise ValueError("no point to evaluate: the query protocol and masks exclude every (frame, point)")

    scored_visible = gt_visible & evaluated
    if not np.all(np.isfinite(gt_tracks[scored_visible])):
        raise ValueError("ground-truth tracks are non-finite at evaluated visible points")
    # Occluded ground truth may hold anything (NaN, -100 padding): its positions never count.
    gt_tracks = np.where(scored_visible[..., None], gt_tracks, 0.0)

    if scale is not None:
        pred_tracks = pred_tracks * scale
        gt_tracks = gt_tracks * scale
    squared_distance = np.sum((pred_tracks - gt_tracks) ** 2, axis=-1)  # (B, T, Q)

    def per_video(flags: np.ndarray) -> np.ndarray:
        return np.sum(flags & evaluated, axis=(1, 2))

    metrics: dict[str, float] = {}
    gt_positives = per_video(gt_visible)
    jaccards, fractions = [], []  # per threshold, (B,) each
    for threshold in thresholds:
        within = squared_distance < float(threshold) ** 2
        correct = within & gt_visible
        true_positives = per_video(correct & pred_visible)
        false_positives = per_video(pred_visible & ~correct)
        jaccard = _ratio_per_video(true_positives, gt_positives + false_positives)
        fraction = _ratio_per_video(per_video(correct), gt_positives)
        name = _threshold_name(threshold)
        metrics[f"jaccard_{name}"] = _mean_over_videos(jaccard, undefined)
        metrics[f"pts_within_{name}"] = _mean_over_videos(fraction, undefined)
        jaccards.append(jaccard)
        fractions.append(fraction)
    # Per video first (NaN if any threshold is), then over videos: TAP-Vid's order.
    metrics["average_jaccard"] = _mean_over_videos(np.mean(np.stack(jaccards, axis=1), axis=1), undefined)
    metrics["average_pts_within_thresh"] = _mean_over_videos(np.mean(np.stack(fractions, axis=1), axis=1), undefined)
    metrics["occlusion_accuracy"] = _mean_over_videos(
        _ratio_per_video(per_video(pred_visible == gt_visible), per_video(evaluated)), undefined
    )
    return metrics


# --------------------------------------------------------------------------------------------
# Box tracking (A.2.4)
# --------------------------------------------------------------------------------------------


def box_iou(boxes_a: Any, boxes_b: Any) -> np.ndarray:
    """Elementwise IoU of (x1, y1, x2, y2) boxes.

    Inverted sides count as zero extent, so degenerate or empty boxes get IoU 0, never NaN
    (an empty union gives 0).

    Args:
        boxes_a: (..., 4) boxes.
        boxes_b: (..., 4) boxes, broadcastable against ``boxes_a``.

    Returns:
        (...) float64 IoU in [0, 1].
    """
    a = _float(boxes_a, "boxes_a")
    b = _float(boxes_b, "boxes_b")
    for array, name in ((a, "boxes_a"), (b, "boxes_b")):
        if array.ndim == 0 or array.shape[-1] != 4:
            raise _shape_error(name, "(..., 4) as (x1, y1, x2, y2)", array.shape)
        _check_finite(array, name)
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"boxes_a {a.shape} and boxes_b {b.shape} do not broadcast") from None

    def area(boxes: np.ndarray) -> np.ndarray:
        return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)

    top_left = np.maximum(a[..., :2], b[..., :2])
    bottom_right = np.minimum(a[..., 2:], b[..., 2:])
    extent = np.clip(bottom_right - top_left, 0, None)
    intersection = extent[..., 0] * extent[..., 1]
    union = area(a) + area(b) - intersection
    # An empty union means both boxes are empty: no overlap to reward.
    return np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)


# `mean_iou(average=...)`: how IoUs are averaged.
IOU_AVERAGES = ("tracks", "boxes")


def mean_iou(
    pred_boxes: Any,
    gt_boxes: Any,
    *,
    box_valid: Any = None,
    skip_first_frame: bool = True,
    average: str = "tracks",
) -> float:
    """Box IoU averaged per track, then per video, then over videos, without the initial frame.

    The initial frame is where the query boxes are given, so it measures nothing (paper
    A.2.4). ``average="tracks"`` (default) is the order of DeepMind's Perception Test box
    tracking evaluator (``run_iou`` / ``summarise_results`` in ``perception_test``'s
    ``baselines/single_object_tracking.ipynb``): each track's IoU is its mean over its
    valid frames, each video's the mean over its tracks, the result the mean over videos.
    Tracks with no valid frame (after the first) and videos with no such track are left out,
    as the evaluator skips them. ``average="boxes"`` is the pooled mean over every valid
    (video, frame, box) entry (this function's behaviour before), which weighs long tracks
    and crowded videos more.

    Args:
        pred_boxes: (B, T, K, 4) predicted (x1, y1, x2, y2) pixels; track ``k`` of video ``b``
            is ``[b, :, k]``.
        gt_boxes: (B, T, K, 4) ground truth; only read where valid.
        box_valid: optional (B, T, K) bool; False excludes padded or invisible boxes.
        skip_first_frame: leave frame 0 out (the paper's protocol).
        average: ``"tracks"`` (per track, per video, over videos) or ``"boxes"`` (pooled).

    Returns:
        Mean IoU as a Python float.

    Raises:
        ValueError: bad shapes or ``average``, non-finite predictions or valid ground truth,
            or no valid box.
    """
    if average not in IOU_AVERAGES:
        raise ValueError(f"average must be 'tracks' (per track, per video, over videos) or 'boxes' (pooled), got {average!r}")
    pred = _float(pred_boxes, "predicted boxes")
    gt = _float(gt_boxes, "ground-truth boxes")
    if gt.ndim != 4 or gt.shape[-1] != 4:
        raise _shape_error("ground-truth boxes", "(B, T, K, 4)", gt.shape)
    _check_same_shape(gt, "ground-truth boxes", pred, "predicted boxes")
    _check_finite(pred, "predicted boxes")
    valid = np.ones(gt.shape[:-1], dtype=bool)
    if box_valid is not None:
        box_valid = _bool(box_valid, "box_valid")
        if box_valid.shape != valid.shape:
            raise _shape_error("box_valid", f"(B, T, K) = {valid.shape}", box_valid.shape)
        valid &= box_valid
    if skip_first_frame:
        valid[:, 0] = False
    if not valid.any():
        raise ValueError("no valid box to evaluate" + (" after the first frame" if skip_first_frame else ""))
    if not np.all(np.isfinite(gt[valid])):
        raise ValueError("ground-truth boxes are non-finite where box_valid is True")
    if average == "boxes":
        return float(np.mean(box_iou(pred[valid], gt[valid])))
    iou = np.zeros(valid.shape, dtype=np.float64)
    iou[valid] = box_iou(pred[valid], gt[valid])
    frames_per_track = valid.sum(axis=1)  # (B, K)
    tracked = frames_per_track > 0
    per_track = np.divide(iou.sum(axis=1), frames_per_track, out=np.zeros(tracked.shape), where=tracked)
    tracks_per_video = tracked.sum(axis=1)  # (B,)
    videos = tracks_per_video > 0
    per_video = per_track.sum(axis=1)[videos] / tracks_per_video[videos]
    return float(np.mean(per_video))


# --------------------------------------------------------------------------------------------
# Camera pose (A.2.2)
# --------------------------------------------------------------------------------------------


def default_cube_points(side: float = 1.0, distance: float = 2.0) -> np.ndarray:
    """The 8 corners of an axis-aligned cube centred ``distance`` in front of the camera.

    The paper uses "8 auxiliary points forming a virtual cube in front of the camera of the
    first frame" without giving its size or position; our default is a 1 m cube centred 2 m
    along the optical axis (+z): x, y in {-0.5, +0.5}, z in {1.5, 2.5} metres.

    Returns:
        (8, 3) float64 points (x, y, z) in the first camera's frame.
    """
    half = side / 2.0
    corners = [(x, y, distance + z) for x in (-half, half) for y in (-half, half) for z in (-half, half)]
    return np.array(corners, dtype=np.float64)


def project_to_rotation(matrices: Any) -> np.ndarray:
    """Closest rotation in SO(3) (Frobenius norm) to each 3x3 matrix: Procrustes via SVD.

    ``R = U diag(1, 1, det(U V^T)) V^T`` where ``M = U S V^T``; the determinant fix keeps
    reflections out of the result.

    Args:
        matrices: (..., 3, 3).

    Returns:
        (..., 3, 3) float64 rotations.
    """
    m = _float(matrices, "rotation matrices")
    if m.ndim < 2 or m.shape[-2:] != (3, 3):
        raise _shape_error("rotation matrices", "(..., 3, 3)", m.shape)
    _check_finite(m, "rotation matrices")
    u, _, vh = np.linalg.svd(m)
    sign = np.sign(np.linalg.det(u @ vh))
    sign = np.where(sign == 0, 1.0, sign)  # rank-deficient input: any sign is as close
    fix = np.ones(m.shape[:-1])
    fix[..., -1] = sign
    return (u * fix[..., None, :]) @ vh


def _poses(value: Any, name: str) -> np.ndarray:
    pose = _float(value, name)
    if pose.ndim == 2:  # a single pose
        pose = pose[None]
    if pose.ndim != 3 or pose.shape[-2:] not in ((4, 4), (3, 4)):
        raise _shape_error(name, "(B, 4, 4) or (B, 3, 4)", pose.shape)
    return pose[:, :3, :]  # the bottom row of a rigid transform carries nothing


# `pose_end_point_error(pose_direction=...)`: which way the given 4x4 poses map points.
POSE_DIRECTIONS = ("last_to_first", "first_to_last")


def _invert_poses(pose: np.ndarray, rigid: bool, name: str) -> np.ndarray:
    """(B, 3, 4) inverses of ``X -> M X + t``: ``X -> M^-1 (X - t)`` (``M^T`` when ``rigid``)."""
    m, t = pose[:, :, :3], pose[:, :, 3]
    if rigid:
        inverse = np.swapaxes(m, -1, -2)
    else:
        if np.any(np.abs(np.linalg.det(m)) < 1e-12):
            raise ValueError(
                f"{name} has a singular 3x3 block: it cannot be inverted to map the first camera's frame; "
                "pass rigid poses (project_rotation=True for predictions) or pose_direction='first_to_last'"
            )
        inverse = np.linalg.inv(m)
    return np.concatenate([inverse, -np.einsum("bij,bj->bi", inverse, t)[..., None]], axis=-1)


def pose_end_point_error(
    pred_pose: Any,
    gt_pose: Any,
    *,
    cube_points: Any = None,
    project_rotation: bool = True,
    pose_direction: str = "last_to_first",
) -> float:
    """Pose end-point error: mean ``||P(X_j) - P_hat(X_j)||`` over cube corners, then batch.

    The paper (A.2.2) moves "8 auxiliary points forming a virtual cube in front of the camera
    of the first frame" with the true and the estimated relative pose. The points ``X_j`` are
    therefore coordinates in the **first** camera's frame (:func:`default_cube_points`: a 1 m
    cube centred 2 m ahead; the paper does not give its size), and ``P`` must take
    first-camera coordinates: ``P = inv(c2w_last) @ c2w_first`` maps them into the last
    camera's frame, i.e. ``P(X_j)`` is where the cube appears to the last camera.

    Our pose labels (``fourd_hub.data.synthetic.relative_pose``), the readouts trained on them
    and :class:`~fourd_hub.results.CameraPoseResult` use the other direction,
    ``inv(c2w_first) @ c2w_last`` (last camera -> first camera; its translation is the last
    camera's centre seen from the first). With ``pose_direction="last_to_first"`` (default)
    both poses are inverted before moving the cube; ``"first_to_last"`` uses them as given
    (for poses already in the metric's direction — and this function's behaviour before,
    which applied our last -> first poses directly and so scored a cube in front of the
    *last* camera). A pure translation error ``d`` gives ``||d||`` either way (and so does any
    pose against the identity); errors that mix rotation and translation differ.

    Args:
        pred_pose: (B, 4, 4) or (B, 3, 4) predicted poses (a single (4, 4) / (3, 4) too).
        gt_pose: (B, 4, 4) or (B, 3, 4) ground-truth poses, in the same direction.
        cube_points: optional (N, 3) points in the first camera's frame; default the cube.
        project_rotation: project the predicted 3x3 block onto SO(3) first (Procrustes, as the
            paper does before computing the metric). Our readouts already output rotations;
            this keeps raw regressions comparable. Without it a non-rigid prediction is
            inverted as a general affine map.
        pose_direction: ``"last_to_first"`` (default; our labels') or ``"first_to_last"``.

    Returns:
        Mean end-point error (in the translation's unit, metres for RealEstate10k) as a float.

    Raises:
        ValueError: bad shapes or ``pose_direction``, non-finite poses or points, or a
            singular unprojected prediction to invert.
    """
    if pose_direction not in POSE_DIRECTIONS:
        raise ValueError(
            f"pose_direction must be 'last_to_first' (our labels: last camera -> first camera) or 'first_to_last', "
            f"got {pose_direction!r}"
        )
    pred = _poses(pred_pose, "predicted pose")
    gt = _poses(gt_pose, "ground-truth pose")
    if pred.shape[0] != gt.shape[0]:
        raise ValueError(f"predicted pose batch {pred.shape[0]} differs from ground-truth batch {gt.shape[0]}")
    _check_finite(pred, "predicted pose")
    _check_finite(gt, "ground-truth pose")
    points = default_cube_points() if cube_points is None else _float(cube_points, "cube points")
    if points.ndim != 2 or points.shape[-1] != 3 or points.shape[0] == 0:
        raise _shape_error("cube points", "(N, 3) with N > 0", points.shape)
    _check_finite(points, "cube points")
    if project_rotation:
        pred = np.concatenate([project_to_rotation(pred[:, :, :3]), pred[:, :, 3:]], axis=-1)
    if pose_direction == "last_to_first":
        gt = _invert_poses(gt, rigid=False, name="ground-truth pose")  # as given, like before: no projection
        pred = _invert_poses(pred, rigid=project_rotation, name="predicted pose")

    def transform(pose: np.ndarray) -> np.ndarray:
        return np.einsum("bij,nj->bni", pose[:, :, :3], points) + pose[:, None, :, 3]  # (B, N, 3)

    return float(np.mean(np.linalg.norm(transform(gt) - transform(pred), axis=-1)))


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


def top1_accuracy(logits: Any, labels: Any) -> float:
    """Fraction of samples whose highest logit is the label.

    Args:
        logits: (B, C) scores (logits or probabilities).
        labels: (B,) int class indices in [0, C).
    """
    logits = _float(logits, "logits")
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise _shape_error("logits", "(B, C) with B > 0", logits.shape)
    _check_finite(logits, "logits")
    labels = _to_numpy(labels, "labels")
    if labels.shape != (logits.shape[0],):
        raise _shape_error("labels", f"(B,) = ({logits.shape[0]},)", labels.shape)
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.issubdtype(labels.dtype, np.floating) or not np.all(np.mod(labels, 1) == 0):
            raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
    if np.any((labels < 0) | (labels >= logits.shape[1])):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got [{labels.min()}, {labels.max()}]")
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


# --------------------------------------------------------------------------------------------
# transformers.Trainer compute_metrics
# --------------------------------------------------------------------------------------------


def _entries(value: Any, count: int, what: str) -> tuple:
    """The first ``count`` entries of a tuple/list (extra model outputs are ignored)."""
    if not isinstance(value, (tuple, list)):
        if count == 1:
            return (value,)
        raise ValueError(f"{what} must be a tuple of at least {count} arrays, got {type(value).__name__}")
    if len(value) < count:
        raise ValueError(f"{what} must hold at least {count} arrays, got {len(value)}")
    return tuple(value[:count])


def _depth_metrics(predictions: Any, labels: Any, kwargs: dict) -> dict[str, float]:
    (depth,) = _entries(predictions, 1, "depth predictions")
    (target,) = _entries(labels, 1, "depth labels")
    return {"abs_rel": abs_rel(depth, target, **kwargs)}


def _points_metrics(predictions: Any, labels: Any, kwargs: dict) -> dict[str, float]:
    tracks, visible = _entries(predictions, 2, "point predictions (tracks, visible, ...)")
    gt_tracks, gt_visible = _entries(labels, 2, "point labels (tracks, visibility)")
    gt_tracks = _to_numpy(gt_tracks, "point labels")
    if gt_tracks.ndim != 4:
        raise _shape_error("point labels", "(N, T, Q, 2)", gt_tracks.shape)
    # Our protocol queries every track on frame 0 (paper A.2.3). Trainer padding (-100
    # visibility) reads as not visible at the query frame, so padded tracks are ignored.
    query_frames = np.zeros((gt_tracks.shape[0], gt_tracks.shape[2]), dtype=np.int64)
    return average_jaccard(tracks, visible, gt_tracks, gt_visible, query_frames=query_frames, **kwargs)


def _boxes_metrics(predictions: Any, labels: Any, kwargs: dict) -> dict[str, float]:
    (boxes,) = _entries(predictions, 1, "box predictions")
    (target,) = _entries(labels, 1, "box labels")
    target = _float(target, "box labels")
    if target.ndim != 4 or target.shape[-1] != 4:
        raise _shape_error("box labels", "(N, T, K, 4)", target.shape)
    # Labels carry no validity flag: padded slots (Trainer's -100, NaN, or empty boxes,
    # which no prediction can overlap) are the invalid ones.
    with np.errstate(invalid="ignore"):
        valid = (
            np.all(np.isfinite(target), axis=-1)
            & ~np.all(target == _HF_PADDING, axis=-1)
            & (target[..., 2] > target[..., 0])
            & (target[..., 3] > target[..., 1])
        )
    return {"mean_iou": mean_iou(boxes, target, box_valid=valid, **kwargs)}


def _pose_metrics(predictions: Any, labels: Any, kwargs: dict) -> dict[str, float]:
    (pose,) = _entries(predictions, 1, "pose predictions (pose, ...)")
    (target,) = _entries(labels, 1, "pose labels")
    return {"end_point_error": pose_end_point_error(pose, target, **kwargs)}


def _classification_metrics(predictions: Any, labels: Any, kwargs: dict) -> dict[str, float]:
    (logits,) = _entries(predictions, 1, "classification predictions")
    (target,) = _entries(labels, 1, "classification labels")
    return {"top1": top1_accuracy(logits, target, **kwargs)}


# task -> (metric function whose keyword arguments `metric_kwargs` may set, evaluator)
_TASK_METRICS: dict[str, tuple[Callable[..., Any], Callable[[Any, Any, dict], dict[str, float]]]] = {
    "depth": (abs_rel, _depth_metrics),
    "points": (average_jaccard, _points_metrics),
    "boxes": (mean_iou, _boxes_metrics),
    "pose": (pose_end_point_error, _pose_metrics),
    "classification": (top1_accuracy, _classification_metrics),
}
# The readouts call the pose task "camera_pose" (fourd_hub.readout.READOUT_TASKS).
_ALIASES = {"camera_pose": "pose"}
TASKS = tuple(_TASK_METRICS)

# Arguments the builders fill in themselves.
_RESERVED = {"points": {"query_frames"}, "boxes": {"box_valid"}}


def _prepare_points_kwargs(kwargs: dict, clip_size: Any) -> None:
    """Fill ``image_size`` from ``clip_size`` and fail now, not at the first evaluation, without one."""
    if kwargs.get("image_size") is None and clip_size is not None:
        kwargs["image_size"] = tuple(clip_size)
    if kwargs.get("thresholds_in", "tapvid") == "tapvid" and kwargs.get("image_size") is None:
        raise ValueError(
            "the points metric puts its thresholds in TAP-Vid's 256x256 coordinates and needs the clips' size: "
            "make_compute_metrics('points', image_size=(H, W)) (or clip_size=(H, W)); "
            "thresholds_in='clip' thresholds in the clips' own pixels instead"
        )


# Per-task preparation of the metric keyword arguments (given the clips' size).
_PREPARE: dict[str, Callable[[dict, Any], None]] = {"points": _prepare_points_kwargs}


def make_compute_metrics(task: str, *, clip_size: Any = None, **metric_kwargs: Any) -> Callable[[Any], dict[str, float]]:
    """A ``compute_metrics`` for :class:`transformers.Trainer` on one readout task.

    The callable takes an :class:`transformers.EvalPrediction` (or a ``(predictions,
    label_ids)`` pair) and returns a dict of floats. Predictions/labels may be arrays or
    tuples/lists (the Trainer gives a tuple when the model output has several fields; only the
    leading ones are read):

    ============== ======================================= ====================================
    task           predictions                             label_ids -> metrics
    ============== ======================================= ====================================
    depth          depth (N, T, H, W)                      depth (N, T, H, W) -> abs_rel
    points         (tracks (N, T, Q, 2) px, visible        (tracks, visibility (N, T, Q))
                   (N, T, Q), ...)                         -> average_jaccard dict
    boxes          boxes (N, T, K, 4) px                   boxes (N, T, K, 4) -> mean_iou
    pose           (pose (N, 4, 4), ...)                   pose (N, 4, 4) -> end_point_error
    classification logits (N, C)                           labels (N,) -> top1
    ============== ======================================= ====================================

    The metrics use the benchmarks' conventions by default (see each function): depth AbsRel
    per frame, then over frames; point thresholds in TAP-Vid's 256 x 256 coordinates, so the
    points task needs the clips' size (``image_size=(H, W)`` or ``clip_size=(H, W)``; a
    ``ValueError`` here otherwise, or pass ``thresholds_in="clip"``); box IoU per track, per
    video, then over videos; pose error on a cube in front of the first camera, for poses in
    our labels' direction (last camera -> first camera).

    ``"camera_pose"`` is accepted for ``"pose"``. Points: every track is queried on frame 0
    (query-first protocol: frame 0 is not evaluated, tracks invisible on frame 0 are ignored).
    Boxes: label boxes that are non-finite, all -100 or empty are treated as padding.

    The Trainer concatenates eval batches and pads with -100 only where shapes differ beyond
    the first dimension; our datasets have fixed shapes, and the -100 padding of point
    visibilities and boxes is excluded as described above (for depth, -100 is outside
    ``valid_range``).

    Args:
        task: ``"depth"``, ``"points"``, ``"boxes"``, ``"pose"`` or ``"classification"``.
        clip_size: (H, W) of the evaluated clips, for the metrics that need it (points: the
            default ``image_size``); ignored by the others, so callers can pass it for any task.
        **metric_kwargs: keyword arguments of the task's metric (e.g. ``valid_range`` /
            ``mask`` / ``reduction`` for depth, ``image_size`` / ``thresholds_in`` /
            ``thresholds`` for points, ``average`` for boxes, ``cube_points`` /
            ``pose_direction`` for pose), checked here.

    Raises:
        ValueError: unknown task, or points without a clip size (see above).
        TypeError: a keyword the metric does not take.
    """
    key = _ALIASES.get(task, task)
    if key not in _TASK_METRICS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS} (or 'camera_pose')")
    metric, evaluate = _TASK_METRICS[key]
    parameters = inspect.signature(metric).parameters
    allowed = {n for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY} - _RESERVED.get(key, set())
    unknown = set(metric_kwargs) - allowed
    if unknown:
        raise TypeError(f"{metric.__name__} (task {task!r}) takes no {sorted(unknown)}; allowed: {sorted(allowed)}")
    kwargs = dict(metric_kwargs)
    if key in _PREPARE:
        _PREPARE[key](kwargs, clip_size)

    def compute_metrics(eval_pred: Any) -> dict[str, float]:
        if hasattr(eval_pred, "predictions"):
            predictions, labels = eval_pred.predictions, eval_pred.label_ids
        else:
            predictions, labels = eval_pred[0], eval_pred[1]
        if labels is None:
            raise ValueError(f"no labels to compute {task!r} metrics; set the Trainer's label_names")
        return evaluate(predictions, labels, kwargs)

    compute_metrics.__name__ = f"compute_{key}_metrics"
    compute_metrics.__qualname__ = compute_metrics.__name__
    return compute_metrics
