"""The video-object-segmentation and keypoint-tracking pipelines (label propagation) end to end.

Tiny random RVM and 4DS models (the families' debug configs) on small array videos. Each pipeline
result is checked against the protocol of rvm.md 6.1 - 6.4 written out here: frames resized with
PIL's Lanczos directly, features of the whole selection in one model call (RVM; 4DS: its
windows), ``label_propagation`` over all frames at once and the protocol's post-processing; so the
plumbing (chunked features with the state carried, frame-by-frame streaming, sizes, saving) is
what is tested. The propagation itself is parity-tested in test_label_propagation.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fourd_hub import pipeline
from fourd_hub.label_propagation import (
    heatmap_to_mask,
    heatmap_to_pose,
    label_propagation,
    mask_to_heatmap,
    normalize_features,
    pose_to_heatmap,
)

T, H0, W0 = 7, 36, 44
SIZE = (32, 48)  # the processing size: a 4 x 6 grid for the debug models' 8 x 8 patches


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from fourd_hub import FourDSModel, MooGModel, RVMModel
    from fourd_hub.models.fourds.configuration_fourds import debug_config as fourds_debug
    from fourd_hub.models.moog.configuration_moog import debug_config as moog_debug
    from fourd_hub.models.rvm.configuration_rvm import debug_config as rvm_debug

    root = tmp_path_factory.mktemp("lp-models")
    torch.manual_seed(0)
    built = {"rvm": RVMModel(rvm_debug()).eval(), "fourds": FourDSModel(fourds_debug()).eval(), "moog": MooGModel(moog_debug()).eval()}
    for name, model in built.items():
        model.save_pretrained(root / name)
    return {name: (model, root / name) for name, model in built.items()}


@pytest.fixture(scope="module")
def video() -> np.ndarray:
    # Smooth moving blobs (not noise), so that features and labels vary smoothly.
    yy, xx = np.mgrid[:H0, :W0]
    frames = []
    for t in range(T):
        r = 127 + 120 * np.sin((xx + 2 * t) / 5.0)
        g = 127 + 120 * np.cos((yy - t) / 4.0)
        b = 255.0 * (((xx - 10 - 2 * t) ** 2 + (yy - 18) ** 2) < 64)
        frames.append(np.stack([r, g, b], -1))
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def first_mask() -> np.ndarray:
    mask = np.zeros((H0, W0), np.uint8)
    mask[10:26, 2:18] = 1
    mask[4:14, 26:40] = 7
    return mask


def _lanczos(video: np.ndarray, size) -> torch.Tensor:
    """rvm.md 6.1 by hand: PIL Lanczos per uint8 frame, / 255, as (1, T, 3, h, w)."""
    frames = np.stack([np.asarray(Image.fromarray(f).resize((size[1], size[0]), Image.LANCZOS)) for f in video])
    return torch.from_numpy(frames).float().div(255).permute(0, 3, 1, 2)[None]


def _protocol_features(name: str, model, video: np.ndarray, size) -> torch.Tensor:
    clip = _lanczos(video, size)
    with torch.no_grad():
        if name == "rvm":  # the whole selection in one call: what streaming must reproduce
            return normalize_features(model(clip).patch_features[0])
        # 4DS: the model's 4-frame windows, the last shifted back to end on the last frame (frames 3..6 keep 4..6).
        first, _ = model.frame_features(clip[:, 0:4])
        last, _ = model.frame_features(clip[:, 3:7])
        return normalize_features(torch.cat([first[0], last[0, 1:]]))


@pytest.mark.parametrize("name", ["rvm", "fourds"])
def test_segmentation_is_the_protocol(models, video, first_mask, name):
    model, directory = models[name]
    result = pipeline("video-object-segmentation", model=directory, progress=False)(video, mask=first_mask, size=SIZE)
    feats = _protocol_features(name, model, video, SIZE)
    heatmap, labels = mask_to_heatmap(first_mask, (4, 6), SIZE)
    expected = heatmap_to_mask(label_propagation(feats, heatmap), labels, SIZE, (H0, W0))
    assert result.masks.shape == (T, H0, W0) and result.masks.dtype == np.uint8
    np.testing.assert_array_equal(result.masks, expected)
    np.testing.assert_array_equal(result.labels, [0, 1, 7])
    assert result.palette.shape == (256, 3) and result.palette[1].tolist() == [128, 0, 0]  # DAVIS palette without a PNG
    np.testing.assert_array_equal(result.frame_indices, np.arange(T))


@pytest.mark.parametrize("name", ["rvm", "fourds"])
def test_keypoints_are_the_protocol(models, video, name):
    model, directory = models[name]
    points = np.array([[8.0, 20.0], [30.5, 9.0], [43.0, 35.0]])
    result = pipeline("keypoint-tracking", model=directory, progress=False)(video, keypoints=points, size=SIZE)
    feats = _protocol_features(name, model, video, SIZE)
    expected, visible = heatmap_to_pose(label_propagation(feats, pose_to_heatmap(points, (4, 6), (H0, W0))), (H0, W0), topk=5)
    assert result.keypoints.shape == (T, 3, 2) and result.keypoints.dtype == np.float32
    np.testing.assert_allclose(result.keypoints, expected, atol=1e-4)
    np.testing.assert_array_equal(result.visible, visible)
    np.testing.assert_array_equal(result.query_keypoints, points.astype(np.float32))


def test_features_stream_chunk_by_chunk_and_each_frame_is_propagated_at_once(models, video, first_mask, monkeypatch):
    from fourd_hub import label_propagation as lp

    model, _ = models["rvm"]
    events = []
    features, step = type(model).frame_features, lp.LabelPropagator.step

    def logged_features(self, clips, initial_state=None):
        events.append(("F", clips.shape[1]))
        return features(self, clips, initial_state)

    def logged_step(self, frame_features):
        events.append("S")
        return step(self, frame_features)

    monkeypatch.setattr(type(model), "frame_features", logged_features)
    monkeypatch.setattr(lp.LabelPropagator, "step", logged_step)
    pipeline("video-object-segmentation", model=model, progress=False)(video, mask=first_mask, size=SIZE)
    # The debug RVM's window is 4 frames: chunks of 4 and 3, each frame propagated before the next chunk runs.
    assert events == [("F", 4), "S", "S", "S", "S", ("F", 3), "S", "S", "S"]


def test_frame_selection_and_the_default_size(models, video, first_mask):
    from fourd_hub.pipelines import default_processing_size

    # Short side 480, the other by the aspect ratio, rounded to the patch: DAVIS 854x480 -> 848x480 (53 x 16).
    assert default_processing_size((480, 854), 480, (16, 16)) == (480, 848)
    assert default_processing_size((240, 320), 320, (16, 16)) == (320, 432)  # 426.7 -> 27 patches
    seg = pipeline("video-object-segmentation", model=models["rvm"][0], progress=False)
    result = seg(video, mask=first_mask, stride=2)  # the mask is the first *selected* frame's
    np.testing.assert_array_equal(result.frame_indices, [0, 2, 4, 6])
    assert result.masks.shape == (4, H0, W0)


def test_a_palette_png_keeps_its_palette_and_saves_as_palette_pngs(models, video, first_mask, tmp_path):
    palette = np.zeros((256, 3), np.uint8)
    palette[1], palette[7] = (10, 200, 30), (250, 5, 5)
    image = Image.fromarray(first_mask, mode="P")
    image.putpalette(palette.reshape(-1).tolist())
    image.save(tmp_path / "00000.png")
    result = pipeline("video-object-segmentation", model=models["rvm"][1], progress=False)(video, mask=tmp_path / "00000.png", size=SIZE)
    np.testing.assert_array_equal(result.palette, palette)
    out = result.save(tmp_path / "masks")
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:05d}.png" for i in range(T)]
    with Image.open(out / "frame_00003.png") as saved:
        assert saved.mode == "P"
        np.testing.assert_array_equal(np.asarray(saved), result.masks[3])
        np.testing.assert_array_equal(np.asarray(saved.getpalette()[:768], np.uint8).reshape(256, 3), palette)
    with np.load(result.save(tmp_path / "masks.npz"), allow_pickle=False) as arrays:
        np.testing.assert_array_equal(arrays["masks"], result.masks)
        np.testing.assert_array_equal(arrays["labels"], [0, 1, 7])
    # The overlay: object pixels blended half with their colour, background untouched.
    frames = list(result.render(frames=iter(video)))
    t, (i, j) = 0, np.argwhere(result.masks[0] == 7)[0]
    expected = np.round(0.5 * video[t, i, j].astype(float) + 0.5 * palette[7]).astype(np.uint8)
    np.testing.assert_array_equal(frames[t][i, j], expected)
    background = result.masks[0] == 0
    np.testing.assert_array_equal(frames[0][background], video[0][background])
    with pytest.raises(ValueError, match="arrays"):
        result.save(tmp_path / "masks.json")
    assert not (tmp_path / "masks.json").exists()


def test_keypoints_save_as_json_with_the_invisible_convention(models, video, tmp_path):
    result = pipeline("keypoint-tracking", model=models["fourds"][0], progress=False)(video, keypoints=[(8, 20), (30.5, 9)], size=SIZE)
    saved = json.loads(result.save(tmp_path / "kp.json").read_text())
    assert np.array(saved["keypoints"]).shape == (T, 2, 2) and np.array(saved["visible"]).shape == (T, 2)
    assert saved["query_keypoints"] == [[8.0, 20.0], [30.5, 9.0]]
    assert "-1" in saved["invisible"]
    frames = list(result.render(frames=iter(video)))
    assert len(frames) == T and frames[0].shape == (H0, W0, 3)


def test_keypoints_outside_the_frame_need_allow_outside(models, video):
    kp = pipeline("keypoint-tracking", model=models["rvm"][0], progress=False)
    with pytest.raises(ValueError, match=r"keypoints 1: \(50, 3\) are outside the 44x36 frame.*allow_outside=True"):
        kp(video, keypoints=[(8, 20), (50, 3)], size=SIZE)
    # JHMDB keeps them: one far outside the grid gets no heatmap and is never visible.
    result = kp(video, keypoints=[(8, 20), (400, 3)], size=SIZE, allow_outside=True)
    assert not result.visible[:, 1].any() and (result.keypoints[:, 1] == -1).all()
    assert result.visible[0, 0]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"mask": np.zeros((H0, W0 + 1), np.uint8)}, ValueError, r"the mask is 45x36 \(W x H\) but the video's frames are 44x36"),
        ({"mask": np.full((H0, W0), 300, np.int32)}, ValueError, "at most 255 objects"),
        ({"mask": np.zeros((H0, W0), np.float32)}, TypeError, "integer object labels"),
        ({"mask": -np.ones((H0, W0), np.int64)}, ValueError, "negative labels"),
        ({"mask": np.zeros((H0, W0, 1), np.uint8)}, ValueError, r"\(H, W\) label map"),
        ({"mask": Image.new("RGB", (W0, H0))}, ValueError, "mode 'RGB'"),
        ({"mask": "missing.png"}, FileNotFoundError, "does not exist"),
        ({}, ValueError, "pass mask="),
        ({"mask": np.zeros((H0, W0), np.uint8), "size": (30, 48)}, ValueError, "not a multiple of the model's 8x8 patch; use e.g. 32x48"),
        ({"mask": np.zeros((H0, W0), np.uint8), "size": "big"}, ValueError, "HxW"),
        ({"mask": np.zeros((H0, W0), np.uint8), "topk": 0}, ValueError, "topk"),
        ({"mask": np.zeros((H0, W0), np.uint8), "topk": 10**6}, ValueError, r"more than the 504 candidates"),
        ({"mask": np.zeros((H0, W0), np.uint8), "temperature": -1}, ValueError, "temperature"),
        ({"mask": np.zeros((H0, W0), np.uint8), "queries": 1}, TypeError, "unexpected keyword argument 'queries'"),
    ],
)
def test_bad_segmentation_inputs_are_clear_errors(models, video, kwargs, error, message):
    seg = pipeline("video-object-segmentation", model=models["rvm"][0], progress=False)
    with pytest.raises(error, match=message):
        seg(video, **{"size": SIZE, **kwargs})


def test_a_corrupt_mask_file_is_a_clear_error(models, video, tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    seg = pipeline("video-object-segmentation", model=models["rvm"][0], progress=False)
    for name in ("empty.png", "bad.png"):
        with pytest.raises(ValueError, match=f"cannot read the mask .*{name}"):
            seg(video, mask=tmp_path / name, size=SIZE)


def test_moog_is_refused_because_its_tokens_are_off_the_grid(models):
    model, directory = models["moog"]
    for task in ("video-object-segmentation", "keypoint-tracking"):
        for source in (model, directory):
            with pytest.raises(ValueError, match="MooG's features are \\(T, N, D\\): its tokens are off the grid"):
                pipeline(task, model=source, progress=False)


def test_transformers_pipeline_runs_them(models, video, first_mask):
    import transformers

    seg = transformers.pipeline("video-object-segmentation", model=str(models["rvm"][1]))
    assert seg(video, mask=first_mask, size=SIZE).masks.shape == (T, H0, W0)


def test_lanczos_resample_is_pil_lanczos_over_255(video):
    from fourd_hub.processing import FrameGeometry, lanczos_resize

    expected = np.stack([np.asarray(Image.fromarray(f).resize((48, 32), Image.LANCZOS)) for f in video])
    np.testing.assert_array_equal(lanczos_resize(video, (32, 48)).numpy(), expected)
    model = FrameGeometry.create((H0, W0), (32, 48), "resize").frames_to_model(torch.from_numpy(video), resample="lanczos")
    # uint8 / 255 in float32 equals mediapy's float64 division rounded to float32 for every value.
    np.testing.assert_array_equal(model.permute(0, 2, 3, 1).numpy(), (expected / 255.0).astype(np.float32))
    with pytest.raises(ValueError, match="resample"):
        FrameGeometry.create((H0, W0), (32, 48), "resize").frames_to_model(torch.from_numpy(video), resample="nearest")


def test_davis_palette_and_segmentation_overlay_by_hand():
    from fourd_hub.visualization import davis_palette, render_segmentation

    palette = davis_palette()
    # Label bits go to R, G, B from the most significant bit down: 1 -> R128, 2 -> G128, 4 -> B128, 8 -> R64, 9 -> R192.
    assert palette[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert palette[8].tolist() == [64, 0, 0] and palette[9].tolist() == [192, 0, 0] and palette[255].tolist() == [224, 224, 192]
    frame = np.full((2, 2, 3), 100, np.uint8)
    mask = np.array([[0, 1], [2, 0]])
    out = next(render_segmentation([frame], [mask], alpha=0.25))
    assert out[0, 0].tolist() == [100, 100, 100]  # background untouched
    assert out[0, 1].tolist() == [107, 75, 75]  # 0.75 * 100 + 0.25 * (128, 0, 0)
    assert out[1, 0].tolist() == [75, 107, 75]
    with pytest.raises(ValueError, match="alpha"):
        render_segmentation([frame], [mask], alpha=2)
    with pytest.raises(ValueError, match="label map"):
        next(render_segmentation([frame], [np.zeros((3, 2), int)]))
