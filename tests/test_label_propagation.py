"""Label propagation (fourd_hub.label_propagation): parity with the RVM evaluation demo on every
``"model": "RVM-label-propagation"`` case of cases.json, chunking, the cv2 resize rules by hand, bad input.

Measured on rvm_label_propagation (float32, unchunked): normalised features 0, first-frame
heatmaps 0 (segmentation and pose), propagated heatmaps 0 (default, alternative and unrestricted
parameters, segmentation; pose) to 1.2e-7, label maps exact, keypoints 7.6e-6 px (tied entries
skipped), visibility exact. Chunked computation: <= 3e-7 from the unchunked one (matmul blocking).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fourd_hub.label_propagation import (
    LabelPropagator,
    cv2_resize_linear,
    cv2_resize_nearest,
    cv2_resize_nearest_exact,
    heatmap_to_mask,
    heatmap_to_pose,
    label_propagation,
    mask_to_heatmap,
    normalize_features,
    pose_to_heatmap,
)

from conftest import load_npz

TOLERANCE = 1e-4


def lp_cases(cases: dict) -> dict[str, dict]:
    return {name: case for name, case in cases.items() if case.get("model") == "RVM-label-propagation"}


def _err(a, b) -> float:
    a = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return float(np.abs(a.astype(np.float64) - np.asarray(b, dtype=np.float64)).max())


@pytest.mark.parity
def test_there_is_a_label_propagation_case(cases):
    assert lp_cases(cases), "cases.json has no RVM-label-propagation case"


@pytest.mark.parity
def test_segmentation_matches_the_evaluation_demo(reference, cases):
    for name, case in lp_cases(cases).items():
        ref = load_npz(reference / case["reference"])
        seg = case["segmentation"]
        grid, size, original = tuple(seg["feature_grid"]), tuple(seg["processing_size"]), tuple(seg["original_size"])
        assert _err(normalize_features(ref["seg_features_raw"]), ref["seg_features"]) <= TOLERANCE, name
        heatmap, labels = mask_to_heatmap(ref["seg_masks"][0], grid, size)
        assert _err(heatmap, ref["seg_first_frame_heatmap"]) <= TOLERANCE, name
        np.testing.assert_array_equal(labels, ref["seg_label_map"])
        runs = {
            "": seg["params"],
            "_alt": seg["alt_params"],
            "_unrestricted": dict(seg["params"], restrict_neighborhood=False),
        }
        for suffix, params in runs.items():
            pred = label_propagation(ref["seg_features"], ref["seg_first_frame_heatmap"], **params)
            assert _err(pred, ref[f"seg_pred_heatmaps{suffix}"]) <= TOLERANCE, (name, suffix)
        for suffix in ("", "_alt"):
            masks = heatmap_to_mask(ref[f"seg_pred_heatmaps{suffix}"], ref["seg_label_map"], size, original)
            np.testing.assert_array_equal(masks, ref[f"seg_pred_masks{suffix}"].astype(np.int32), err_msg=f"{name}{suffix}")


@pytest.mark.parity
def test_pose_matches_the_evaluation_demo(reference, cases):
    for name, case in lp_cases(cases).items():
        ref = load_npz(reference / case["reference"])
        pose = case["pose"]
        grid, original = tuple(pose["feature_grid"]), tuple(pose["original_size"])
        for i in range(pose["num_videos"]):
            heatmap = pose_to_heatmap(ref[f"pose{i}_gt"][0], grid, original, sigma=pose["draw_labelmap_sigma"])
            assert _err(heatmap, ref[f"pose{i}_first_frame_heatmap"]) <= TOLERANCE, (name, i)
            for suffix, params in (("", pose["params"]), ("_alt", pose["alt_params"])):
                pred = label_propagation(ref[f"pose{i}_features"], ref[f"pose{i}_first_frame_heatmap"], **params)
                assert _err(pred, ref[f"pose{i}_pred_heatmaps{suffix}"]) <= TOLERANCE, (name, i, suffix)
                coords, visible = heatmap_to_pose(ref[f"pose{i}_pred_heatmaps{suffix}"], original, topk=pose["process_pose_topk"])
                # Entries whose top-k has a tie at its boundary depend on tie-breaking (the case says: skip them).
                keep = ~ref[f"pose{i}_pred_coords_tied"] if suffix == "" else np.ones(visible.shape, bool)
                assert _err(coords[keep], ref[f"pose{i}_pred_coords{suffix}"][keep]) <= TOLERANCE, (name, i, suffix)
                np.testing.assert_array_equal(visible, ref[f"pose{i}_pred_visible{suffix}"] > 0)


def _random_inputs(T=4, h=5, w=7, C=6, L=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = torch.nn.functional.normalize(torch.randn(T, h, w, C, generator=g), dim=-1)
    heatmap = torch.softmax(torch.randn(h, w, L, generator=g), -1)
    return feats, heatmap


def _literal_reference(feats, heatmap, n_context=20, temperature=0.7, topk=7, radius=20, restrict_neighborhood=True):
    """rvm.md 6.2 written out literally (full (h, w, n_context+1, h, w) affinities, one top-k per row): the oracle."""
    from collections import deque

    T, h, w, C = feats.shape
    L = heatmap.shape[-1]
    ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    dist = torch.sqrt(((ii[:, :, None, None] - ii[None, None]) ** 2 + (jj[:, :, None, None] - jj[None, None]) ** 2).float())
    dmask = torch.where(dist < radius, 0.0, -1e10)
    queue = deque([(feats[0], heatmap)] * n_context, maxlen=n_context)
    out = []
    for t in range(T):
        ctx_f = torch.stack([feats[0]] + [f for f, _ in queue])
        ctx_l = torch.stack([heatmap] + [l for _, l in queue])
        aff = torch.einsum("hwc,tmnc->hwtmn", feats[t], ctx_f) / temperature
        if restrict_neighborhood:
            aff[:, :, 1:] += dmask[:, :, None]
        w_k, idx = torch.topk(aff.reshape(h, w, -1), topk)
        w_k = torch.softmax(w_k, -1)
        pred = (w_k[..., None] * ctx_l.reshape(-1, L)[idx]).sum(-2)
        queue.append((feats[t], pred))
        out.append(pred)
    return torch.stack(out)


@pytest.mark.parametrize(
    "params",
    [
        dict(n_context=2, topk=3, radius=2),  # the band: rows farther than the radius are not computed
        dict(n_context=7, topk=7, radius=20),  # every row within the radius; copies of frame 0 shared
        dict(n_context=4, topk=5, radius=1.5, temperature=0.2),
        dict(n_context=2, topk=40, radius=0),  # topk > h*w and no queue position within the radius
        dict(n_context=4, topk=4, radius=2, restrict_neighborhood=False),
        dict(n_context=3, topk=4, radius=2, chunk_size=8),  # one grid row per chunk: keys 2+ rows away skipped
        dict(n_context=3, topk=4, radius=1.2, chunk_size=5),  # chunks across row boundaries
    ],
)
def test_two_stage_topk_equals_the_literal_algorithm(params):
    # topk <= n_context + 1 (as the protocol's defaults), or no queue entry within reach: otherwise the
    # queue entry of frame 0 ties exactly with the first frame (same features, other labels) and
    # the literal algorithm's own result depends on torch.topk's unspecified tie order.
    feats, heatmap = _random_inputs(T=7, h=6, w=8, C=5, L=4, seed=1)
    expected = _literal_reference(feats, heatmap, **{k: v for k, v in params.items() if k != "chunk_size"})
    got = label_propagation(feats, heatmap, **params)
    assert got.shape == expected.shape == (7, 6, 8, 4)
    assert _err(got, expected) <= 1e-6
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


def test_unnormalised_huge_features_fall_back_to_full_rows():
    # |q . k| / temperature ~ 1e12: a -1e10 mask no longer dominates, so nothing may be skipped.
    feats, heatmap = _random_inputs(T=4, h=6, w=8, C=5, seed=2)
    feats = feats * 1e6
    params = dict(n_context=2, topk=3, radius=2)
    assert _err(label_propagation(feats, heatmap, **params), _literal_reference(feats, heatmap, **params)) <= 1e-6


def test_streaming_steps_equal_the_whole_video():
    feats, heatmap = _random_inputs(T=6, seed=3)
    params = dict(n_context=3, topk=4, radius=3)
    whole = label_propagation(feats, heatmap, **params)
    propagator = LabelPropagator(feats[0], heatmap, **params)
    steps = torch.stack([propagator.step(frame) for frame in feats.numpy()])  # numpy frames accepted too
    assert torch.equal(steps, whole)
    assert propagator.frames_done == 6 and len(propagator.queue) == 3
    with pytest.raises(ValueError, match=r"\(h, w, C\) = \(5, 7, 6\)"):
        propagator.step(feats[0, :4])
    with pytest.raises(ValueError, match="off the grid"):
        LabelPropagator(torch.randn(16, 8), heatmap)


def test_chunks_bound_the_affinity_rows_and_change_nothing(monkeypatch):
    feats, heatmap = _random_inputs()
    params = dict(n_context=2, topk=3, radius=2)
    full = label_propagation(feats, heatmap, **params)
    rows = []
    topk = torch.topk

    def spy(x, *args, **kwargs):
        rows.append(x.shape[0])
        return topk(x, *args, **kwargs)

    monkeypatch.setattr(torch, "topk", spy)
    chunked = label_propagation(feats, heatmap, **params, chunk_size=4)
    # 35 positions in chunks of 4 rows (the last has 3); every top-k runs on one chunk's rows.
    assert max(rows) == 4 and min(rows) == 3
    assert torch.allclose(full, chunked, atol=1e-6)
    rows.clear()
    # A budget of one row: h*w float32 affinities x 3 buffers.
    label_propagation(feats, heatmap, **params, max_chunk_bytes=35 * 4 * 3)
    assert max(rows) == 1


def test_first_frame_with_topk_one_copies_its_own_labels():
    # With topk = 1 every position of frame 0 matches itself (affinity 1/temperature, the maximum for
    # unit vectors of distinct directions); all candidates at that value carry the same first-frame
    # labels, so the prediction of frame 0 is the first-frame heatmap itself.
    feats, heatmap = _random_inputs(T=1)
    out = label_propagation(feats, heatmap, n_context=3, topk=1)
    assert torch.equal(out[0], heatmap)


def test_cv2_nearest_rules_by_hand():
    row = np.array([[10, 20, 30]], dtype=np.uint8)
    # INTER_NEAREST 3 -> 5: index floor(x * (1 / (5/3))) = floor(0.6 x) = 0, 0, 1, 1, 2.
    np.testing.assert_array_equal(cv2_resize_nearest(row, (1, 5))[0], [10, 10, 20, 20, 30])
    # INTER_NEAREST_EXACT 3 -> 5: ifx = ((3 << 16) + 2) // 5 = 39322, ifx0 = 39322 // 2 - 1 = 19660,
    # (39322 x + 19660) >> 16 = 0, 0, 1, 2, 2 (pixel centres: floor((x + 0.5) * 0.6)).
    np.testing.assert_array_equal(cv2_resize_nearest_exact(row, (1, 5))[0], [10, 10, 20, 30, 30])


def test_cv2_linear_rule_by_hand():
    # Shrink 4 -> 2: source x = (dx + 0.5) * 2 - 0.5 = 0.5, 2.5 -> means of pairs.
    np.testing.assert_array_equal(cv2_resize_linear(np.array([[0, 1, 2, 3]], np.float32), (1, 2)), [[0.5, 2.5]])
    # Grow 2 -> 4: x = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (>= last: the last value); of [0, 4]: 0, 1, 3, 4.
    np.testing.assert_array_equal(cv2_resize_linear(np.array([[0, 4]], np.float32), (1, 4)), [[0, 1, 3, 4]])
    # Channels are resized independently.
    image = np.stack([np.array([[0, 4]], np.float32), np.array([[8, 0]], np.float32)], -1)
    np.testing.assert_array_equal(cv2_resize_linear(image, (1, 4))[0], [[0, 8], [1, 6], [3, 2], [4, 0]])


def test_pose_heatmap_by_hand():
    # Grid = original size (scale 1). Joint (x=3, y=2): corner int(3 - 1.5) = 1, int(2 - 1.5) = 0,
    # the 4x4 patch's centre g[2, 2] = 1 lands at (y=2, x=3).
    heatmap = pose_to_heatmap(np.array([[3.0, 2.0], [1.0, 1.0], [-10.0, -10.0]]), (6, 6), (6, 6))
    assert heatmap.shape == (6, 6, 4)
    assert heatmap[2, 3, 1] == 1 and heatmap[..., 1].max() == 1
    # Joint (1, 1): corner int(-0.5) = 0 (truncation toward zero), so the peak is at (2, 2), not (1, 1).
    assert heatmap[2, 2, 2] == 1 and heatmap[1, 1, 2] < 1
    # Joint (-10, -10): entirely outside, nothing drawn.
    assert not heatmap[..., 3].any()
    # Background = 1 exactly where every joint channel is 0.
    np.testing.assert_array_equal(heatmap[..., 0], (heatmap[..., 1:].sum(-1) == 0).astype(np.float32))


def test_keypoints_from_heatmaps_by_hand():
    heat = np.zeros((1, 2, 4, 3), np.float32)
    heat[0, 0, 1, 1] = 3  # joint 0: (y=0, x=1) weight 3
    heat[0, 1, 3, 1] = 1  # and (y=1, x=3) weight 1
    coords, visible = heatmap_to_pose(heat, (4, 8), topk=2)
    # Weights 0.75 / 0.25: x = 0.75 * 1 + 0.25 * 3 = 1.5, y = 0.25; scaled by W0/w = 2, H0/h = 2 -> (3, 0.5).
    np.testing.assert_allclose(coords[0, 0], [3.0, 0.5])
    # Joint 1 has an all-zero channel: (-1, -1), invisible.
    np.testing.assert_array_equal(coords[0, 1], [-1, -1])
    np.testing.assert_array_equal(visible, [[True, False]])


def test_bad_inputs_are_refused_clearly():
    feats, heatmap = _random_inputs()
    with pytest.raises(ValueError, match="MooG's tokens are off the grid"):
        label_propagation(torch.randn(4, 16, 8), heatmap)
    with pytest.raises(ValueError, match=r"\(T, h, w, C\)"):
        label_propagation(feats[None], heatmap)
    with pytest.raises(ValueError, match="heatmap must be"):
        label_propagation(feats, heatmap[:-1])
    with pytest.raises(TypeError, match="floating point"):
        label_propagation(feats.to(torch.int64), heatmap)
    bad = feats.clone()
    bad[1, 2, 3, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        label_propagation(bad, heatmap)
    with pytest.raises(ValueError, match="NaN"):
        label_propagation(feats, torch.full_like(heatmap, float("nan")))
    with pytest.raises(ValueError, match="topk"):
        label_propagation(feats, heatmap, n_context=1, topk=10**6)
    with pytest.raises(ValueError, match="norm_mask"):
        label_propagation(feats, heatmap, norm_mask=True)
    with pytest.raises(TypeError, match="integer label map"):
        mask_to_heatmap(np.zeros((4, 4), np.float32), (2, 2), (4, 4))
    with pytest.raises(ValueError, match=r"\(K, 2\)"):
        pose_to_heatmap(np.zeros((3, 3)), (4, 4), (8, 8))
    with pytest.raises(ValueError, match="L = 2"):
        heatmap_to_mask(np.zeros((1, 2, 2, 3), np.float32), np.array([0, 1]), (4, 4), (4, 4))


def test_rvm_features_propagate_end_to_end():
    # Any backbone with a grid: a tiny random RVM's patch features at a non-square, non-default size.
    import copy

    from fourd_hub import RVMConfig, RVMModel
    from fourd_hub.models.rvm.configuration_rvm import RVM_DEBUG

    torch.manual_seed(0)
    model = RVMModel(RVMConfig(**copy.deepcopy(RVM_DEBUG))).eval()
    with torch.no_grad():
        feats = normalize_features(model(torch.rand(1, 3, 3, 48, 80)).patch_features[0])
    mask = np.zeros((40, 70), np.uint8)
    mask[10:20, 10:30] = 1
    mask[25:35, 40:60] = 2
    heatmap, labels = mask_to_heatmap(mask, tuple(feats.shape[1:3]), (48, 80))
    masks = heatmap_to_mask(label_propagation(feats, heatmap), labels, (48, 80), mask.shape)
    assert masks.shape == (3, 40, 70) and masks.dtype == np.int32
    assert set(np.unique(masks)) <= {0, 1, 2}
