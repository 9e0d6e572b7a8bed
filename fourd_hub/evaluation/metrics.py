"""DAVIS-2017 J and F, JHMDB PCK and VIP mIoU, exactly as the benchmarks' reference code computes them.

- J and F follow ``davis2017-evaluation`` (``davis2017/metrics.py``: ``db_eval_iou``,
  ``db_eval_boundary`` / ``f_measure`` / ``_seg2bmap``; ``davis2017/evaluation.py`` and
  ``utils.db_statistics`` for the aggregation), in numpy only: the boundary dilation, which the
  reference does with ``cv2.dilate`` and ``skimage.morphology.disk``, is an OR of shifted copies
  over the same disk (same result: the disk is symmetric and cv2.dilate ignores outside pixels).
- PCK follows the JHMDB evaluation of the RVM evaluation demo (``docs/rvm.md`` 6.4 of the shared
  notes): joints and human boxes are selected by the *predicted* visibility, frame 0 (the input)
  is excluded, distances of all videos are pooled per joint.
- VIP mIoU follows the RVM evaluation demo's ``fast_hist`` / ``compute_iou`` (``docs/rvm.md`` 6.5):
  one 20 x 20 confusion histogram over every frame of every video, mIoU = nan-mean of the
  per-class IoU.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = [
    "db_eval_iou",
    "seg2bmap",
    "db_eval_boundary",
    "davis_sequence_metrics",
    "davis_summary",
    "davis_global_results",
    "db_statistics",
    "compute_human_boxes",
    "jhmdb_distances",
    "compute_pck",
    "jhmdb_pck",
    "VIP_CLASSES",
    "fast_hist",
    "ConfusionHistogram",
    "vip_miou",
]


def _binary_masks(annotation, segmentation) -> tuple[np.ndarray, np.ndarray]:
    annotation, segmentation = np.asarray(annotation), np.asarray(segmentation)
    if annotation.shape != segmentation.shape:
        raise ValueError(f"annotation and segmentation shapes differ: {annotation.shape} vs {segmentation.shape}")
    if annotation.ndim not in (2, 3):
        raise ValueError(f"masks must be (H, W) or (T, H, W), got shape {annotation.shape}")
    for name, mask in (("annotation", annotation), ("segmentation", segmentation)):
        if mask.dtype.kind == "f" and not np.isfinite(mask).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    return annotation.astype(bool), segmentation.astype(bool)


def db_eval_iou(annotation, segmentation) -> np.ndarray | float:
    """Region similarity J: intersection over union of binary masks (``db_eval_iou``).

    An empty union (both masks empty) scores 1, as in the reference.

    Args:
        annotation: (H, W) or (T, H, W) ground-truth mask (non-zero = object).
        segmentation: predicted mask of the same shape.

    Returns:
        float for one frame, (T,) float64 for a sequence.
    """
    annotation, segmentation = _binary_masks(annotation, segmentation)
    inters = np.sum(segmentation & annotation, axis=(-2, -1))
    union = np.sum(segmentation | annotation, axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        j = inters / union
    if np.ndim(j) == 0:
        return 1.0 if np.isclose(union, 0) else float(j)
    j[np.isclose(union, 0)] = 1
    return j


def seg2bmap(seg) -> np.ndarray:
    """Boundary map of a binary mask (``_seg2bmap`` of davis2017-evaluation, at the mask's own size).

    A pixel is a boundary pixel when it differs from its east, south or south-east neighbour; the
    last row compares only with east, the last column only with south, the corner is 0.

    Args:
        seg: (H, W) mask (non-zero = object).

    Returns:
        (H, W) bool boundary map.
    """
    seg = np.asarray(seg).astype(bool)
    if seg.ndim != 2:
        raise ValueError(f"seg must be (H, W), got shape {seg.shape}")
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def _disk_offsets(radius: float) -> list[tuple[int, int]]:
    """Offsets of ``skimage.morphology.disk(radius)``: x^2 + y^2 <= radius^2 on the integer grid."""
    r = int(math.floor(radius))
    return [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy * dy + dx * dx <= radius * radius]


def _shift_or(out: np.ndarray, src: np.ndarray, dy: int, dx: int) -> None:
    """out[y, x] |= src[y + dy, x + dx] where (y + dy, x + dx) is inside the image."""
    H, W = src.shape
    ys, yd = (slice(dy, H), slice(0, H - dy)) if dy >= 0 else (slice(0, H + dy), slice(-dy, H))
    xs, xd = (slice(dx, W), slice(0, W - dx)) if dx >= 0 else (slice(0, W + dx), slice(-dx, W))
    out[yd, xd] |= src[ys, xs]


def _dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    """``cv2.dilate(mask, disk(radius))``: OR over the disk's shifts; outside pixels never contribute.

    Computed row by row of the disk: each row dy of ``disk(radius)`` is the interval |dx| <= a(dy),
    so the OR over the disk is the OR over dy of the mask dilated horizontally by a(dy), shifted
    by dy (the same set of shifts, ~4r operations instead of ~pi r^2).
    """
    offsets = _disk_offsets(radius)
    half_width: dict[int, int] = {}
    for dy, dx in offsets:
        half_width[dy] = max(half_width.get(dy, 0), abs(dx))
    horizontal = [mask.copy()]  # horizontal[a][y, x] = OR of mask[y, x - a .. x + a]
    for a in range(1, max(half_width.values(), default=0) + 1):
        step = horizontal[-1].copy()
        _shift_or(step, mask, 0, a)
        _shift_or(step, mask, 0, -a)
        horizontal.append(step)
    out = np.zeros_like(mask)
    for dy, a in half_width.items():
        _shift_or(out, horizontal[a], dy, 0)
    return out


def _f_measure(foreground_mask: np.ndarray, gt_mask: np.ndarray, bound_th: float) -> float:
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(foreground_mask.shape))
    fg_boundary = seg2bmap(foreground_mask)
    gt_boundary = seg2bmap(gt_mask)
    fg_dil = _dilate(fg_boundary, bound_pix)
    gt_dil = _dilate(gt_boundary, bound_pix)
    gt_match = gt_boundary & fg_dil
    fg_match = fg_boundary & gt_dil
    n_fg = np.sum(fg_boundary)
    n_gt = np.sum(gt_boundary)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = np.sum(fg_match) / float(n_fg)
        recall = np.sum(gt_match) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def db_eval_boundary(annotation, segmentation, bound_th: float = 0.008) -> np.ndarray | float:
    """Contour accuracy F: boundary F-measure (``db_eval_boundary`` of davis2017-evaluation).

    Boundaries by ``seg2bmap``; each is dilated by a disk of radius ``ceil(bound_th * ||(H, W)||)``
    pixels (``bound_th`` >= 1 is a radius in pixels); precision = predicted boundary pixels within
    the dilated true boundary / predicted boundary pixels, recall likewise. No predicted and some
    true boundary: P = 1, R = 0; the reverse: P = 0, R = 1; neither: P = R = 1; F = 2PR / (P + R),
    0 when P + R = 0.

    Args:
        annotation: (H, W) or (T, H, W) ground-truth mask.
        segmentation: predicted mask of the same shape.
        bound_th: dilation radius as a fraction of the image diagonal (0.008 in the benchmark).

    Returns:
        float for one frame, (T,) float64 for a sequence.
    """
    annotation, segmentation = _binary_masks(annotation, segmentation)
    if annotation.ndim == 2:
        return _f_measure(segmentation, annotation, bound_th)
    return np.array([_f_measure(s, a, bound_th) for s, a in zip(segmentation, annotation)], dtype=np.float64)


def davis_sequence_metrics(gt_masks, pred_masks, num_objects: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-object, per-frame J and F of one video, on frames 1 .. T-2 (the benchmark drops the first and last).

    Args:
        gt_masks: (T, H, W) integer label maps (0 = background, objects 1..n).
        pred_masks: (T, H, W) predicted label maps.
        num_objects: objects scored (1..num_objects); default the largest label of ``gt_masks``.

    Returns:
        J and F, each (num_objects, T - 2) float64.
    """
    gt_masks, pred_masks = np.asarray(gt_masks), np.asarray(pred_masks)
    if gt_masks.shape != pred_masks.shape or gt_masks.ndim != 3:
        raise ValueError(f"gt and predicted masks must both be (T, H, W), got {gt_masks.shape} and {pred_masks.shape}")
    if gt_masks.shape[0] < 3:
        raise ValueError(f"DAVIS scores frames 1 .. T-2: at least 3 frames are needed, got {gt_masks.shape[0]}")
    for name, m in (("gt_masks", gt_masks), ("pred_masks", pred_masks)):
        if not np.issubdtype(m.dtype, np.integer):
            raise TypeError(f"{name} must be integer label maps, got {m.dtype}")
    n = int(gt_masks.max()) if num_objects is None else int(num_objects)
    gt, pred = gt_masks[1:-1], pred_masks[1:-1]
    J = np.stack([db_eval_iou(gt == i, pred == i) for i in range(1, n + 1)]) if n else np.zeros((0, len(gt)))
    F = np.stack([db_eval_boundary(gt == i, pred == i) for i in range(1, n + 1)]) if n else np.zeros((0, len(gt)))
    return J, F


def db_statistics(per_frame_values) -> tuple[float, float, float]:
    """Mean, recall and decay of one object's per-frame J or F (``utils.db_statistics`` of davis2017-evaluation).

    - M = nan-mean of the values;
    - O (recall) = nan-mean of ``values > 0.5`` (a NaN compares False);
    - D (decay) = nan-mean of the first quarter minus nan-mean of the last: the bins are
      ``values[ids[i] : ids[i + 1] + 1]`` with ``ids = round(linspace(1, n, 5) + 1e-10) - 1``
      (overlapping by one frame, as the reference). An empty bin gives NaN.

    The reference casts ``ids`` to uint8, which wraps past 255 frames; the true indices are used
    here (identical for every sequence of up to 256 scored frames, all of DAVIS).

    Args:
        per_frame_values: (n,) per-frame values of one object (the scored frames).

    Returns:
        (M, O, D) as floats (fractions).
    """
    values = np.asarray(per_frame_values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"per_frame_values must be a non-empty 1-D array, got shape {values.shape}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = float(np.nanmean(values))
        recall = float(np.nanmean(values > 0.5))
        ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.int64)
        bins = [values[ids[i] : ids[i + 1] + 1] for i in range(4)]
        decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, recall, decay


def davis_summary(per_video: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """J&F-Mean, J-Mean, F-Mean over all objects of all videos (davis2017-evaluation's aggregation).

    Each object's score is the nan-mean of its per-frame values (``db_statistics``' M); the
    reported means are plain means over objects, J&F-Mean = (J-Mean + F-Mean) / 2.
    :func:`davis_global_results` adds the recalls and decays.

    Args:
        per_video: ``davis_sequence_metrics`` outputs, one (J, F) pair per video.

    Returns:
        {"J&F-Mean", "J-Mean", "F-Mean"} as fractions (multiply by 100 for the printed percentages).
    """
    j_objects = [np.nanmean(row) for J, _ in per_video for row in np.asarray(J)]
    f_objects = [np.nanmean(row) for _, F in per_video for row in np.asarray(F)]
    if not j_objects:
        raise ValueError("no object to score")
    j_mean, f_mean = float(np.mean(j_objects)), float(np.mean(f_objects))
    return {"J&F-Mean": (j_mean + f_mean) / 2, "J-Mean": j_mean, "F-Mean": f_mean}


def davis_global_results(per_video: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """The seven global results of davis2017-evaluation's ``evaluation_method.py``.

    Per object :func:`db_statistics` of its J and F rows; each measure is the plain mean over all
    objects of all videos; J&F-Mean = (J-Mean + F-Mean) / 2. J&F-Mean, J-Mean and F-Mean equal
    :func:`davis_summary`'s.

    Args:
        per_video: ``davis_sequence_metrics`` outputs, one (J, F) pair per video, each
            (num_objects, num_scored_frames).

    Returns:
        {"J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"} as fractions.
    """
    j_stats = [db_statistics(row) for J, _ in per_video for row in np.asarray(J)]
    f_stats = [db_statistics(row) for _, F in per_video for row in np.asarray(F)]
    if not j_stats:
        raise ValueError("no object to score")
    j_mean, j_recall, j_decay = (float(np.mean(column)) for column in zip(*j_stats))
    f_mean, f_recall, f_decay = (float(np.mean(column)) for column in zip(*f_stats))
    return {
        "J&F-Mean": (j_mean + f_mean) / 2,
        "J-Mean": j_mean,
        "J-Recall": j_recall,
        "J-Decay": j_decay,
        "F-Mean": f_mean,
        "F-Recall": f_recall,
        "F-Decay": f_decay,
    }


def _check_pose(gt, visible) -> tuple[np.ndarray, np.ndarray]:
    gt, visible = np.asarray(gt), np.asarray(visible)
    if gt.ndim != 3 or gt.shape[-1] != 2:
        raise ValueError(f"keypoints must be (T, K, 2), got shape {gt.shape}")
    if visible.shape != gt.shape[:2]:
        raise ValueError(f"visibility must be (T, K) = {gt.shape[:2]}, got shape {visible.shape}")
    return gt, visible.astype(bool)


def compute_human_boxes(gt, visible) -> np.ndarray:
    """Per-frame human box size: 0.6 x the diagonal of the box around the visible ground-truth joints.

    ``visible`` is the *predicted* visibility (the benchmark's convention, a trap). Computed in
    float32 as the reference does (its joints are float32). A frame without visible joints gets 0
    (it contributes no distance).

    Args:
        gt: (T, K, 2) ground-truth (x, y).
        visible: (T, K) predicted visibility.

    Returns:
        (T,) float64 box sizes.
    """
    gt, visible = _check_pose(gt, visible)
    gt = gt.astype(np.float32)
    boxes = np.zeros(len(gt), dtype=np.float64)
    for t in range(len(gt)):
        joints = gt[t][visible[t]]
        if len(joints):
            boxes[t] = np.float32(0.6) * np.linalg.norm(joints.max(0) - joints.min(0))
    return boxes


def jhmdb_distances(pred, gt, visible) -> list[np.ndarray]:
    """Normalised distances ||pred - gt|| / human box per joint over frames 1 .. T-1, visible joints only.

    Args:
        pred: (T, K, 2) predicted (x, y).
        gt: (T, K, 2) ground truth (x, y); frame 0 is the propagated input and is not scored.
        visible: (T, K) predicted visibility.

    Returns:
        K arrays of distances (float32), one per joint.
    """
    gt, visible = _check_pose(gt, visible)
    pred = np.asarray(pred)
    if pred.shape != gt.shape:
        raise ValueError(f"predicted and ground-truth keypoints differ in shape: {pred.shape} vs {gt.shape}")
    if not (np.isfinite(pred).all() and np.isfinite(gt).all()):
        raise ValueError("keypoints contain NaN or infinite values")
    boxes = compute_human_boxes(gt, visible).astype(np.float32)
    dist = np.linalg.norm(pred.astype(np.float32) - gt.astype(np.float32), axis=-1)  # (T, K)
    # A box of 0 (a single visible joint) divides by zero: inf or nan, which never passes a threshold.
    with np.errstate(divide="ignore", invalid="ignore"):
        return [
            np.array([dist[t, k] / boxes[t] for t in range(1, len(gt)) if visible[t, k]], dtype=np.float32)
            for k in range(gt.shape[1])
        ]


def compute_pck(distances: list[np.ndarray], threshold: float) -> tuple[float, np.ndarray]:
    """PCK at one threshold: per joint 100 x the fraction of distances <= threshold, then the mean over joints.

    A joint with no distance at all (never predicted visible) has no defined PCK: it is NaN and
    left out of the mean.

    Args:
        distances: per-joint distances (``jhmdb_distances``, pooled over videos).
        threshold: normalised distance threshold (0.1 .. 0.5 in the benchmark).

    Returns:
        (PCK, per-joint PCK (K,)) in percent.
    """
    per_joint = np.array(
        [100.0 * np.count_nonzero(d <= threshold) / len(d) if len(d) else np.nan for d in distances], dtype=np.float64
    )
    if np.isnan(per_joint).all():
        raise ValueError("no visible joint to score")
    return float(np.nanmean(per_joint)), per_joint


def jhmdb_pck(videos, thresholds=(0.1, 0.2, 0.3, 0.4, 0.5)) -> tuple[np.ndarray, np.ndarray]:
    """PCK@thresholds over videos, distances pooled per joint across videos.

    Args:
        videos: iterable of (pred (T, K, 2), gt (T, K, 2), predicted visibility (T, K)).
        thresholds: normalised thresholds.

    Returns:
        PCK (n_thresholds,) and per-joint PCK (n_thresholds, K), percent.
    """
    pooled: list[list[np.ndarray]] | None = None
    for pred, gt, visible in videos:
        d = jhmdb_distances(pred, gt, visible)
        if pooled is None:
            pooled = [[x] for x in d]
        elif len(d) != len(pooled):
            raise ValueError(f"every video needs the same number of joints: {len(pooled)} vs {len(d)}")
        else:
            for acc, x in zip(pooled, d):
                acc.append(x)
    if pooled is None:
        raise ValueError("no video to score")
    per_joint_distances = [np.concatenate(x) for x in pooled]
    results = [compute_pck(per_joint_distances, th) for th in thresholds]
    return np.array([r[0] for r in results]), np.stack([r[1] for r in results])


#: The 20 VIP classes, in label order (the RVM evaluation demo's ``compute_iou``).
VIP_CLASSES = (
    "background", "hat", "hair", "sun-glasses", "upper-clothes", "dress", "coat", "socks", "pants", "gloves",
    "scarf", "skirt", "torso-skin", "face", "right-arm", "left-arm", "right-leg", "left-leg", "right-shoe", "left-shoe",
)


def fast_hist(gt, pred, num_classes: int = len(VIP_CLASSES)) -> np.ndarray:
    """Confusion histogram of one label map (the demo's ``fast_hist``): rows ground truth, columns prediction.

    Pixels whose ground-truth label is outside ``[0, num_classes)`` (e.g. 255) are ignored, as in the
    reference. A predicted label outside that range is refused (the reference's ``bincount`` would
    then fail to reshape, or count it in the wrong cell).

    Args:
        gt: (H, W) or (T, H, W) integer ground-truth labels.
        pred: integer predicted labels of the same shape.
        num_classes: number of classes n.

    Returns:
        (n, n) int64 histogram; entry [i, j] = pixels of true class i predicted as j.
    """
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"ground-truth and predicted label maps differ in shape: {gt.shape} vs {pred.shape}")
    for name, labels in (("gt", gt), ("pred", pred)):
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"{name} must be an integer label map, got {labels.dtype}")
    n = int(num_classes)
    if n < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    keep = (gt >= 0) & (gt < n)
    pred_kept = pred[keep].astype(np.int64)
    if pred_kept.size and (pred_kept.min() < 0 or pred_kept.max() >= n):
        bad = int(pred_kept.min()) if pred_kept.min() < 0 else int(pred_kept.max())
        raise ValueError(f"predicted label {bad} is outside the {n} classes 0..{n - 1}")
    return np.bincount(n * gt[keep].astype(np.int64) + pred_kept, minlength=n * n).reshape(n, n)


def vip_miou(hist) -> tuple[float, np.ndarray]:
    """Mean IoU of a confusion histogram (the demo's ``compute_iou``).

    Per class IoU = hist[i, i] / (row sum + column sum - hist[i, i]); a class absent from both the
    ground truth and the predictions has 0 / 0 = NaN and is left out of the mean (``np.nanmean``).

    Args:
        hist: (n, n) confusion histogram (rows ground truth), e.g. summed :func:`fast_hist` outputs.

    Returns:
        (mIoU, per-class IoU (n,)) as fractions.
    """
    hist = np.asarray(hist, dtype=np.float64)
    if hist.ndim != 2 or hist.shape[0] != hist.shape[1]:
        raise ValueError(f"hist must be a square (n, n) histogram, got shape {hist.shape}")
    if not np.isfinite(hist).all() or (hist < 0).any():
        raise ValueError("hist must hold finite, non-negative counts")
    correct = np.diag(hist)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = correct / (hist.sum(1) + hist.sum(0) - correct)
    if np.isnan(iou).all():
        raise ValueError("the histogram is empty: no pixel to score")
    return float(np.nanmean(iou)), iou


class ConfusionHistogram:
    """Accumulates :func:`fast_hist` over frames and videos; :meth:`miou` scores the total (VIP, 6.5).

    Args:
        num_classes: number of classes (20 for VIP).

    Attributes:
        hist: (n, n) int64 running histogram.
    """

    def __init__(self, num_classes: int = len(VIP_CLASSES)):
        self.num_classes = int(num_classes)
        self.hist = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, gt, pred) -> None:
        """Add a (H, W) or (T, H, W) pair of label maps."""
        self.hist += fast_hist(gt, pred, self.num_classes)

    def miou(self) -> tuple[float, np.ndarray]:
        """(mIoU, per-class IoU) of everything added so far (:func:`vip_miou`)."""
        return vip_miou(self.hist)
