"""Video processors and frame geometry (fourd_hub/processing.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers.utils import VIDEO_PROCESSOR_NAME

from conftest import tiny_fourds_kwargs
from fourd_hub import FourDSConfig, FourDSVideoProcessor, MooGConfig, MooGVideoProcessor
from fourd_hub.processing import FrameGeometry, load_video_processor, video_processor_for_config

SIZES = [((72, 96), (64, 64)), ((71, 95), (32, 24)), ((480, 270), (224, 224)), ((1080, 1920), (128, 128))]


@pytest.mark.parametrize("mode", ["resize", "crop", "pad"])
@pytest.mark.parametrize("input_size, model_size", SIZES)
def test_pixel_coordinates_round_trip_exactly(mode, input_size, model_size):
    """x stays x: input pixels -> model-normalised -> input pixels is the identity in float32."""
    geometry = FrameGeometry.create(input_size, model_size, mode)
    rng = np.random.default_rng(0)
    height, width = input_size
    points = (rng.random((500, 2)) * [width, height]).astype(np.float32)
    points = np.concatenate([points, np.float32([[0, 0], [width, height], [width / 2, height / 2]])])
    back = geometry.to_input(geometry.to_normalized(points)).astype(np.float32)
    np.testing.assert_array_equal(back, points)
    boxes = np.concatenate([points[:10], points[10:20]], axis=1)
    np.testing.assert_array_equal(geometry.to_input(geometry.to_normalized(boxes)).astype(np.float32), boxes)


def test_resize_mode_normalises_by_the_input_size():
    geometry = FrameGeometry.create((72, 96), (64, 64), "resize")
    np.testing.assert_allclose(geometry.to_normalized(np.array([[48.0, 18.0]])), [[0.5, 0.25]], atol=1e-15)


def test_crop_and_pad_geometry_by_hand():
    crop = FrameGeometry.create((100, 200), (50, 50), "crop")  # shortest side 100 -> 50: resized 50x100, crop x 25..75
    assert crop.resized_size == (50, 100) and crop.offset == (0, 25)
    np.testing.assert_allclose(crop.to_normalized(np.array([[100.0, 50.0]])), [[0.5, 0.5]])  # the centre stays the centre
    np.testing.assert_allclose(crop.visible_region(), (50.0, 0.0, 150.0, 100.0))
    pad = FrameGeometry.create((100, 200), (50, 50), "pad")  # longest side 200 -> 50: resized 25x50, padded 12 top
    assert pad.resized_size == (25, 50) and pad.offset == (-12, 0)
    np.testing.assert_allclose(pad.to_normalized(np.array([[0.0, 0.0]])), [[0.0, 12 / 50]])


def test_frames_to_model_resize_matches_an_independent_resize():
    rng = np.random.default_rng(1)
    frames = torch.from_numpy(rng.integers(0, 256, (2, 72, 96, 3), dtype=np.uint8))
    out = FrameGeometry.create((72, 96), (36, 48), "resize").frames_to_model(frames)
    reference = F.interpolate(frames.permute(0, 3, 1, 2).double(), size=(36, 48), mode="bilinear", antialias=True) / 255
    assert out.shape == (2, 3, 36, 48) and out.dtype == torch.float32
    assert (out.double() - reference).abs().max() < 1.0 / 255  # uint8 kernel rounds to the nearest level


def test_crop_keeps_the_centre_and_pad_fills_the_border():
    frames = np.zeros((1, 100, 200, 3), dtype=np.uint8)
    frames[:, :, 90:110] = 255  # a white vertical band at the centre
    frames[:, :, :10] = 128  # a grey band at the far left, cropped away
    out = FrameGeometry.create((100, 200), (50, 50), "crop").frames_to_model(torch.from_numpy(frames))[0]
    assert out[:, :, 25].min() == 1.0  # centre column white
    assert out.max(dim=0).values[:, :5].max() == 0.0  # the left band is outside the crop
    pad = FrameGeometry.create((100, 200), (50, 50), "pad")
    padded = pad.frames_to_model(torch.from_numpy(frames), pad_value=0.25)[0]
    assert torch.all(padded[:, :12] == 0.25) and torch.all(padded[:, 37:] == 0.25)
    assert padded[:, 12:37, 25].min() == 1.0


def test_dense_to_input_matches_bilinear_upsampling_and_marks_the_crop():
    maps = torch.rand(3, 32, 24)
    geometry = FrameGeometry.create((71, 95), (32, 24), "resize")
    reference = F.interpolate(maps[:, None].double(), size=(71, 95), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(geometry.dense_to_input(maps).double(), reference, atol=1e-6, rtol=0)
    crop = FrameGeometry.create((100, 200), (50, 50), "crop")
    dense = crop.dense_to_input(torch.full((1, 50, 50), 3.0))
    assert dense.shape == (1, 100, 200)
    assert dense[0, :, :50].isnan().all() and dense[0, :, 150:].isnan().all()
    torch.testing.assert_close(dense[0, :, 50:150], torch.full((100, 100), 3.0))
    with pytest.raises(ValueError, match="model size"):
        crop.dense_to_input(torch.zeros(1, 10, 10))


def test_processor_clips_a_video_and_pads_short_ones():
    processor = FourDSVideoProcessor(size={"height": 32, "width": 24}, num_frames=4, temporal_stride=2)
    video = np.random.default_rng(0).integers(0, 256, (7, 40, 30, 3), dtype=np.uint8)
    batch = processor(video)
    assert batch["pixel_values_videos"].shape == (1, 4, 3, 32, 24)
    # Frames 0, 2, 4, 6: the clip's frame 1 is the video's frame 2.
    single = processor.preprocess_frames(video[2:3])[0]
    torch.testing.assert_close(batch["pixel_values_videos"][0, 1], single)
    short = processor(video[:3])  # frames 0, 2, then 2 repeated
    assert short["num_valid_frames"].tolist() == [2]
    torch.testing.assert_close(short["pixel_values_videos"][0, 3], short["pixel_values_videos"][0, 1])
    both = processor([video, video[::-1]])
    assert both["pixel_values_videos"].shape[0] == 2


def test_processor_saves_and_loads_with_the_model(tmp_path):
    processor = MooGVideoProcessor(resize_mode="crop", num_frames=8)
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / VIDEO_PROCESSOR_NAME).read_text())
    assert saved["video_processor_type"] == "MooGVideoProcessor" and saved["resize_mode"] == "crop"
    loaded = load_video_processor(tmp_path)
    assert type(loaded) is MooGVideoProcessor and loaded.to_dict() == processor.to_dict()
    assert MooGVideoProcessor.from_pretrained(tmp_path).to_dict() == processor.to_dict()


def test_processor_defaults_follow_the_model_config(tmp_path):
    fourds = video_processor_for_config(FourDSConfig(**tiny_fourds_kwargs()))
    assert type(fourds) is FourDSVideoProcessor and fourds.model_size == (32, 24) and fourds.num_frames == 4
    moog = video_processor_for_config(MooGConfig.from_preset("ego4d"))
    assert type(moog) is MooGVideoProcessor and moog.model_size == (128, 128) and moog.num_frames == 16
    with pytest.raises(FileNotFoundError, match=VIDEO_PROCESSOR_NAME):
        load_video_processor(tmp_path)


def test_broken_processor_files_are_errors(tmp_path):
    (tmp_path / VIDEO_PROCESSOR_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        load_video_processor(tmp_path)
    (tmp_path / VIDEO_PROCESSOR_NAME).write_text(json.dumps({"video_processor_type": "Other"}))
    with pytest.raises(ValueError, match="video_processor_type"):
        load_video_processor(tmp_path)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(size={"height": 0, "width": 4}), "size"),
        (dict(size={"h": 4}), "size"),
        (dict(num_frames=0), "num_frames"),
        (dict(temporal_stride=0), "temporal_stride"),
        (dict(resize_mode="stretch"), "resize_mode"),
        (dict(resample="nearest"), "resample"),
        (dict(pad_value=2.0), "pad_value"),
    ],
)
def test_processor_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FourDSVideoProcessor(**kwargs)


def test_unknown_processor_settings_are_errors():
    with pytest.raises(TypeError, match="resize_mod"):
        FourDSVideoProcessor(resize_mod="crop")


def test_preprocess_frames_rejects_wrong_inputs():
    processor = FourDSVideoProcessor()
    with pytest.raises(TypeError, match="uint8"):
        processor.preprocess_frames(np.zeros((1, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(n >= 1, H, W, 3\)"):
        processor.preprocess_frames(np.zeros((1, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="frame size"):
        FrameGeometry.create((0, 8), (4, 4), "resize")


def test_meta_device_frames_are_refused_naming_the_device():
    # On the meta device a resize "succeeds" and returns more meta data: refused before, by name.
    processor = FourDSVideoProcessor(size=(16, 16), num_frames=2)
    video = torch.zeros(4, 24, 32, 3, dtype=torch.uint8, device="meta")
    with pytest.raises(ValueError, match="'meta' device"):
        processor.preprocess_frames(video)
    with pytest.raises(ValueError, match="'meta' device"):
        processor(video)
