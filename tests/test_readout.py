"""Readout heads: parity of the tracking heads with the original, depth rearrangement, Procrustes,
losses, config validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fourd_hub.conversion.core import Section, convert_arrays, map_checkpoint
from fourd_hub.conversion.tables import TRACKING_HEAD_RULES
from fourd_hub.readout import (
    AttentionReadout,
    DepthReadoutHead,
    ReadoutConfig,
    TrackingPrediction,
    TrackingReadoutHead,
    masked_depth_loss,
    point_tracking_loss,
    procrustes_to_rotation,
)

from conftest import load_npz, moog_cases, moog_readout_kwargs


def _head_from_case(case: dict, task: str, checkpoint: dict[str, np.ndarray]) -> TrackingReadoutHead:
    config = ReadoutConfig.for_task(task, moog_readout_kwargs(case, task))
    head = TrackingReadoutHead(config, feature_dim=case["token_dim"], num_frames=case["num_frames"])
    mapped = map_checkpoint({k: v.shape for k, v in checkpoint.items()}, [Section("head", "", "", TRACKING_HEAD_RULES)])
    state = {k: torch.from_numpy(v) for k, v in convert_arrays(checkpoint, mapped).items()}
    head.load_state_dict(state, strict=True)
    return head.eval()


@pytest.mark.parity
def test_tracking_heads_match_original_on_reference_features(reference, cases):
    """The MooG fixture's heads read its reference features: a backbone-independent check of the heads."""
    assert moog_cases(cases)
    for name, case in moog_cases(cases).items():
        expected = load_npz(reference / f"{name}_reference.npz")
        features = torch.from_numpy(expected["features"])
        for task in ("points", "boxes"):
            head = _head_from_case(case, task, load_npz(reference / f"{name}_{task}_checkpoint.npz"))
            with torch.no_grad():
                prediction = head(features, torch.from_numpy(expected[f"{task}_queries"]))
            error = np.abs(prediction.values.numpy() - expected[f"{task}_values"]).max()
            assert error <= 1e-4, f"{name} {task} values: {error:.2e}"
            if task == "points":
                for key in ("logits_visible", "logits_certainty"):
                    error = np.abs(getattr(prediction, key).numpy() - expected[f"points_{key}"]).max()
                    assert error <= 1e-4, f"{name} {key}: {error:.2e}"
                np.testing.assert_array_equal(prediction.visible.numpy(), expected["points_visible"][..., 0] > 0.5)


def test_depth_head_places_each_patch_value_at_its_pixel(monkeypatch):
    config = ReadoutConfig.for_task("depth", dict(num_params=8, num_heads=2, decoding_patch_size=(2, 4, 2)))
    head = DepthReadoutHead(config, feature_dim=6, num_frames=4, image_size=(8, 6))
    nt, nh, nw = head.grid
    assert (nt, nh, nw) == (2, 2, 3)

    # Query q = (it, ih, iw) raster; output channel c = (pt, ph, pw) raster. Encode both in the value.
    def fake_readout(features, queries=None):
        q = torch.arange(nt * nh * nw).view(1, -1, 1).float()
        c = torch.arange(16).view(1, 1, -1).float()
        return q * 100 + c

    monkeypatch.setattr(head.readout, "forward", fake_readout)
    depth = head(torch.zeros(1, 4, 5, 6))
    assert depth.shape == (1, 4, 8, 6)
    for t in range(4):
        for y in range(8):
            for x in range(6):
                q = (t // 2) * nh * nw + (y // 4) * nw + (x // 2)
                c = (t % 2) * 8 + (y % 4) * 2 + (x % 2)
                assert depth[0, t, y, x].item() == q * 100 + c


def test_attention_readout_checks_its_inputs():
    learned = AttentionReadout(4, num_frames=3, num_params=8, num_heads=2, num_outputs=5, num_queries=2)
    assert learned(torch.randn(2, 3, 7, 4)).shape == (2, 2, 5)
    with pytest.raises(ValueError, match="built for 3 frames"):
        learned(torch.randn(2, 4, 7, 4))
    with pytest.raises(ValueError, match=r"\(B, T, N, C\)"):
        learned(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="do not pass queries"):
        learned(torch.randn(2, 3, 7, 4), torch.randn(2, 1, 8))
    given = AttentionReadout(4, num_frames=3, num_params=8, num_heads=2, num_outputs=5, query_dim=6)
    with pytest.raises(ValueError, match="needs queries"):
        given(torch.randn(2, 3, 7, 4))
    with pytest.raises(ValueError, match="exactly one"):
        AttentionReadout(4, 3, 8, 2, 5)


def test_tracking_head_temporal_tiling_order(monkeypatch):
    """Copy k of a query predicts frames k*t .. k*t + t - 1 (the original 'B (Q k) (t c) -> B (k t) Q c')."""
    config = ReadoutConfig.for_task("points", dict(num_params=8, num_heads=2, temporal_tile_size=2, query_mlp_sizes=(8, 8)))
    head = TrackingReadoutHead(config, feature_dim=4, num_frames=4)
    num_queries, tile, frames_per_query, channels = 3, 2, 2, 4

    def fake(features, queries):  # value = 1000 q + 100 k + 10 t + c
        q = torch.arange(num_queries).repeat_interleave(tile).view(1, -1, 1)
        k = torch.arange(tile).repeat(num_queries).view(1, -1, 1)
        tc = torch.arange(frames_per_query * channels).view(1, 1, -1)
        t, c = tc // channels, tc % channels
        return (1000 * q + 100 * k + 10 * t + c).float()

    monkeypatch.setattr(head.readout, "forward", fake)
    prediction = head(torch.zeros(1, 4, 5, 4), torch.rand(1, num_queries, 2))
    for frame in range(4):
        for q in range(num_queries):
            k, t = divmod(frame, frames_per_query)
            assert prediction.logits_visible[0, frame, q, 0].item() == 1000 * q + 100 * k + 10 * t + 2
            assert prediction.logits_certainty[0, frame, q, 0].item() == 1000 * q + 100 * k + 10 * t + 3


def test_procrustes():
    rotation = torch.linalg.matrix_exp(torch.tensor([[0.0, -0.3, 0.2], [0.3, 0.0, -0.1], [-0.2, 0.1, 0.0]]))
    torch.testing.assert_close(procrustes_to_rotation(rotation), rotation, atol=1e-5, rtol=1e-5)
    torch.manual_seed(0)
    projected = procrustes_to_rotation(torch.randn(5, 3, 3))
    torch.testing.assert_close(projected @ projected.transpose(1, 2), torch.eye(3).expand(5, 3, 3), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.linalg.det(projected), torch.ones(5), atol=1e-5, rtol=1e-5)
    reflection = torch.diag(torch.tensor([1.0, 1.0, -1.0]))
    assert torch.linalg.det(procrustes_to_rotation(reflection)).item() == pytest.approx(1.0)


def test_masked_depth_loss_ignores_invalid_targets():
    prediction = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    target = torch.tensor([[[[2.0, 0.0], [20.0, 5.0]]]])  # 0 and 20 m are outside (0.001, 10)
    loss = masked_depth_loss(prediction, target, (0.001, 10.0))
    assert loss.item() == pytest.approx(((1 - 2) ** 2 + (4 - 5) ** 2) / 2)
    assert masked_depth_loss(prediction, torch.zeros_like(target), (0.001, 10.0)).item() == 0.0
    with pytest.raises(ValueError, match="shape"):
        masked_depth_loss(prediction, target[..., :1], (0.001, 10.0))


def test_point_tracking_loss_terms():
    config = ReadoutConfig.for_task("points", {})
    values = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[0.5, 0.0], [0.0, 0.0]]]])
    visible = torch.tensor([[[True, False]]])
    zeros = torch.zeros(1, 1, 2, 1)
    prediction = TrackingPrediction(values=values, logits_visible=zeros, logits_certainty=zeros)
    loss = point_tracking_loss(prediction, target, visible, config)
    delta = config.huber_delta
    huber = delta * (0.5 - 0.5 * delta)  # |error| = 0.5 > delta: linear branch, only the visible point counts
    bce_at_zero_logit = math.log(2)
    expected = 100 * huber + 0.1 * bce_at_zero_logit + 0.1 * bce_at_zero_logit
    assert loss.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "task, overrides, message",
    [
        ("depth", dict(num_params=10, num_heads=3), "multiple of num_heads"),
        ("points", dict(coordinate_order="xyz"), "coordinate_order"),
        ("boxes", dict(coordinate_order="xy"), "coordinate_order"),
        ("classification", {}, "num_classes"),
        ("depth", dict(decoding_patch_size=(2, 8)), "decoding_patch_size"),
        ("depth", dict(wrong_field=1), "unknown readout config fields"),
        ("depth", dict(task="points"), "for task 'points'"),
        ("segmentation", {}, "unknown readout task"),
    ],
)
def test_readout_config_validation(task, overrides, message):
    with pytest.raises(ValueError, match=message):
        ReadoutConfig.for_task(task, overrides)
