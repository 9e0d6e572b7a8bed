"""Benchmark metrics (fourd_hub.evaluation.metrics): J / F / J&F (davis2017-evaluation) and PCK
(JHMDB, predicted visibility), against the ``"model": "RVM-label-propagation"`` cases of cases.json
(to 1e-9; measured: 0) and against tiny cases computed by hand in the comments.

(Named test_evaluation_metrics.py, not test_metrics.py: tests/ has no __init__.py files, so two test
modules with the same basename would collide under pytest's default import mode.)
"""

from __future__ import annotations

import numpy as np
import pytest

from fourd_hub.evaluation import (
    compute_human_boxes,
    davis_sequence_metrics,
    davis_summary,
    db_eval_boundary,
    db_eval_iou,
    jhmdb_pck,
    seg2bmap,
)
from fourd_hub.evaluation.metrics import _dilate

from conftest import load_npz

METRIC_TOLERANCE = 1e-9


def lp_cases(cases: dict) -> dict[str, dict]:
    return {name: case for name, case in cases.items() if case.get("model") == "RVM-label-propagation"}


@pytest.mark.parity
def test_davis_j_f_match_the_evaluation_demo(reference, cases):
    assert lp_cases(cases)
    for name, case in lp_cases(cases).items():
        ref = load_npz(reference / case["reference"])
        J, F = davis_sequence_metrics(ref["seg_masks"], ref["seg_pred_masks"])
        assert J.shape == ref["seg_J_per_frame"].shape, name
        assert np.abs(J - ref["seg_J_per_frame"]).max() <= METRIC_TOLERANCE, name
        assert np.abs(F - ref["seg_F_per_frame"]).max() <= METRIC_TOLERANCE, name
        summary = davis_summary([(J, F)])
        got = [summary["J&F-Mean"], summary["J-Mean"], summary["F-Mean"]]
        assert np.abs(np.array(got) - ref["seg_davis_JF_J_F"]).max() <= METRIC_TOLERANCE, name


@pytest.mark.parity
def test_jhmdb_pck_matches_the_evaluation_demo(reference, cases):
    for name, case in lp_cases(cases).items():
        ref = load_npz(reference / case["reference"])
        pose = case["pose"]
        videos = []
        for i in range(pose["num_videos"]):
            boxes = compute_human_boxes(ref[f"pose{i}_gt"], ref[f"pose{i}_pred_visible_alt"] > 0)
            assert np.abs(boxes - ref[f"pose{i}_human_boxes_alt"]).max() <= METRIC_TOLERANCE, (name, i)
            videos.append((ref[f"pose{i}_pred_coords_alt"], ref[f"pose{i}_gt"], ref[f"pose{i}_pred_visible_alt"] > 0))
        pck, per_joint = jhmdb_pck(videos, pose["pck_thresholds"])
        assert np.abs(pck - ref["pose_pck_alt"]).max() <= METRIC_TOLERANCE, name
        assert np.abs(per_joint - ref["pose_pck_per_joint_alt"]).max() <= METRIC_TOLERANCE, name


def _block(rows, cols, size=5):
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = 1
    return mask


GT = _block((1, 3), (1, 3))  # a 3x3 square in a 5x5 frame
SHIFTED = _block((1, 3), (2, 4))  # the same square one pixel to the right


def test_iou_by_hand():
    # Intersection: rows 1-3 x cols 2-3 = 6 pixels; union 9 + 9 - 6 = 12 -> 0.5.
    assert db_eval_iou(GT, SHIFTED) == 0.5
    # Both empty: the reference scores 1.
    assert db_eval_iou(np.zeros((5, 5)), np.zeros((5, 5))) == 1.0
    np.testing.assert_array_equal(db_eval_iou(np.stack([GT, GT]), np.stack([GT, np.zeros_like(GT)])), [1.0, 0.0])


def test_seg2bmap_by_hand():
    # A pixel is boundary when it differs from its east, south or south-east neighbour; the last row
    # only looks east, the last column only south. For the 3x3 square at rows/cols 1-3: the outside
    # pixels above/left of it (row 0 cols 0-3, col 0 rows 1-3) and its own bottom row / right column.
    expected = np.array(
        [
            [1, 1, 1, 1, 0],
            [1, 0, 0, 1, 0],
            [1, 0, 0, 1, 0],
            [1, 1, 1, 1, 0],
            [0, 0, 0, 0, 0],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(seg2bmap(GT), expected)


def test_boundary_f_by_hand():
    # 5x5: radius ceil(0.008 * sqrt(50)) = ceil(0.057) = 1 (a plus-shaped disk). The shifted square's
    # boundary (10 pixels: row 0 cols 1-4, col 1 rows 1-3, row 3 cols 2-4) lies within one pixel of
    # the true one (12 pixels) and vice versa: P = R = 1, F = 1.
    assert db_eval_boundary(GT, SHIFTED) == 1.0
    # Radius 0 (bound_th 0 -> ceil(0) = 0): only coinciding pixels match: row 0 cols 1-3 and row 3
    # cols 1-3 = 6. P = 6 / 10, R = 6 / 12, F = 2 * 0.6 * 0.5 / 1.1 = 6 / 11.
    assert db_eval_boundary(GT, SHIFTED, bound_th=0.0) == pytest.approx(6 / 11, abs=1e-12)
    # No prediction: P = 1, R = 0 -> F = 0; neither has a boundary: F = 1.
    assert db_eval_boundary(GT, np.zeros_like(GT)) == 0.0
    assert db_eval_boundary(np.zeros_like(GT), np.zeros_like(GT)) == 1.0


def test_the_dilation_is_skimage_disk():
    # disk(2): x^2 + y^2 <= 4 -> the centre, 4 at distance 1, 4 at sqrt(2), 4 at 2 = 13 pixels.
    point = np.zeros((7, 7), dtype=bool)
    point[3, 3] = True
    assert _dilate(point, 2.0).sum() == 13
    # At a corner, outside pixels do not count (cv2.dilate's border): the quarter disk of radius 2 = 6.
    corner = np.zeros((7, 7), dtype=bool)
    corner[0, 0] = True
    assert _dilate(corner, 2.0).sum() == 6


def test_davis_aggregation_by_hand():
    # Two objects: J rows [1, 0.5] and [0, nan] -> object means 0.75 and 0 (nan-mean per object),
    # J-Mean 0.375; F rows [1, 1] and [0.5, 0.5] -> 1 and 0.5, F-Mean 0.75; J&F = (0.375 + 0.75) / 2.
    J = np.array([[1.0, 0.5], [0.0, np.nan]])
    F = np.array([[1.0, 1.0], [0.5, 0.5]])
    assert davis_summary([(J, F)]) == {"J&F-Mean": 0.5625, "J-Mean": 0.375, "F-Mean": 0.75}


def test_davis_scores_frames_one_to_t_minus_two_and_objects_to_the_max_label():
    gt = np.stack([GT * 2, GT, GT * 2, GT])  # labels 1 and 2 appear: objects 1..2
    pred = np.stack([np.zeros_like(GT), GT, np.zeros_like(GT), np.zeros_like(GT)])
    J, F = davis_sequence_metrics(gt, pred)
    # Frames 1 and 2 only. Object 1: frame 1 exact (1), frame 2 absent from both (empty union: 1).
    # Object 2: frame 1 absent from both (1), frame 2 missed (0).
    np.testing.assert_array_equal(J, [[1.0, 1.0], [1.0, 0.0]])
    np.testing.assert_array_equal(F, [[1.0, 1.0], [1.0, 0.0]])


def test_pck_by_hand():
    # Frame 1: joints (0, 0) and (3, 4) visible -> box 0.6 * ||(3, 4)|| = 3; joint 2 at (30, 40) is
    # predicted invisible, so it neither enlarges the box nor counts. Joint 0 is off by 0.75 px
    # (0.25 of the box), joint 1 exact. Frame 0 (the input) is wrong everywhere and not scored.
    gt = np.array([[[0, 0], [3, 4], [30, 40]], [[0, 0], [3, 4], [30, 40]]], dtype=np.float32)
    pred = np.array([[[50, 50], [50, 50], [-1, -1]], [[0.75, 0], [3, 4], [-1, -1]]], dtype=np.float32)
    visible = np.array([[True, True, False], [True, True, False]])
    np.testing.assert_array_equal(compute_human_boxes(gt, visible), [3.0, 3.0])
    pck, per_joint = jhmdb_pck([(pred, gt, visible)], thresholds=(0.1, 0.3))
    # @0.1: joint 0 fails, joint 1 passes -> 50; @0.3: both -> 100; joint 2 has no distance (NaN, left out).
    np.testing.assert_array_equal(pck, [50.0, 100.0])
    np.testing.assert_array_equal(per_joint[:, :2], [[0.0, 100.0], [100.0, 100.0]])
    assert np.isnan(per_joint[:, 2]).all()


def test_bad_metric_inputs():
    with pytest.raises(ValueError, match="shapes differ"):
        db_eval_iou(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="at least 3 frames"):
        davis_sequence_metrics(np.zeros((2, 4, 4), np.uint8), np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(TypeError, match="integer label maps"):
        davis_sequence_metrics(np.zeros((3, 4, 4), np.float32), np.zeros((3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        jhmdb_pck([(np.full((2, 1, 2), np.nan), np.zeros((2, 1, 2)), np.ones((2, 1), bool))])
    with pytest.raises(ValueError, match="no visible joint"):
        jhmdb_pck([(np.zeros((2, 1, 2)), np.zeros((2, 1, 2)), np.zeros((2, 1), bool))])


def test_db_statistics_by_hand():
    from fourd_hub.evaluation import db_statistics

    # n = 3 values: ids = round(linspace(1, 3, 5) + 1e-10) - 1 = round([1, 1.5, 2, 2.5, 3]) - 1
    # = [0, 1, 1, 2, 2] (the 1e-10 rounds the halves up); bins v[0:2], v[1:2], v[1:3], v[2:3];
    # decay = mean(v0, v1) - v2.
    values = np.array([0.9, 0.6, 0.3])
    mean, recall, decay = db_statistics(values)
    assert mean == pytest.approx(0.6, abs=1e-12)
    assert recall == pytest.approx(2 / 3, abs=1e-12)  # 0.9 and 0.6 are > 0.5
    assert decay == pytest.approx(0.75 - 0.3, abs=1e-12)
    # n = 8: ids = round([1, 2.75, 4.5, 6.25, 8]) - 1 = [0, 2, 4, 5, 7]: first bin v[0:3], last v[5:8].
    values = np.arange(8, dtype=np.float64)
    assert db_statistics(values)[2] == pytest.approx(1.0 - 6.0, abs=1e-12)
    # A NaN frame is left out of the mean; it is not > 0.5 (recall counts it as a miss).
    mean, recall, _ = db_statistics(np.array([1.0, np.nan]))
    assert (mean, recall) == (1.0, 0.5)


def test_davis_global_results_add_recall_and_decay():
    from fourd_hub.evaluation import davis_global_results

    # One object, J [1, 0.5, 0] (mean 0.5, recall 1/3, decay mean(1, 0.5) - 0 = 0.75); F all 1.
    J = np.array([[1.0, 0.5, 0.0]])
    F = np.ones((1, 3))
    got = davis_global_results([(J, F)])
    assert list(got) == ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    expected = {"J&F-Mean": 0.75, "J-Mean": 0.5, "J-Recall": 1 / 3, "J-Decay": 0.75, "F-Mean": 1.0, "F-Recall": 1.0, "F-Decay": 0.0}
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    summary = davis_summary([(J, F)])
    assert all(summary[k] == got[k] for k in summary)


def test_vip_histogram_and_miou_by_hand():
    from fourd_hub.evaluation import VIP_CLASSES, ConfusionHistogram, fast_hist, vip_miou

    assert len(VIP_CLASSES) == 20 and VIP_CLASSES[0] == "background" and VIP_CLASSES[13] == "face"
    gt = np.array([[0, 0, 0, 1], [1, 1, 255, 2]])
    pred = np.array([[0, 0, 1, 1], [1, 0, 0, 2]])
    hist = fast_hist(gt, pred, 3)
    # gt 255 is ignored; rows = gt, columns = prediction:
    # gt 0: predicted 0, 0, 1 -> [2, 1, 0]; gt 1: predicted 1, 1, 0 -> [1, 2, 0]; gt 2: [0, 0, 1].
    np.testing.assert_array_equal(hist, [[2, 1, 0], [1, 2, 0], [0, 0, 1]])
    # IoU_0 = 2 / (3 + 3 - 2) = 1/2, IoU_1 = 2 / (3 + 3 - 2) = 1/2, IoU_2 = 1 / 1 = 1 -> mIoU 2/3.
    miou, per_class = vip_miou(hist)
    np.testing.assert_allclose(per_class, [0.5, 0.5, 1.0])
    assert miou == pytest.approx(2 / 3, abs=1e-12)
    # 20 classes: the 17 absent from both are 0 / 0 = NaN and left out of the mean.
    acc = ConfusionHistogram()
    acc.update(gt, pred)
    acc.update(gt[None], pred[None])  # (T, H, W) too: the same counts again
    miou20, per_class20 = acc.miou()
    assert acc.hist.sum() == 14 and np.isnan(per_class20[3:]).all()
    assert miou20 == pytest.approx(2 / 3, abs=1e-12)


def test_vip_bad_input_is_a_clear_error():
    from fourd_hub.evaluation import fast_hist, vip_miou

    with pytest.raises(ValueError, match="predicted label 20 is outside the 20 classes"):
        fast_hist(np.zeros((2, 2), int), np.full((2, 2), 20), 20)
    with pytest.raises(ValueError, match="differ in shape"):
        fast_hist(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(TypeError, match="integer label map"):
        fast_hist(np.zeros((2, 2)), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="empty"):
        vip_miou(np.zeros((20, 20)))
    with pytest.raises(ValueError, match="square"):
        vip_miou(np.zeros((2, 3)))


def test_the_dilation_equals_the_or_over_every_disk_offset():
    # Brute force, written here: out[y, x] = any(mask[y + dy, x + dx]) over dy^2 + dx^2 <= r^2, in bounds.
    rng = np.random.RandomState(0)
    for radius in (0.0, 1.0, 2.0, 2.5, 8.0):
        mask = rng.rand(23, 31) > 0.93
        r = int(radius)
        expected = np.zeros_like(mask)
        for y in range(23):
            for x in range(31):
                expected[y, x] = any(
                    mask[y + dy, x + dx]
                    for dy in range(-r, r + 1) for dx in range(-r, r + 1)
                    if dy * dy + dx * dx <= radius * radius and 0 <= y + dy < 23 and 0 <= x + dx < 31
                )
        np.testing.assert_array_equal(_dilate(mask, radius), expected, err_msg=f"radius {radius}")
