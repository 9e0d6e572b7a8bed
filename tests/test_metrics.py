"""Evaluation metrics (paper A.2) on hand-made cases whose answers are worked out here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import EvalPrediction

from fourd_hub.training.metrics import (
    abs_rel,
    average_jaccard,
    box_iou,
    default_cube_points,
    make_compute_metrics,
    mean_iou,
    pose_end_point_error,
    project_to_rotation,
    top1_accuracy,
)

pytestmark = pytest.mark.training

THRESHOLDS = (1, 2, 4, 8, 16)


# ------------------------------------------------------------------------------------ depth


def test_abs_rel_perfect_prediction_is_zero():
    depth = np.array([[0.5, 1.0], [2.0, 9.0]])
    assert abs_rel(depth, depth) == 0.0


def test_abs_rel_constant_offset():
    target = np.array([[1.0, 2.0, 4.0]])  # one 1 x 3 frame
    # |d + 0.5 - d| / d = 0.5, 0.25, 0.125
    assert abs_rel(target + 0.5, target) == pytest.approx((0.5 + 0.25 + 0.125) / 3)


def test_abs_rel_scaled_prediction():
    target = np.linspace(0.5, 8.0, 24).reshape(2, 3, 2, 2)
    assert abs_rel(1.1 * target, target) == pytest.approx(0.1)


def test_abs_rel_ignores_out_of_range_and_masked_targets():
    target = np.array([[1.0, 2.0, 0.0, 0.0005, 10.0, 25.0, np.nan, 4.0]])  # one 1 x 8 frame
    prediction = np.array([[2.0, 2.0, 7.0, 7.0, 7.0, 7.0, 7.0, 5.0]])
    # Valid: 1 (error 1/1), 2 (0/2), 4 (1/4); 0, 0.0005, 10 (bound is open), 25, NaN are out.
    assert abs_rel(prediction, target) == pytest.approx((1.0 + 0.0 + 0.25) / 3)
    mask = np.array([[False, True, True, True, True, True, True, True]])
    assert abs_rel(prediction, target, mask=mask) == pytest.approx((0.0 + 0.25) / 2)
    # (0.5, 30) also admits 10 (3/10) and 25 (18/25).
    assert abs_rel(prediction, target, valid_range=(0.5, 30.0)) == pytest.approx((1 + 0 + 0.3 + 18 / 25 + 0.25) / 5)


def test_abs_rel_eps_and_torch_inputs():
    target = torch.tensor([[1.0, 3.0]])
    prediction = torch.tensor([[2.0, 4.0]], requires_grad=True)
    assert abs_rel(prediction, target, eps=1.0) == pytest.approx((1 / 2 + 1 / 4) / 2)


def test_abs_rel_errors():
    with pytest.raises(ValueError, match="shape"):
        abs_rel(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="1 NaN.*mask='finite'"):
        abs_rel(np.array([[1.0, np.nan]]), np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="1 inf"):
        abs_rel(np.array([[1.0, np.inf]]), np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="no valid depth"):
        abs_rel(np.ones((1, 3)), np.array([[0.0, 20.0, np.nan]]))
    with pytest.raises(ValueError, match="mask"):
        abs_rel(np.ones((1, 3)), np.ones((1, 3)), mask=np.ones((1, 2), dtype=bool))
    with pytest.raises(ValueError, match="'finite'"):
        abs_rel(np.ones((1, 3)), np.ones((1, 3)), mask="crop")
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W\)"):
        abs_rel(np.ones(3), np.ones(3))  # frames need two dimensions; reduction="pixels" takes any shape
    assert abs_rel(np.full(3, 2.0), np.ones(3), reduction="pixels") == 1.0
    with pytest.raises(ValueError, match="reduction"):
        abs_rel(np.ones((1, 3)), np.ones((1, 3)), reduction="videos")
    with pytest.raises(ValueError, match="min_valid_pixels"):
        abs_rel(np.ones((1, 3)), np.ones((1, 3)), min_valid_pixels=0)


def test_abs_rel_averages_per_frame_then_over_frames():
    # Frame 0: one valid pixel (targets 0 are invalid), predicted 2 m for 1 m -> AbsRel 1.
    # Frame 1: four valid pixels, all exact -> AbsRel 0.
    # Per frame then over frames (Depth Anything): (1 + 0) / 2 = 0.5; pooled over the 5 pixels: 1 / 5.
    target = np.array([[[1.0, 0.0], [0.0, 0.0]], [[1.0, 2.0], [3.0, 4.0]]])
    prediction = np.array([[[2.0, 5.0], [5.0, 5.0]], [[1.0, 2.0], [3.0, 4.0]]])
    assert abs_rel(prediction, target) == pytest.approx(0.5)
    assert abs_rel(prediction, target, reduction="pixels") == pytest.approx(1 / 5)
    # Leading dimensions are all frames: (B, T, H, W) = (2, 1, 2, 2) is the same two frames.
    assert abs_rel(prediction[:, None], target[:, None]) == pytest.approx(0.5)
    # Frames with fewer valid pixels than min_valid_pixels are skipped: frame 0 has one.
    assert abs_rel(prediction, target, min_valid_pixels=2) == 0.0
    with pytest.raises(ValueError, match="no frame has 5 or more valid depth pixels"):
        abs_rel(prediction, target, min_valid_pixels=5)


def test_abs_rel_skips_frames_without_valid_pixels():
    # Frame 1 has no valid target: skipped, not a 0 (nor NaN) in the mean.
    target = np.array([[[2.0, 4.0]], [[0.0, 20.0]]])
    prediction = np.array([[[3.0, 4.0]], [[1.0, 1.0]]])
    # Frame 0: (1/2 + 0/4) / 2 = 0.25.
    assert abs_rel(prediction, target) == pytest.approx(0.25)


def test_abs_rel_scores_a_prediction_that_is_nan_outside_a_centre_crop():
    # 1 frame of 4 x 4: the centre 2 x 2 predicted 2 m, NaN around it (no prediction there).
    prediction = np.full((1, 4, 4), np.nan)
    prediction[0, 1:3, 1:3] = 2.0
    target = np.full((1, 4, 4), 2.5)  # |2 - 2.5| / 2.5 = 0.2 in the crop
    with pytest.raises(ValueError, match="mask='finite'"):
        abs_rel(prediction, target)
    assert abs_rel(prediction, target, mask="finite") == pytest.approx(0.2)
    crop = np.zeros((1, 4, 4), dtype=bool)
    crop[0, 1:3, 1:3] = True
    assert abs_rel(prediction, target, mask=crop) == pytest.approx(0.2)
    assert abs_rel(torch.from_numpy(prediction), torch.from_numpy(target), mask=torch.from_numpy(crop)) == pytest.approx(0.2)
    # A NaN inside the explicit mask is still an error.
    bad = prediction.copy()
    bad[0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite inside the mask.*1 NaN"):
        abs_rel(bad, target, mask=crop)


def test_abs_rel_scores_a_depth_result_with_its_own_valid_mask():
    from fourd_hub.processing import FrameGeometry
    from fourd_hub.results import DepthEstimationResult

    # A 20 x 30 input centre-cropped to the model's 8 x 8: the result is NaN outside the crop.
    geometry = FrameGeometry.create((20, 30), (8, 8), "crop")
    result = DepthEstimationResult(
        task="depth-estimation", frame_indices=np.arange(2), fps=10.0, image_size=(20, 30),
        model_depth=np.full((2, 8, 8), 2.0, np.float32), geometry=geometry,
    )
    depth = result.depth
    assert np.isnan(depth).any() and np.isfinite(depth).any()
    target = np.full(depth.shape, 2.2)
    # |2 - 2.2| / 2.2 = 1/11 on every predicted pixel of both frames.
    assert abs_rel(depth, target, mask="finite") == pytest.approx(1 / 11, rel=1e-6)
    assert abs_rel(result.predicted_depth, target, mask=np.isfinite(depth)) == pytest.approx(1 / 11, rel=1e-6)


# ------------------------------------------------------------------------- point tracking


def _tracks(batch=1, frames=4, points=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 200, size=(batch, frames, points, 2))


def _aj(*args, **kwargs):
    """``average_jaccard`` on 256 x 256 frames: the TAP-Vid thresholds are then the coordinates' own pixels."""
    kwargs.setdefault("image_size", (256, 256))
    return average_jaccard(*args, **kwargs)


def _all_jaccards(metrics, value):
    for thr in THRESHOLDS:
        assert metrics[f"jaccard_{thr}"] == pytest.approx(value), thr


def test_average_jaccard_perfect():
    gt = _tracks(batch=2)
    visible = np.ones(gt.shape[:-1], dtype=bool)
    metrics = _aj(gt.copy(), visible, gt, visible)
    assert metrics["average_jaccard"] == 1.0
    assert metrics["average_pts_within_thresh"] == 1.0
    assert metrics["occlusion_accuracy"] == 1.0
    _all_jaccards(metrics, 1.0)
    expected_keys = {"average_jaccard", "average_pts_within_thresh", "occlusion_accuracy"}
    expected_keys |= {f"jaccard_{t}" for t in THRESHOLDS} | {f"pts_within_{t}" for t in THRESHOLDS}
    assert set(metrics) == expected_keys
    assert all(isinstance(v, float) for v in metrics.values())


def test_average_jaccard_offset_of_3_pixels():
    gt = _tracks()
    visible = np.ones(gt.shape[:-1], dtype=bool)
    metrics = _aj(gt + np.array([3.0, 0.0]), visible, gt, visible)
    # 3 px: outside 1 and 2, inside 4, 8, 16.
    assert metrics["jaccard_1"] == metrics["jaccard_2"] == 0.0
    assert metrics["jaccard_4"] == metrics["jaccard_8"] == metrics["jaccard_16"] == 1.0
    assert metrics["average_jaccard"] == pytest.approx(3 / 5)
    assert metrics["average_pts_within_thresh"] == pytest.approx(3 / 5)


def test_average_jaccard_distance_is_euclidean():
    gt = _tracks()
    visible = np.ones(gt.shape[:-1], dtype=bool)
    # (3, 4) offset: 5 px away, within 8 and 16 only.
    metrics = _aj(gt + np.array([3.0, 4.0]), visible, gt, visible)
    assert metrics["average_jaccard"] == pytest.approx(2 / 5)


def test_average_jaccard_rescales_to_256():
    gt = _tracks()
    visible = np.ones(gt.shape[:-1], dtype=bool)
    # 3 px at 128x128 is 6 px at 256x256: within 8 and 16 only.
    metrics = _aj(gt + np.array([0.0, 3.0]), visible, gt, visible, image_size=(128, 128))
    assert metrics["average_jaccard"] == pytest.approx(2 / 5)


def test_average_jaccard_thresholds_are_in_256_coordinates_by_default():
    # A 224 x 224 clip, every point 0.9 px off in x. In the clip's pixels 0.9 < 1: within every
    # threshold. At 256 x 256 it is 0.9 * 256 / 224 = 1.029 px: outside 1 px only -> AJ 4 / 5.
    gt = _tracks()
    visible = np.ones(gt.shape[:-1], dtype=bool)
    pred = gt + np.array([0.9, 0.0])
    tapvid = average_jaccard(pred, visible, gt, visible, image_size=(224, 224))
    assert tapvid["jaccard_1"] == 0.0 and tapvid["jaccard_2"] == 1.0
    assert tapvid["average_jaccard"] == pytest.approx(4 / 5)
    clip = average_jaccard(pred, visible, gt, visible, thresholds_in="clip")
    assert clip["average_jaccard"] == 1.0
    # image_size is not used with "clip".
    assert average_jaccard(pred, visible, gt, visible, image_size=(224, 224), thresholds_in="clip") == clip


def test_average_jaccard_rescales_each_axis_on_its_own():
    # H = 128, W = 256: y is doubled to reach 256 x 256, x is kept.
    gt = _tracks()
    visible = np.ones(gt.shape[:-1], dtype=bool)
    # 3 px in y -> 6 px: within 8 and 16 only.
    in_y = average_jaccard(gt + np.array([0.0, 3.0]), visible, gt, visible, image_size=(128, 256))
    assert in_y["average_jaccard"] == pytest.approx(2 / 5)
    # 3 px in x -> 3 px: within 4, 8 and 16.
    in_x = average_jaccard(gt + np.array([3.0, 0.0]), visible, gt, visible, image_size=(128, 256))
    assert in_x["average_jaccard"] == pytest.approx(3 / 5)


def test_average_jaccard_needs_the_image_size_for_256_thresholds():
    gt = _tracks()
    visible = np.ones(gt.shape[:-1], dtype=bool)
    with pytest.raises(ValueError, match=r"256x256.*image_size=\(H, W\).*thresholds_in='clip'"):
        average_jaccard(gt, visible, gt, visible)
    with pytest.raises(ValueError, match="thresholds_in"):
        average_jaccard(gt, visible, gt, visible, thresholds_in="256x256")
    with pytest.raises(ValueError, match="image_size must be"):
        average_jaccard(gt, visible, gt, visible, image_size=(0, 224))


def _undefined_video_case(video0_predicted_visible: bool):
    # Video 0: its one track is occluded on both frames in the ground truth (positions NaN,
    # never read). Video 1: visible on both frames, exact, predicted visible on frame 0 only:
    # TP 1, FN 1, FP 0 -> Jaccard 1/2 at every threshold, 2/2 within, occlusion accuracy 1/2.
    gt = np.zeros((2, 2, 1, 2))
    gt[0] = np.nan
    gt_visible = np.array([[False, False], [True, True]]).reshape(2, 2, 1)
    pred_visible = np.array([[video0_predicted_visible] * 2, [True, False]]).reshape(2, 2, 1)
    return np.zeros((2, 2, 1, 2)), pred_visible, gt, gt_visible


def test_average_jaccard_videos_whose_ratios_are_0_over_0():
    # Video 0 predicted occluded too: no gt-visible and no predicted-visible point, so its
    # Jaccard (0 / (0 + 0)) and pts_within (0 / 0) are undefined; occlusion accuracy 2/2.
    case = _undefined_video_case(video0_predicted_visible=False)
    skip = _aj(*case)
    assert skip["average_jaccard"] == pytest.approx(0.5)  # video 1 alone
    assert skip["jaccard_1"] == pytest.approx(0.5)
    assert skip["average_pts_within_thresh"] == 1.0
    assert skip["occlusion_accuracy"] == pytest.approx((1.0 + 0.5) / 2)
    # TAP-Vid's reference: the undefined video is NaN and np.mean over videos gives NaN.
    reference = _aj(*case, undefined="nan")
    assert math.isnan(reference["average_jaccard"]) and math.isnan(reference["jaccard_16"])
    assert math.isnan(reference["average_pts_within_thresh"]) and math.isnan(reference["pts_within_1"])
    assert reference["occlusion_accuracy"] == pytest.approx(0.75)  # defined for both videos
    with pytest.raises(ValueError, match="undefined"):
        _aj(*case, undefined="zero")


def test_average_jaccard_false_positives_define_a_video_without_visible_points():
    # Video 0 predicted visible on both (occluded) frames: 2 FP -> Jaccard 0 / (0 + 2) = 0, a
    # value; pts_within is still 0 / 0 there. Occlusion accuracy of video 0: 0 / 2.
    case = _undefined_video_case(video0_predicted_visible=True)
    for undefined in ("skip", "nan"):
        metrics = _aj(*case, undefined=undefined)
        assert metrics["average_jaccard"] == pytest.approx((0.0 + 0.5) / 2)
        assert metrics["occlusion_accuracy"] == pytest.approx((0.0 + 0.5) / 2)
    assert _aj(*case)["average_pts_within_thresh"] == 1.0
    assert math.isnan(_aj(*case, undefined="nan")["average_pts_within_thresh"])


def test_average_jaccard_counts_occlusion_errors():
    # One track over 4 frames, positions exact:
    #   t0 gt visible,  predicted visible  -> TP
    #   t1 gt visible,  predicted occluded -> FN
    #   t2 gt occluded, predicted visible  -> FP
    #   t3 gt occluded, predicted occluded -> true negative (not in the Jaccard)
    # Jaccard = TP / (TP + FP + FN) = 1 / 3 at every threshold.
    gt = _tracks(frames=4, points=1)
    gt_visible = np.array([True, True, False, False]).reshape(1, 4, 1)
    pred_visible = np.array([True, False, True, False]).reshape(1, 4, 1)
    metrics = _aj(gt.copy(), pred_visible, gt, gt_visible)
    _all_jaccards(metrics, 1 / 3)
    assert metrics["average_jaccard"] == pytest.approx(1 / 3)
    assert metrics["occlusion_accuracy"] == pytest.approx(2 / 4)
    # Both gt-visible points are exactly placed, whatever their predicted visibility.
    assert metrics["average_pts_within_thresh"] == 1.0


def test_average_jaccard_far_visible_prediction_is_fp_and_fn():
    # t0 exact (TP); t1 both visible but 10 px off: a FN (gt point missed) and a FP
    # (predicted point wrong). Thresholds 1-8: 1 / (1 + 1 + 1); threshold 16: 2 / 2.
    gt = _tracks(frames=2, points=1)
    pred = gt.copy()
    pred[0, 1, 0] += np.array([6.0, 8.0])
    visible = np.ones((1, 2, 1), dtype=bool)
    metrics = _aj(pred, visible, gt, visible)
    for thr in (1, 2, 4, 8):
        assert metrics[f"jaccard_{thr}"] == pytest.approx(1 / 3)
    assert metrics["jaccard_16"] == 1.0
    assert metrics["average_jaccard"] == pytest.approx((4 / 3 + 1) / 5)
    assert metrics["average_pts_within_thresh"] == pytest.approx((4 * 0.5 + 1) / 5)


def test_average_jaccard_positions_on_occluded_frames_do_not_matter():
    gt = _tracks(frames=3, points=2)
    gt_visible = np.ones((1, 3, 2), dtype=bool)
    gt_visible[0, 2, 1] = False
    pred = gt.copy()
    pred[0, 2, 1] = [1000.0, -1000.0]  # wildly wrong, but predicted occluded like the gt
    gt = gt.copy()
    gt[0, 2, 1] = np.nan  # occluded ground truth may hold anything
    metrics = _aj(pred, gt_visible, gt, gt_visible)
    assert metrics["average_jaccard"] == 1.0
    assert metrics["occlusion_accuracy"] == 1.0


def test_average_jaccard_query_first_protocol():
    # Track 0 is visible on its query frame 0 and tracked right afterwards, but its frame-0
    # prediction is wrong: frame 0 is not evaluated. Track 1 is occluded on frame 0: ignored,
    # however badly it is predicted.
    gt = _tracks(frames=3, points=2)
    gt_visible = np.ones((1, 3, 2), dtype=bool)
    gt_visible[0, 0, 1] = False
    pred = gt.copy()
    pred[0, 0, 0] += 50.0
    pred[0, :, 1] += 50.0
    pred_visible = np.ones((1, 3, 2), dtype=bool)
    pred_visible[0, 0, 0] = False
    query_frames = np.zeros((1, 2), dtype=np.int64)
    metrics = _aj(pred, pred_visible, gt, gt_visible, query_frames=query_frames)
    assert metrics["average_jaccard"] == 1.0
    assert metrics["occlusion_accuracy"] == 1.0
    # Without the protocol every frame and track counts. At every threshold:
    # TP = 2 (track 0 on t1, t2); gt visible = 5; FP = track 1 on t0 (occluded gt), t1, t2 (far) = 3.
    everything = _aj(pred, pred_visible, gt, gt_visible)
    assert everything["average_jaccard"] == pytest.approx(2 / (5 + 3))


def test_average_jaccard_query_modes():
    # Query on frame 1: "first" evaluates frame 2 only, "strided" frames 0 and 2.
    gt = _tracks(frames=3, points=1)
    visible = np.ones((1, 3, 1), dtype=bool)
    pred = gt.copy()
    pred[0, 0, 0] += 50.0  # wrong before the query frame
    pred[0, 1, 0] += 50.0  # wrong on the query frame
    query = np.array([[1]])
    assert _aj(pred, visible, gt, visible, query_frames=query)["average_jaccard"] == 1.0
    strided = _aj(pred, visible, gt, visible, query_frames=query, query_mode="strided")
    # Frame 0: FN + FP; frame 2: TP -> 1 / (2 + 1).
    assert strided["average_jaccard"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="query_mode"):
        _aj(pred, visible, gt, visible, query_frames=query, query_mode="last")
    with pytest.raises(ValueError, match="query frames"):
        _aj(pred, visible, gt, visible, query_frames=np.array([[3]]))


def test_average_jaccard_averages_per_video():
    # Video 0: only point 0 evaluated, both frames TP -> 1.
    # Video 1: both points visible; point 1 predicted occluded -> 2 TP, 2 FN -> 0.5.
    # Per-video mean 0.75 (a pooled count would give 4 / 6).
    gt = _tracks(batch=2, frames=2, points=2)
    gt_visible = np.ones((2, 2, 2), dtype=bool)
    pred_visible = gt_visible.copy()
    pred_visible[1, :, 1] = False
    mask = np.ones((2, 2, 2), dtype=bool)
    mask[0, :, 1] = False
    metrics = _aj(gt.copy(), pred_visible, gt, gt_visible, evaluation_mask=mask)
    assert metrics["average_jaccard"] == pytest.approx(0.75)
    assert metrics["occlusion_accuracy"] == pytest.approx((1.0 + 0.5) / 2)


def test_average_jaccard_errors():
    gt = _tracks()
    visible = np.ones(gt.shape[:-1], dtype=bool)
    with pytest.raises(ValueError, match="shape"):
        _aj(gt[:, :, :2], visible, gt, visible)
    with pytest.raises(ValueError, match="predicted visibility"):
        _aj(gt, visible[:, :2], gt, visible)
    with pytest.raises(ValueError, match=r"\(B, T, Q, 2\)"):
        _aj(gt[..., 0], visible, gt[..., 0], visible)
    bad = gt.copy()
    bad[0, 1, 1, 0] = np.nan
    with pytest.raises(ValueError, match="predicted tracks.*NaN"):
        _aj(bad, visible, gt, visible)
    with pytest.raises(ValueError, match="ground-truth tracks are non-finite"):
        _aj(gt, visible, bad, visible)
    with pytest.raises(ValueError, match="no point to evaluate"):
        _aj(gt, visible, gt, np.zeros_like(visible), query_frames=np.zeros((1, 3), dtype=int))


# ---------------------------------------------------------------------------------- boxes


def test_box_iou_hand_values():
    a = np.array([0.0, 0.0, 2.0, 2.0])
    b = np.array([1.0, 0.0, 3.0, 2.0])
    # Overlap 1 x 2 = 2; union 4 + 4 - 2 = 6.
    assert box_iou(a, b) == pytest.approx(2 / 6)
    assert box_iou(a, a) == 1.0
    assert box_iou(a, np.array([5.0, 5.0, 6.0, 6.0])) == 0.0
    # Contained box: 1 / 4.
    assert box_iou(a, np.array([0.5, 0.5, 1.5, 1.5])) == pytest.approx(1 / 4)


def test_box_iou_degenerate_boxes_are_zero_not_nan():
    empty = np.array([1.0, 1.0, 1.0, 1.0])
    inverted = np.array([2.0, 2.0, 0.0, 0.0])
    with np.errstate(all="raise"):
        values = box_iou(np.stack([empty, inverted, empty]), np.stack([empty, inverted, [0, 0, 2, 2]]))
    np.testing.assert_array_equal(values, [0.0, 0.0, 0.0])


def test_box_iou_broadcasts_and_checks_shape():
    boxes = np.array([[0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]])
    np.testing.assert_allclose(box_iou(boxes, np.array([0.0, 0.0, 2.0, 2.0])), [1.0, 1 / 3])
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        box_iou(np.zeros((2, 3)), np.zeros((2, 3)))


def _box_track(frames=3, boxes=2):
    base = np.array([[10.0, 20.0, 50.0, 60.0], [0.0, 0.0, 30.0, 10.0]])[:boxes]
    steps = np.arange(frames, dtype=np.float64)[:, None, None] * np.array([2.0, 1.0, 2.0, 1.0])
    return (base[None] + steps)[None]  # (1, T, K, 4)


def test_mean_iou_perfect_and_first_frame_excluded():
    gt = _box_track()
    assert mean_iou(gt.copy(), gt) == 1.0
    pred = gt.copy()
    pred[0, 0] += 100.0  # the given frame: not scored
    assert mean_iou(pred, gt) == 1.0
    assert mean_iou(pred, gt, skip_first_frame=False) == pytest.approx(4 / 6)


def test_mean_iou_hand_average_and_invalid_boxes():
    gt = np.zeros((1, 2, 2, 4))
    gt[0, :, 0] = [0.0, 0.0, 2.0, 2.0]
    gt[0, :, 1] = [10.0, 10.0, 12.0, 12.0]
    pred = gt.copy()
    pred[0, 1, 0] = [1.0, 0.0, 3.0, 2.0]  # IoU 1/3 on frame 1
    # Frame 1 only: (1/3 + 1) / 2.
    assert mean_iou(pred, gt) == pytest.approx((1 / 3 + 1) / 2)
    valid = np.ones((1, 2, 2), dtype=bool)
    valid[0, 1, 0] = False
    gt_padded = gt.copy()
    gt_padded[0, 1, 0] = np.nan  # invalid boxes are never read
    assert mean_iou(pred, gt_padded, box_valid=valid) == 1.0


def test_mean_iou_averages_per_track_then_per_video_then_over_videos():
    # 3 videos, 3 frames (frame 0 not scored), 2 tracks each; the box [0, 0, 2, 2] and its
    # shift by 1 px in x have IoU 1/3.
    box = np.array([0.0, 0.0, 2.0, 2.0])
    gt = np.broadcast_to(box, (3, 3, 2, 4)).copy()
    pred = gt.copy()
    valid = np.ones((3, 3, 2), dtype=bool)
    # Video 0: track 0 exact on frames 1, 2 (IoU 1); track 1 only valid on frame 1, missed (IoU 0).
    valid[0, 2, 1] = False
    pred[0, 1, 1] += 100.0
    # Video 1: track 0 IoU 1/3 on frame 1, 1 on frame 2 -> 2/3; track 1 is padding (never valid).
    pred[1, 1, 0] = [1.0, 0.0, 3.0, 2.0]
    valid[1, :, 1] = False
    # Video 2: nothing valid after frame 0: left out, as the evaluator skips empty videos.
    valid[2, 1:] = False
    # Per track: video 0 (1 + 0) / 2 = 1/2, video 1 2/3; over videos (1/2 + 2/3) / 2 = 7/12.
    assert mean_iou(pred, gt, box_valid=valid) == pytest.approx(7 / 12)
    # Pooled over the 5 valid boxes: (1 + 1 + 0 + 1/3 + 1) / 5 = 2/3.
    assert mean_iou(pred, gt, box_valid=valid, average="boxes") == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="average"):
        mean_iou(pred, gt, average="frames")


def test_mean_iou_errors():
    gt = _box_track()
    with pytest.raises(ValueError, match="shape"):
        mean_iou(gt[:, :, :1], gt)
    with pytest.raises(ValueError, match=r"\(B, T, K, 4\)"):
        mean_iou(gt[0], gt[0])
    bad = gt.copy()
    bad[0, 1, 0, 2] = np.inf
    with pytest.raises(ValueError, match="predicted boxes.*inf"):
        mean_iou(bad, gt)
    with pytest.raises(ValueError, match="no valid box"):
        mean_iou(gt[:, :1], gt[:, :1])
    with pytest.raises(ValueError, match="box_valid"):
        mean_iou(gt, gt, box_valid=np.ones((1, 3), dtype=bool))


# ----------------------------------------------------------------------------------- pose


def _rotation_y(theta):
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _pose(rotation=np.eye(3), translation=(0.0, 0.0, 0.0)):
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = translation
    return pose


def test_default_cube():
    cube = default_cube_points()
    assert cube.shape == (8, 3)
    assert sorted({tuple(p) for p in cube}) == sorted(
        (x, y, z) for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (1.5, 2.5)
    )


def test_pose_epe_identity_and_translation():
    identity = np.stack([_pose(), _pose()])
    assert pose_end_point_error(identity, identity) == 0.0
    shifted = np.stack([_pose(translation=(0.1, 0.0, 0.0))] * 2)
    assert pose_end_point_error(shifted, identity) == pytest.approx(0.1, abs=1e-12)
    # (B, 3, 4) inputs and a single pose work too.
    assert pose_end_point_error(shifted[:, :3], identity[:, :3]) == pytest.approx(0.1, abs=1e-12)
    assert pose_end_point_error(shifted[0], identity[0]) == pytest.approx(0.1, abs=1e-12)


def test_pose_epe_rotation_about_y():
    theta = 0.3
    # Rotating a point by theta about the y-axis moves it along a chord of the circle of
    # radius sqrt(x^2 + z^2): length 2 sin(theta / 2) sqrt(x^2 + z^2). Corners: x = +-0.5,
    # z in {1.5, 2.5}, four corners each.
    chord = 2 * math.sin(theta / 2)
    expected = chord * (math.sqrt(0.25 + 1.5**2) + math.sqrt(0.25 + 2.5**2)) / 2
    rotated = _pose(_rotation_y(theta))[None]
    assert pose_end_point_error(rotated, _pose()[None]) == pytest.approx(expected, rel=1e-12)
    # Batch mean: one perfect and one rotated sample.
    batch_pred = np.stack([_pose(), _pose(_rotation_y(theta))])
    assert pose_end_point_error(batch_pred, np.stack([_pose(), _pose()])) == pytest.approx(expected / 2)


def test_pose_epe_projects_non_rotations():
    gt = _pose(_rotation_y(0.2), (0.3, -0.1, 0.5))[None]
    raw = gt.copy()
    raw[0, :3, :3] *= 2.0  # 2R is no rotation; its closest rotation is R
    assert pose_end_point_error(raw, gt) == pytest.approx(0.0, abs=1e-12)
    # Unprojected and applied as given, each point X moves by ||2RX - RX|| = ||X|| = sqrt(0.5 + z^2).
    norms = (math.sqrt(0.5 + 1.5**2) + math.sqrt(0.5 + 2.5**2)) / 2
    gt_origin = _pose(_rotation_y(0.2))[None]
    raw_origin = gt_origin.copy()
    raw_origin[0, :3, :3] *= 2.0
    as_given = pose_end_point_error(raw_origin, gt_origin, project_rotation=False, pose_direction="first_to_last")
    assert as_given == pytest.approx(norms)
    # Inverted (the default direction), 2R becomes R^T / 2: ||R^T X / 2 - R^T X|| = ||X|| / 2.
    assert pose_end_point_error(raw_origin, gt_origin, project_rotation=False) == pytest.approx(norms / 2)
    singular = gt_origin.copy()
    singular[0, :3, :3] = 0.0
    with pytest.raises(ValueError, match="singular"):
        pose_end_point_error(singular, gt_origin, project_rotation=False)


def test_pose_epe_moves_a_point_in_front_of_the_first_camera_into_the_last():
    # First camera at the origin, last camera 1 m to its right (+x), not turned. Our labels map
    # the last camera's frame into the first's: inv(c2w_first) @ c2w_last = [I | (1, 0, 0)].
    # A point 2 m ahead of the first camera, X = (0, 0, 2), appears to the last camera at
    # X - (1, 0, 0) = (-1, 0, 2): sqrt(1 + 4) = sqrt(5) from it.
    point = np.array([[0.0, 0.0, 2.0]])
    gt = _pose(translation=(1.0, 0.0, 0.0))[None]
    # The prediction has the translation right and the last camera turned by theta about y.
    # The cube then turns about the last camera: a chord of the circle through (-1, 0, 2),
    # 2 sin(theta / 2) sqrt(5).
    theta = 0.2
    pred = _pose(_rotation_y(theta), (1.0, 0.0, 0.0))[None]
    chord = 2 * math.sin(theta / 2)
    assert pose_end_point_error(pred, gt, cube_points=point) == pytest.approx(chord * math.sqrt(5))
    # Applying the labels as given instead turns X about the first camera: radius 2 (not the paper's cube).
    assert pose_end_point_error(pred, gt, cube_points=point, pose_direction="first_to_last") == pytest.approx(chord * 2)


def test_pose_epe_default_cube_after_moving_forward():
    # The last camera is 2 m ahead of the first, at the default cube's centre: its corners are
    # (+-0.5, +-0.5, +-0.5) to it, all sqrt(0.5) from its vertical axis. A yaw error theta moves
    # each by the chord 2 sin(theta / 2) sqrt(0.5).
    theta = 0.3
    gt = _pose(translation=(0.0, 0.0, 2.0))[None]
    pred = _pose(_rotation_y(theta), (0.0, 0.0, 2.0))[None]
    chord = 2 * math.sin(theta / 2)
    assert pose_end_point_error(pred, gt) == pytest.approx(chord * math.sqrt(0.5))
    # As given, the cube turns about the first camera: radii sqrt(0.25 + z^2), z in {1.5, 2.5}.
    as_given = chord * (math.sqrt(0.25 + 1.5**2) + math.sqrt(0.25 + 2.5**2)) / 2
    assert pose_end_point_error(pred, gt, pose_direction="first_to_last") == pytest.approx(as_given)
    # Poses already in the metric's direction (first -> last): pass them with "first_to_last".
    inverted = pose_end_point_error(np.linalg.inv(pred), np.linalg.inv(gt), pose_direction="first_to_last")
    assert inverted == pytest.approx(chord * math.sqrt(0.5))
    with pytest.raises(ValueError, match="pose_direction"):
        pose_end_point_error(pred, gt, pose_direction="world_to_camera")


def test_project_to_rotation_fixes_reflections():
    rng = np.random.default_rng(0)
    matrices = rng.normal(size=(16, 3, 3))
    rotations = project_to_rotation(matrices)
    np.testing.assert_allclose(rotations @ np.swapaxes(rotations, -1, -2), np.broadcast_to(np.eye(3), (16, 3, 3)), atol=1e-10)
    np.testing.assert_allclose(np.linalg.det(rotations), np.ones(16), atol=1e-10)
    r = _rotation_y(0.7)
    np.testing.assert_allclose(project_to_rotation(r), r, atol=1e-12)


def test_pose_epe_custom_points_and_errors():
    points = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 3.0]])
    pred = _pose(translation=(0.0, 0.2, 0.0))[None]
    assert pose_end_point_error(pred, _pose()[None], cube_points=points) == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"\(B, 4, 4\) or \(B, 3, 4\)"):
        pose_end_point_error(np.zeros((1, 3, 3)), _pose()[None])
    with pytest.raises(ValueError, match="batch"):
        pose_end_point_error(np.stack([_pose(), _pose()]), _pose()[None])
    bad = _pose()[None].copy()
    bad[0, 0, 3] = np.nan
    with pytest.raises(ValueError, match="predicted pose.*NaN"):
        pose_end_point_error(bad, _pose()[None])
    with pytest.raises(ValueError, match="cube points"):
        pose_end_point_error(pred, _pose()[None], cube_points=np.zeros((4, 2)))


# -------------------------------------------------------------------------- classification


def test_top1_accuracy():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.2, 0.0], [0.3, 0.7, 0.0], [0.0, 0.0, 5.0]])
    labels = np.array([1, 1, 1, 2])
    assert top1_accuracy(logits, labels) == pytest.approx(3 / 4)
    assert top1_accuracy(torch.tensor(logits), torch.tensor(labels)) == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match="labels"):
        top1_accuracy(logits, labels[:2])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        top1_accuracy(logits, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="logits.*NaN"):
        top1_accuracy(np.full((4, 3), np.nan), labels)


# ------------------------------------------------------------------------ compute_metrics


def test_compute_metrics_depth():
    target = np.linspace(0.5, 8.0, 2 * 2 * 3 * 4).reshape(2, 2, 3, 4)
    compute = make_compute_metrics("depth")
    for predictions in (1.1 * target, (1.1 * target,)):
        metrics = compute(EvalPrediction(predictions=predictions, label_ids=target))
        assert set(metrics) == {"abs_rel"}
        assert metrics["abs_rel"] == pytest.approx(0.1)
    # Trainer -100 padding falls outside the valid range.
    padded = target.copy()
    padded[:, :, 0] = -100.0
    prediction = 1.1 * target
    prediction[:, :, 0] = -100.0
    assert compute(EvalPrediction(predictions=prediction, label_ids=padded))["abs_rel"] == pytest.approx(0.1)
    # clip_size is for the metrics that need it: depth ignores it. The mask option passes through.
    assert make_compute_metrics("depth", clip_size=(3, 4))((1.1 * target, target))["abs_rel"] == pytest.approx(0.1)
    holes = 1.1 * target
    holes[:, :, 0] = np.nan
    assert make_compute_metrics("depth", mask="finite")((holes, target))["abs_rel"] == pytest.approx(0.1)
    tight = make_compute_metrics("depth", valid_range=(0.001, 1.0))
    assert tight(EvalPrediction(predictions=1.1 * target, label_ids=target))["abs_rel"] == pytest.approx(0.1)


def test_compute_metrics_points():
    gt = _tracks(batch=2, frames=4, points=3)
    gt_visible = np.ones(gt.shape[:-1], dtype=bool)
    gt_visible[1, 0, 2] = False  # not visible on the query frame: ignored
    pred = gt + np.array([3.0, 0.0])
    pred[1, :, 2] += 100.0
    pred[:, 0] += 100.0  # frame 0 (the query frame) is not evaluated
    extra = np.zeros(gt.shape[:-1])  # e.g. logits: ignored
    compute = make_compute_metrics("points", image_size=(256, 256))  # thresholds at 256: the coordinates' pixels
    metrics = compute(EvalPrediction(predictions=(pred, gt_visible, extra), label_ids=(gt, gt_visible.astype(np.float32))))
    assert metrics["average_jaccard"] == pytest.approx(3 / 5)
    assert metrics["jaccard_2"] == 0.0 and metrics["jaccard_4"] == 1.0
    assert metrics["occlusion_accuracy"] == 1.0
    # Trainer padding: -100 visibility labels are excluded.
    padded_gt = np.concatenate([gt, np.full((2, 4, 1, 2), -100.0)], axis=2)
    padded_vis = np.concatenate([gt_visible, np.full((2, 4, 1), -100.0)], axis=2)
    padded_pred = np.concatenate([pred, np.full((2, 4, 1, 2), -100.0)], axis=2)
    padded_pred_vis = np.concatenate([gt_visible, np.ones((2, 4, 1), dtype=bool)], axis=2)
    padded = compute(EvalPrediction(predictions=[padded_pred, padded_pred_vis], label_ids=(padded_gt, padded_vis)))
    assert padded == pytest.approx(metrics)
    # The 256x256 rescaling passes through: 3 px at 128 is 6 px; clip_size gives image_size
    # (what ReadoutTrainer passes from the model's config), an explicit image_size wins.
    as_128 = EvalPrediction(predictions=(pred, gt_visible), label_ids=(gt, gt_visible))
    assert make_compute_metrics("points", image_size=(128, 128))(as_128)["average_jaccard"] == pytest.approx(2 / 5)
    assert make_compute_metrics("points", clip_size=(128, 128))(as_128)["average_jaccard"] == pytest.approx(2 / 5)
    explicit = make_compute_metrics("points", clip_size=(128, 128), image_size=(256, 256))
    assert explicit(as_128)["average_jaccard"] == pytest.approx(3 / 5)
    # The clip's own pixels: 3 px is within 4, 8 and 16.
    assert make_compute_metrics("points", thresholds_in="clip")(as_128)["average_jaccard"] == pytest.approx(3 / 5)
    # Without a size the 256x256 thresholds cannot be placed: an error when building, not evaluating.
    with pytest.raises(ValueError, match=r"image_size=\(H, W\).*thresholds_in='clip'"):
        make_compute_metrics("points")
    with pytest.raises(ValueError, match="at least 2"):
        compute(EvalPrediction(predictions=pred, label_ids=(gt, gt_visible)))


def test_compute_metrics_boxes():
    gt = np.concatenate([_box_track(), _box_track() + 5.0])  # (2, 3, 2, 4)
    pred = gt.copy()
    pred[:, 0] += 100.0  # frame 0 is given, not scored
    compute = make_compute_metrics("boxes")
    for predictions in (pred, (pred,), [torch.tensor(pred)]):
        assert compute(EvalPrediction(predictions=predictions, label_ids=gt)) == {"mean_iou": 1.0}
    # Padding slots (Trainer -100, NaN, empty boxes) do not count.
    padded_gt = np.concatenate([gt, np.full((2, 3, 1, 4), -100.0), np.full((2, 3, 1, 4), np.nan), np.zeros((2, 3, 1, 4))], axis=2)
    padded_pred = np.concatenate([pred, np.ones((2, 3, 3, 4))], axis=2)
    assert compute(EvalPrediction(predictions=padded_pred, label_ids=padded_gt)) == {"mean_iou": 1.0}
    full = make_compute_metrics("boxes", skip_first_frame=False)
    assert full(EvalPrediction(predictions=pred, label_ids=gt))["mean_iou"] == pytest.approx(2 / 3)
    # Per track, per video, then over videos (the default) vs pooled over boxes.
    uneven_gt, uneven_pred = gt.copy(), pred.copy()
    uneven_gt[1, :, 1] = -100.0  # video 1: one track (the other is Trainer padding)
    uneven_pred[0, 2, 1] += 100.0  # video 0: track 1 missed on frame 2 (IoU 0)
    # Video 0: tracks 1 and (1 + 0) / 2 -> 3/4; video 1: 1 -> (3/4 + 1) / 2 = 7/8.
    assert compute((uneven_pred, uneven_gt))["mean_iou"] == pytest.approx(7 / 8)
    # Pooled: 6 boxes after frame 0, one of IoU 0 -> 5/6.
    assert make_compute_metrics("boxes", average="boxes")((uneven_pred, uneven_gt))["mean_iou"] == pytest.approx(5 / 6)


def test_compute_metrics_pose():
    gt = np.stack([_pose(), _pose()])
    pred = np.stack([_pose(translation=(0.1, 0.0, 0.0))] * 2)
    raw = pred[:, :3]
    for name in ("pose", "camera_pose"):
        compute = make_compute_metrics(name)
        metrics = compute(EvalPrediction(predictions=(pred, raw), label_ids=gt))
        assert set(metrics) == {"end_point_error"}
        assert metrics["end_point_error"] == pytest.approx(0.1)
    assert compute(EvalPrediction(predictions=pred, label_ids=gt))["end_point_error"] == pytest.approx(0.1)
    # pose_direction passes through (the forward-motion case of test_pose_epe_default_cube_after_moving_forward).
    forward, turned = _pose(translation=(0.0, 0.0, 2.0))[None], _pose(_rotation_y(0.3), (0.0, 0.0, 2.0))[None]
    chord = 2 * math.sin(0.15)
    assert compute((turned, forward))["end_point_error"] == pytest.approx(chord * math.sqrt(0.5))
    as_given = make_compute_metrics("pose", pose_direction="first_to_last")((turned, forward))["end_point_error"]
    assert as_given == pytest.approx(chord * (math.sqrt(0.25 + 1.5**2) + math.sqrt(0.25 + 2.5**2)) / 2)


def test_compute_metrics_classification():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    labels = np.array([1, 1, 1])
    compute = make_compute_metrics("classification")
    assert compute(EvalPrediction(predictions=logits, label_ids=labels))["top1"] == pytest.approx(2 / 3)
    assert compute(EvalPrediction(predictions=(logits,), label_ids=labels))["top1"] == pytest.approx(2 / 3)
    # A plain (predictions, labels) pair works too.
    assert compute((logits, labels))["top1"] == pytest.approx(2 / 3)


def test_make_compute_metrics_rejects_unknown_task_and_kwargs():
    with pytest.raises(ValueError, match="unknown task"):
        make_compute_metrics("segmentation")
    with pytest.raises(TypeError, match="valid_rang"):
        make_compute_metrics("depth", valid_rang=(0, 1))
    with pytest.raises(TypeError, match="query_frames"):
        make_compute_metrics("points", query_frames=np.zeros((1, 1)))
    with pytest.raises(ValueError, match="no labels"):
        make_compute_metrics("depth")(EvalPrediction(predictions=np.ones((1, 1, 2, 2)), label_ids=None))
