"""Benchmark loops: DAVIS-2017 (J&F), JHMDB (PCK) and VIP (mIoU), from a model or from saved predictions.

Each ``evaluate_*`` function takes a checked dataset (:mod:`fourd_hub.evaluation.datasets`) and
either a *predictor* (a callable running a model on one video, see :func:`segmentation_predictor`
and :func:`keypoint_predictor`, which wrap the ``video-object-segmentation`` and
``keypoint-tracking`` pipelines with the protocol's settings) or saved predictions, scores every
video with :mod:`fourd_hub.evaluation.metrics` and returns an :class:`EvaluationResult` (summary
and per-video numbers, in percent). Nothing is written here except predictions into a directory
the caller stages (the CLI commits it and the JSON only when every video has been scored).

Protocol (``shared/docs/rvm.md`` 6.1 - 6.5, ``docs/evaluation.md``):

- DAVIS: the first annotation (void 255 read as background, as davis2017-evaluation does) is
  propagated at 480 x 880; J and F on frames 1 .. T-2 for objects 1 .. the first annotation's
  largest label (davis2017-evaluation's object count); global means over all objects.
- JHMDB: the first frame's joints (``pos_img - 1``) are propagated at 320 x 320; PCK over frames
  1 .. T-1 with the *predicted* visibility, distances pooled per joint over all videos.
- VIP: the first class map is propagated at 448 x 880 with top-k 10; one 20-class confusion
  histogram over every frame of every video; mIoU = nan-mean of the per-class IoU.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from ..label_propagation import PROPAGATION_DEFAULTS

from .datasets import (
    VOID_LABEL,
    DatasetError,
    DavisDataset,
    JhmdbDataset,
    VipDataset,
    check_label_pngs,
    davis_palette,
    read_label_maps,
    write_label_png,
)
from .metrics import (
    VIP_CLASSES,
    ConfusionHistogram,
    davis_global_results,
    davis_sequence_metrics,
    db_statistics,
    jhmdb_distances,
    jhmdb_pck,
    vip_miou,
)

__all__ = [
    "DAVIS_SIZE",
    "JHMDB_SIZE",
    "VIP_SIZE",
    "PROPAGATION",
    "PCK_THRESHOLDS",
    "EvaluationResult",
    "segmentation_predictor",
    "keypoint_predictor",
    "evaluate_davis",
    "evaluate_jhmdb",
    "evaluate_vip",
    "read_keypoint_predictions",
    "write_keypoint_predictions",
]

#: Processing sizes (H, W) of the protocol (6.1).
DAVIS_SIZE, JHMDB_SIZE, VIP_SIZE = (480, 880), (320, 320), (448, 880)
#: Label-propagation parameters of the evaluation demo (6.2); VIP uses topk=10 (6.5).
PROPAGATION = dict(PROPAGATION_DEFAULTS)
VIP_PROPAGATION = dict(PROPAGATION, topk=10)
PCK_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)

#: A segmentation predictor: (frames (T, H, W, 3) uint8, first label map (H, W) uint8) -> (T, H, W) label maps.
SegmentationPredictor = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: A keypoint predictor: (frames (T, H, W, 3) uint8, first-frame joints (K, 2) x, y) -> ((T, K, 2), (T, K) visible).
KeypointPredictor = Callable[[np.ndarray, np.ndarray], "tuple[np.ndarray, np.ndarray]"]


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="video")


def _percent(value: float) -> float | None:
    """x 100 for the report; NaN (undefined, e.g. a decay with an empty bin) -> None (JSON null)."""
    return None if value is None or not math.isfinite(value) else 100.0 * float(value)


def _finite_or_none(values) -> list:
    return [None if not math.isfinite(v) else float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


@dataclass
class EvaluationResult:
    """Scores of one benchmark run.

    Attributes:
        benchmark: ``"davis-2017"``, ``"jhmdb"`` or ``"vip"``.
        summary: the headline numbers in percent, in print order (e.g. ``{"J&F-Mean": 100.0, ...}``).
        videos: per-video results (see ``docs/evaluation.md`` for the fields), in percent.
        settings: what was run: dataset, split, model or predictions, processing size, parameters.
        extra: other whole-benchmark results (JHMDB per-joint PCK, VIP per-class IoU and histogram).
    """

    benchmark: str
    summary: dict[str, float | None]
    videos: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (percentages; null where undefined)."""
        return {
            "benchmark": self.benchmark,
            "units": "percent",
            "settings": self.settings,
            "summary": self.summary,
            **self.extra,
            "videos": self.videos,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as strict JSON (no NaN or Infinity)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def table(self) -> str:
        """The summary as a two-line table, as davis2017-evaluation prints its global results."""
        names = list(self.summary)
        cells = ["n/a" if self.summary[n] is None else f"{self.summary[n]:.3f}" for n in names]
        widths = [max(len(n), len(c)) for n, c in zip(names, cells)]
        return "\n".join(
            "  ".join(text.rjust(width) for text, width in zip(row, widths)) for row in (names, cells)
        )


# --------------------------------------------------------------------------------------------------
# Predictors: the pipelines with the protocol's settings


def segmentation_predictor(
    model,
    *,
    size: tuple[int, int] = DAVIS_SIZE,
    device=None,
    propagation: dict | None = None,
) -> SegmentationPredictor:
    """A segmentation predictor running the ``video-object-segmentation`` pipeline.

    Args:
        model: a loaded model, a catalog name, a model directory or a Hub repo id (a family whose
            frame features lie on a spatial grid: RVM, 4DS).
        size: the processing size (H, W): 480 x 880 for DAVIS, 448 x 880 for VIP.
        device: where to run (``--device``).
        propagation: label-propagation parameters; default :data:`PROPAGATION`.

    Returns:
        ``predict(frames (T, H, W, 3) uint8, first_mask (H, W) uint8) -> (T, H, W) label maps``
        (frame 0 included: it is propagated too).
    """
    from .. import pipeline

    params = dict(PROPAGATION if propagation is None else propagation)
    segmenter = pipeline("video-object-segmentation", model=model, device=device, progress=False)

    def predict(frames: np.ndarray, first_mask: np.ndarray) -> np.ndarray:
        return np.asarray(segmenter(frames, mask=first_mask, size=tuple(size), **params).masks)

    return predict


def keypoint_predictor(model, *, size: tuple[int, int] = JHMDB_SIZE, device=None, propagation: dict | None = None) -> KeypointPredictor:
    """A keypoint predictor running the ``keypoint-tracking`` pipeline (see :func:`segmentation_predictor`).

    Returns:
        ``predict(frames (T, H, W, 3) uint8, keypoints (K, 2) x, y) -> (keypoints (T, K, 2), visible (T, K))``.
    """
    from .. import pipeline

    params = dict(PROPAGATION if propagation is None else propagation)
    tracker = pipeline("keypoint-tracking", model=model, device=device, progress=False)

    def predict(frames: np.ndarray, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # allow_outside: JHMDB keeps joints outside the first frame (never visible), as the protocol does.
        result = tracker(frames, keypoints=keypoints, allow_outside=True, size=tuple(size), **params)
        return np.asarray(result.keypoints), np.asarray(result.visible)

    return predict


def _check_predicted_masks(masks, shape: tuple[int, ...], name: str) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.shape != shape:
        raise ValueError(f"the predictor returned label maps of shape {masks.shape} for video {name}; expected {shape} (T, H, W)")
    if not np.issubdtype(masks.dtype, np.integer):
        raise TypeError(f"the predictor returned {masks.dtype} label maps for video {name}; expected integer labels")
    return masks


def _palette_of(path: Path) -> np.ndarray:
    """The palette of a palette PNG as (256, 3) uint8 (DAVIS's default when it has none)."""
    with Image.open(path) as image:
        colours = image.getpalette() if image.mode == "P" else None
    if not colours:
        return davis_palette()
    palette = np.zeros(768, dtype=np.uint8)
    palette[: len(colours)] = colours[:768]
    return palette.reshape(256, 3)


# --------------------------------------------------------------------------------------------------
# DAVIS-2017


def _object_scores(J: np.ndarray, F: np.ndarray) -> dict[str, dict[str, Any]]:
    objects = {}
    for index, (j_row, f_row) in enumerate(zip(J, F), start=1):
        jm, jr, jd = db_statistics(j_row)
        fm, fr, fd = db_statistics(f_row)
        objects[str(index)] = {
            "J&F-Mean": _percent((jm + fm) / 2),
            "J-Mean": _percent(jm), "J-Recall": _percent(jr), "J-Decay": _percent(jd),
            "F-Mean": _percent(fm), "F-Recall": _percent(fr), "F-Decay": _percent(fd),
            "J": [_percent(v) for v in j_row], "F": [_percent(v) for v in f_row],
        }
    return objects


def _check_saved_predictions(predictions, dataset, benchmark: str, stems_of, what: str, hint: str = "") -> Path:
    """The results directory of a segmentation benchmark, every file the scoring reads checked
    (present, label PNG of the annotations' size) before any work: ``<dir>/<video>/<stem>.png`` for
    the ``stems_of(video)`` of each video."""
    predictions = Path(predictions)
    if not predictions.is_dir():
        raise FileNotFoundError(f"{benchmark} predictions directory not found: {predictions}")
    for video in dataset:
        paths = [predictions / video.name / f"{stem}.png" for stem in stems_of(video)]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"prediction {missing[0]} not found ({len(missing)} of the {len(paths)} {what} of {video.name} are missing){hint}"
            )
        check_label_pngs(paths, video.size, f"prediction for {benchmark} video {video.name}")
    return predictions


def _predict_labels(video, gt: np.ndarray, predictor: SegmentationPredictor, save_predictions) -> np.ndarray:
    """The predictor's (T, H, W) label maps of a segmentation video from its first annotation, checked;
    with ``save_predictions``, also written as palette PNGs (the annotation's palette) in the results layout."""
    masks = _check_predicted_masks(predictor(video.read_frames(), gt[0]), gt.shape, video.name)
    if save_predictions is not None:
        palette = _palette_of(video.annotations[0])
        target = Path(save_predictions) / video.name
        target.mkdir(parents=True, exist_ok=True)
        for stem, labels in zip(video.frame_ids, masks):
            write_label_png(target / f"{stem}.png", labels, palette)
    return masks


def evaluate_davis(
    dataset: DavisDataset,
    *,
    predictor: SegmentationPredictor | None = None,
    predictions: str | os.PathLike | None = None,
    save_predictions: str | os.PathLike | None = None,
    progress: bool = True,
    settings: dict | None = None,
) -> EvaluationResult:
    """Score DAVIS-2017 semi-supervised video object segmentation (J&F).

    Exactly one of ``predictor`` and ``predictions``. Saved predictions use davis2017-evaluation's
    results layout, ``<predictions>/<video>/<annotation stem>.png`` (palette or 8-bit greyscale
    label PNGs at the annotations' size); as in the reference only frames 1 .. T-2 are read (the
    first and last may be absent), and a label above the video's object count is an error. All
    prediction files are checked (existence, mode, size) before the first video is scored.

    Args:
        dataset: the checked split.
        predictor: runs a model on one video (see :func:`segmentation_predictor`).
        predictions: a results directory to score instead.
        save_predictions: with ``predictor``, write every frame's label map (frame 0 included) as a
            palette PNG (the annotation's palette) into this existing directory, in the results layout.
        progress: a progress bar over the videos.
        settings: recorded in the result (model name, size, parameters, ...).

    Returns:
        The :class:`EvaluationResult`: summary J&F-Mean, J-Mean, J-Recall, J-Decay, F-Mean,
        F-Recall, F-Decay; per video its object count and per object the same measures with the
        per-frame J and F (frames 1 .. T-2).
    """
    if (predictor is None) == (predictions is None):
        raise ValueError("evaluate_davis needs a predictor (a model) or a predictions directory, not both")
    if predictions is not None:
        predictions = _check_saved_predictions(
            predictions, dataset, "DAVIS", lambda video: video.frame_ids[1:-1], "scored frames",
            "; DAVIS results are <dir>/<video>/<annotation name>.png for frames 1 .. T-2",
        )
    per_video, videos = [], {}
    for video in _progress(dataset.videos, progress, "DAVIS-2017"):
        gt = video.read_annotations()
        gt = np.where(gt == VOID_LABEL, 0, gt)  # davis2017-evaluation: void pixels -> background
        num_objects = int(gt[0].max())
        if predictor is not None:
            scored = _predict_labels(video, gt, predictor, save_predictions)[1:-1]
        else:
            paths = [predictions / video.name / f"{stem}.png" for stem in video.frame_ids[1:-1]]
            scored = read_label_maps(paths, f"prediction for DAVIS video {video.name}")
        highest = int(scored.max()) if scored.size else 0
        if highest > num_objects:
            raise DatasetError(
                f"the prediction for {video.name} has label {highest}, but its first annotation has {num_objects} object(s): "
                "davis2017-evaluation refuses an index higher than the number of objects"
            )
        full = np.concatenate([gt[:1], scored.astype(gt.dtype), gt[-1:]])  # frames 0 and T-1 are not scored
        J, F = davis_sequence_metrics(gt, full, num_objects=num_objects)
        per_video.append((J, F))
        videos[video.name] = {"num_frames": len(gt), "num_objects": num_objects, "objects": _object_scores(J, F)}
    if not any(len(J) for J, _ in per_video):
        raise DatasetError("no DAVIS object to score: every first annotation is empty")
    summary = {key: _percent(value) for key, value in davis_global_results(per_video).items()}
    return EvaluationResult("davis-2017", summary, videos, dict(settings or {}))


# --------------------------------------------------------------------------------------------------
# JHMDB


def write_keypoint_predictions(path: str | os.PathLike, predictions: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """Write keypoint predictions as ``.npz`` (see :func:`read_keypoint_predictions`), atomically."""
    from .._files import write_atomic

    arrays: dict[str, np.ndarray] = {"videos": np.array(list(predictions), dtype=np.str_)}
    for index, (keypoints, visible) in enumerate(predictions.values()):
        arrays[f"keypoints_{index}"] = np.asarray(keypoints, dtype=np.float32)
        arrays[f"visible_{index}"] = np.asarray(visible, dtype=bool)
    return write_atomic(path, lambda stream: np.savez(stream, **arrays))


def _keypoint_entry(name: str, keypoints, visible, source) -> tuple[np.ndarray, np.ndarray]:
    try:
        keypoints = np.asarray(keypoints, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f"{source}: the keypoints of {name} are not a numeric (T, K, 2) array") from None
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
        raise DatasetError(f"{source}: the keypoints of {name} must be (T, K, 2) (x, y), got shape {keypoints.shape}")
    if not np.isfinite(keypoints).all():
        raise DatasetError(f"{source}: the keypoints of {name} contain NaN or infinite values (use -1 for invisible joints)")
    if visible is None:
        visible = keypoints[..., 0] >= 0  # process_pose's rule
    visible = np.asarray(visible)
    if visible.shape != keypoints.shape[:2] or visible.dtype.kind not in "bi":
        raise DatasetError(f"{source}: the visibility of {name} must be a (T, K) = {keypoints.shape[:2]} boolean array, got {visible.dtype} {visible.shape}")
    return keypoints.astype(np.float32), visible.astype(bool)


def read_keypoint_predictions(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read keypoint predictions: ``{"<class>/<video>": (keypoints (T, K, 2) float32, visible (T, K) bool)}``.

    Formats:

    - ``.npz`` (what ``--save-predictions`` writes): ``videos`` (N,) strings, and for the i-th video
      ``keypoints_<i>`` (T, K, 2) float (x, y) pixels and ``visible_<i>`` (T, K) bool.
    - ``.json``: ``{"videos": {"<class>/<video>": {"keypoints": [[[x, y], ...], ...], "visible": [[true, ...], ...]}}}``.

    ``visible`` may be left out: joints with x >= 0 are visible (the protocol's ``process_pose``
    writes -1 for invisible joints). Read with ``allow_pickle=False``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"keypoint predictions not found: {path}")
    suffix = path.suffix.lower()
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError) as error:
            raise DatasetError(f"{path} is not a readable .npz file ({error})") from None
        if "videos" not in arrays:
            raise DatasetError(f"{path} has no 'videos' array: see read_keypoint_predictions for the format")
        names = arrays["videos"]
        if names.ndim != 1 or names.dtype.kind != "U":
            raise DatasetError(f"{path}: 'videos' must be a 1-D array of strings, got {names.dtype} {names.shape}")
        for index, name in enumerate(names.tolist()):
            if f"keypoints_{index}" not in arrays:
                raise DatasetError(f"{path} has no 'keypoints_{index}' array for video {name}")
            out[name] = _keypoint_entry(name, arrays[f"keypoints_{index}"], arrays.get(f"visible_{index}"), path)
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DatasetError(f"{path} is not readable JSON ({error})") from None
        entries = data.get("videos") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            raise DatasetError(f'{path} must hold {{"videos": {{"<class>/<video>": {{"keypoints": ..., "visible": ...}}}}}}')
        for name, entry in entries.items():
            if not isinstance(entry, dict) or "keypoints" not in entry:
                raise DatasetError(f"{path}: video {name} needs a 'keypoints' list")
            out[name] = _keypoint_entry(name, entry["keypoints"], entry.get("visible"), path)
    else:
        raise ValueError(f"keypoint predictions must be a .npz or .json file, got {path.name}")
    if not out:
        raise DatasetError(f"{path} holds no video")
    return out


def evaluate_jhmdb(
    dataset: JhmdbDataset,
    *,
    predictor: KeypointPredictor | None = None,
    predictions: str | os.PathLike | dict | None = None,
    save_predictions: str | os.PathLike | None = None,
    thresholds: tuple[float, ...] = PCK_THRESHOLDS,
    progress: bool = True,
    settings: dict | None = None,
) -> EvaluationResult:
    """Score JHMDB pose propagation (PCK@0.1 .. 0.5).

    Exactly one of ``predictor`` and ``predictions``. A prediction may cover more frames than the
    video's annotated ones (the demo propagates every image); the first T annotated are scored.

    Args:
        dataset: the checked split.
        predictor: runs a model on one video (see :func:`keypoint_predictor`).
        predictions: a ``.npz`` / ``.json`` file (:func:`read_keypoint_predictions`) or its dict.
        save_predictions: with ``predictor``, write the predictions to this ``.npz`` (atomically).
        thresholds: the PCK thresholds.
        progress: a progress bar over the videos.
        settings: recorded in the result.

    Returns:
        The :class:`EvaluationResult`: summary PCK@t; ``per_joint_pck``; per video its frame
        counts, its own PCK@t (null when no joint is predicted visible after frame 0) and the
        normalised distances (T - 1, K) of frames 1 .. T-1 (null where the joint is not predicted
        visible, or the human box is 0).
    """
    if (predictor is None) == (predictions is None):
        raise ValueError("evaluate_jhmdb needs a predictor (a model) or predictions, not both")
    if predictions is not None:
        if isinstance(predictions, dict):
            predictions = {name: _keypoint_entry(name, *entry, "the predictions") for name, entry in predictions.items()}
        else:
            predictions = read_keypoint_predictions(predictions)
        missing = [v.name for v in dataset if v.name not in predictions]
        if missing:
            raise DatasetError(f"the keypoint predictions have no entry for {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} ({len(missing)} of {len(dataset)} videos)")
        for video in dataset:
            keypoints, _ = predictions[video.name]
            if keypoints.shape[0] < len(video.pose) or keypoints.shape[1] != video.pose.shape[1]:
                raise DatasetError(
                    f"the keypoint prediction of {video.name} is {keypoints.shape}; the video needs at least "
                    f"({len(video.pose)}, {video.pose.shape[1]}, 2) (annotated frames, joints)"
                )
    saved: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    scored, videos = [], {}
    for video in _progress(dataset.videos, progress, "JHMDB"):
        gt = video.pose
        if predictor is not None:
            frames = video.read_frames()
            keypoints, visible = predictor(frames, gt[0])
            keypoints, visible = _keypoint_entry(video.name, keypoints, visible, "the predictor")
            if keypoints.shape[:2] != (len(frames), gt.shape[1]):
                raise ValueError(f"the predictor returned keypoints {keypoints.shape} for {video.name}; expected ({len(frames)}, {gt.shape[1]}, 2)")
            saved[video.name] = (keypoints, visible)
        else:
            keypoints, visible = predictions[video.name]
        keypoints, visible = keypoints[: len(gt)], visible[: len(gt)]
        scored.append((keypoints, gt, visible))
        distances = jhmdb_distances(keypoints, gt, visible)
        table = np.full((max(len(gt) - 1, 0), gt.shape[1]), np.nan)
        for k, d in enumerate(distances):
            table[visible[1:, k], k] = d
        try:
            pck, _ = jhmdb_pck([(keypoints, gt, visible)], thresholds)
            video_pck = {f"PCK@{t:g}": float(p) for t, p in zip(thresholds, pck)}
        except ValueError:  # no joint predicted visible after frame 0
            video_pck = {f"PCK@{t:g}": None for t in thresholds}
        videos[video.name] = {
            "num_frames": len(video.frames),
            "num_annotated_frames": len(gt),
            "pck": video_pck,
            "distances": [_finite_or_none(row) for row in table],
        }
    try:
        pck, per_joint = jhmdb_pck(scored, thresholds)
    except ValueError as error:
        raise DatasetError(f"JHMDB cannot be scored: {error} (no joint is predicted visible after the first frame)") from None
    if save_predictions is not None:
        write_keypoint_predictions(save_predictions, saved)
    summary = {f"PCK@{t:g}": float(p) for t, p in zip(thresholds, pck)}
    extra = {"per_joint_pck": {f"PCK@{t:g}": _finite_or_none(row) for t, row in zip(thresholds, per_joint)}}
    return EvaluationResult("jhmdb", summary, videos, dict(settings or {}), extra)


# --------------------------------------------------------------------------------------------------
# VIP


def evaluate_vip(
    dataset: VipDataset,
    *,
    predictor: SegmentationPredictor | None = None,
    predictions: str | os.PathLike | None = None,
    save_predictions: str | os.PathLike | None = None,
    progress: bool = True,
    settings: dict | None = None,
) -> EvaluationResult:
    """Score VIP human-part propagation (mIoU over 20 classes).

    Exactly one of ``predictor`` and ``predictions`` (``<predictions>/<video>/<annotation stem>.png``
    for every frame, frame 0 included: the demo scores all frames).

    Returns:
        The :class:`EvaluationResult`: summary mIoU; ``per_class_iou`` (null for a class absent
        from ground truth and predictions) and the ``histogram`` (rows ground truth); per video its
        own mIoU.
    """
    if (predictor is None) == (predictions is None):
        raise ValueError("evaluate_vip needs a predictor (a model) or a predictions directory, not both")
    if predictions is not None:
        predictions = _check_saved_predictions(predictions, dataset, "VIP", lambda video: video.frame_ids, "frames")
    total = ConfusionHistogram(len(VIP_CLASSES))
    videos = {}
    for video in _progress(dataset.videos, progress, "VIP"):
        gt = video.read_annotations()
        if predictor is not None:
            masks = _predict_labels(video, gt, predictor, save_predictions)
        else:
            masks = read_label_maps([predictions / video.name / f"{s}.png" for s in video.frame_ids], f"prediction for VIP video {video.name}")
        own = ConfusionHistogram(len(VIP_CLASSES))
        own.update(gt, masks)
        total.hist += own.hist
        try:
            miou = _percent(own.miou()[0])
        except ValueError:  # every ground-truth label outside the classes
            miou = None
        videos[video.name] = {"num_frames": len(gt), "mIoU": miou}
    miou, per_class = vip_miou(total.hist)
    extra = {
        "per_class_iou": {name: _percent(v) for name, v in zip(VIP_CLASSES, per_class)},
        "histogram": total.hist.tolist(),
    }
    return EvaluationResult("vip", {"mIoU": _percent(miou)}, videos, dict(settings or {}), extra)
