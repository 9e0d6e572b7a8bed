"""Pipeline results on their own (fourd_hub/results.py): formats, atomic saving, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fourd_hub.processing import FrameGeometry
from fourd_hub.results import (
    BoxTrackingResult,
    CameraPoseResult,
    DepthEstimationResult,
    FeatureExtractionResult,
    PointTrackingResult,
    VideoReconstructionResult,
)


def _tracks() -> PointTrackingResult:
    tracks = np.stack([np.float32([[1.0 + t, 2.0], [10.0, 5.0 + t]]) for t in range(5)])
    visible = np.ones((5, 2), dtype=bool)
    visible[3, 1] = False
    return PointTrackingResult(
        task="point-tracking", frame_indices=np.arange(0, 10, 2), fps=12.5, image_size=(20, 30),
        tracks=tracks, visible=visible, query_points=np.float32([[0, 1, 2], [0, 10, 5]]),
        _source=np.zeros((10, 20, 30, 3), dtype=np.uint8),
    )


def test_json_and_npz_hold_the_same_tracks(tmp_path):
    result = _tracks()
    saved = json.loads(result.save(tmp_path / "t.json").read_text())
    assert saved["frame_indices"] == [0, 2, 4, 6, 8] and saved["fps"] == 12.5
    assert saved["image_size"] == {"height": 20, "width": 30}
    np.testing.assert_allclose(saved["tracks"], result.tracks)
    assert saved["visible"][3] == [True, False]
    with np.load(result.save(tmp_path / "t.npz"), allow_pickle=False) as arrays:
        np.testing.assert_array_equal(arrays["tracks"], result.tracks)
        np.testing.assert_array_equal(arrays["visible"], result.visible)
        assert set(arrays.files) == {"frame_indices", "fps", "image_size", "query_points", "tracks", "visible"}


def test_rendering_uses_only_the_processed_frames(tmp_path):
    frames = list(_tracks().render())
    assert len(frames) == 5 and frames[0].shape == (20, 30, 3)
    assert len(list(_tracks().save(tmp_path / "png").glob("*.png"))) == 5


def test_unknown_formats_and_existing_files_are_refused(tmp_path):
    result = _tracks()
    with pytest.raises(ValueError, match=r"\.npz"):
        result.save(tmp_path / "t.txt")
    (tmp_path / "t.json").write_text("old")
    with pytest.raises(FileExistsError, match="overwrite"):
        result.save(tmp_path / "t.json", overwrite=False)
    assert (tmp_path / "t.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]


def test_a_failed_save_leaves_nothing_behind(tmp_path, monkeypatch):
    result = _tracks()

    def broken_savez(handle, **arrays):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        result.save(tmp_path / "t.npz")
    assert list(tmp_path.iterdir()) == []

    def broken_render(frames=None):
        yield np.zeros((20, 30, 3), dtype=np.uint8)
        raise RuntimeError("render failed")

    monkeypatch.setattr(result, "render", broken_render)
    with pytest.raises(RuntimeError, match="render failed"):
        result.save(tmp_path / "t.mp4")
    assert list(tmp_path.iterdir()) == []


def test_depth_is_resampled_to_the_input_on_access():
    geometry = FrameGeometry.create((20, 30), (8, 8), "resize")
    model_depth = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    result = DepthEstimationResult(
        task="depth-estimation", frame_indices=np.arange(3), fps=10.0, image_size=(20, 30),
        model_depth=model_depth, geometry=geometry,
    )
    np.testing.assert_array_equal(result.depth, geometry.dense_to_input(torch.from_numpy(model_depth)).numpy())
    assert len(list(result.iter_depth())) == 3
    with pytest.raises(ValueError, match="does not know its input video"):
        next(result.render())


def test_features_are_arrays_only(tmp_path):
    result = FeatureExtractionResult(
        task="video-feature-extraction", frame_indices=np.arange(2), fps=1.0, image_size=(4, 4),
        features=np.zeros((2, 3, 5), np.float32), layout="(T, N, D)",
    )
    with pytest.raises(ValueError, match="npz"):
        result.save(tmp_path / "f.json")
    with pytest.raises(ValueError, match="no visualisation"):
        result.save(tmp_path / "f.mp4")
    assert list(tmp_path.iterdir()) == []


def test_png_directory_is_replaced_with_overwrite(tmp_path):
    result = _tracks()
    out = result.save(tmp_path / "frames")
    assert len(list(out.glob("*.png"))) == 5
    with pytest.raises(ValueError, match="frames: the directory is not empty"):
        result.save(out, overwrite=False)
    (out / "frame_00009.png").write_bytes(b"stale")  # an earlier, longer output
    result.save(out)  # overwrite=True (the default) replaces the whole directory
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:05d}.png" for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_outputs_of_the_wrong_kind_or_links_are_refused_before_writing(tmp_path, monkeypatch):
    from fourd_hub.results import check_output_path

    result = _tracks()
    monkeypatch.setattr(type(result), "render", lambda self, frames=None: pytest.fail("rendered before the check"))
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(IsADirectoryError, match=r"dir\.json: it is an existing directory"):
        result.save(tmp_path / "dir.json")
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ValueError, match="file: a file with that name exists"):
        result.save(tmp_path / "file", overwrite=True)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "link.npz").symlink_to(tmp_path / "file")
    for name in ("link", "link.npz"):
        with pytest.raises(FileExistsError, match=rf"{name}: it is a symbolic link"):
            check_output_path(tmp_path / name, overwrite=True)
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"mixed: it holds files that are not PNG frames \(notes\.txt\)"):
        result.save(tmp_path / "mixed", overwrite=True)
    assert (tmp_path / "file").read_text() == "mine" and (tmp_path / "mixed" / "notes.txt").exists()
    assert not list((tmp_path / "real").iterdir()) and (tmp_path / "link").is_symlink()


def _depth(mode: str = "resize") -> DepthEstimationResult:
    geometry = FrameGeometry.create((20, 30), (8, 8), mode)
    model_depth = 1 + np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    return DepthEstimationResult(
        task="depth-estimation", frame_indices=np.arange(0, 6, 2), fps=10.0, image_size=(20, 30),
        model_depth=model_depth, geometry=geometry,
    )


def _every_result() -> list:
    common = dict(frame_indices=np.arange(2), fps=5.0, image_size=(4, 6))
    geometry = FrameGeometry.create((4, 6), (4, 4), "resize")
    poses = dict(poses=np.stack([np.eye(4)] * 2), pose_frames=np.arange(2), relative_poses=np.eye(4)[None])
    return [
        _depth(),
        _tracks(),
        BoxTrackingResult(
            task="box-tracking", **common, boxes=np.zeros((2, 1, 4), np.float32), query_boxes=np.zeros((1, 5), np.float32)
        ),
        CameraPoseResult(task="camera-pose", **common, **poses),
        FeatureExtractionResult(
            task="video-feature-extraction", **common, features=np.zeros((2, 3, 5), np.float32), layout="(T, N, D)"
        ),
        VideoReconstructionResult(
            task="video-reconstruction", **common, model_frames=np.zeros((2, 4, 4, 3), np.float32), geometry=geometry
        ),
    ]


@pytest.mark.parametrize("result", _every_result(), ids=lambda result: type(result).__name__)
def test_results_are_read_by_field_name_like_model_outputs(result):
    assert result.keys()[-4:] == ("task", "frame_indices", "fps", "image_size")
    for name in result.keys():
        assert result[name] is getattr(result, name) and name in result
    assert list(result) == list(result.keys()) and dict(result).keys() == set(result.keys())
    assert "geometry" not in result and "_source" not in result and 0 not in result
    with pytest.raises(KeyError, match=rf"'nope' is not a field of {type(result).__name__}; available: .*frame_indices"):
        result["nope"]
    with pytest.raises(KeyError, match="by field name, not by position"):
        result[0]
    assert result.get("nope", 7) == 7 and result.get("fps") is result.fps


@pytest.mark.parametrize("result", _every_result(), ids=lambda result: type(result).__name__)
def test_repr_summarises_shapes_without_computing(result):
    text = repr(result)
    assert text.startswith(f"{type(result).__name__}(") and "array(" not in text and "\n" not in text
    assert "frame_indices=int64[" in text and "image_size=(" in text
    assert "depth" not in result.__dict__ and "frames" not in result.__dict__  # nothing resampled for repr


def test_repr_examples():
    assert repr(_depth()) == (
        "DepthEstimationResult(depth=float32[3, 20, 30], model_depth=float32[3, 8, 8], frame_indices=int64[3], "
        "fps=10.0, image_size=(20, 30))"
    )
    assert repr(_tracks()) == (
        "PointTrackingResult(tracks=float32[5, 2, 2], visible=bool[5, 2], query_points=float32[2, 3], "
        "frame_indices=int64[5], fps=12.5, image_size=(20, 30))"
    )


def test_depth_offers_what_transformers_depth_pipeline_users_know():
    result = _depth()
    assert result["depth"] is result.depth and result.depth.shape == (3, 20, 30)
    predicted = result["predicted_depth"]
    assert isinstance(predicted, torch.Tensor) and predicted.shape == (3, 20, 30) and predicted.dtype == torch.float32
    assert np.shares_memory(predicted.numpy(), result.depth)  # the same data, not a copy
    assert "predicted_depth=" not in repr(result)  # an alias of depth
    images = result.depth_images
    assert len(images) == 3 and all(image.mode == "L" and image.size == (30, 20) for image in images)
    for t, image in enumerate(images):  # transformers' DepthEstimationPipeline.postprocess, per frame
        depth = result.depth[t]
        expected = ((depth - depth.min()) / (depth.max() - depth.min()) * 255).astype("uint8")
        np.testing.assert_array_equal(np.asarray(image), expected)
    wide = np.asarray(result.depth_image(1, mode="I;16"))
    assert result.depth_image(1, mode="I;16").mode == "I;16" and wide.max() == 65535 and wide.min() == 0
    # Without the full-resolution depth kept, one frame is resampled on its own, to the same image.
    np.testing.assert_array_equal(np.asarray(_depth().depth_image(2)), np.asarray(images[2]))
    with pytest.raises(IndexError, match="out of range for 3 processed frames"):
        result.depth_image(3)
    with pytest.raises(ValueError, match="'L'"):
        result.depth_image(0, mode="RGB")


def test_depth_image_outside_a_centre_crop_is_zero():
    result = _depth("crop")
    assert np.isnan(result.depth).any()
    image = np.asarray(result.depth_image(0))
    assert (image[np.isnan(result.depth[0])] == 0).all() and image.max() == 255


def test_frames_a_track_does_not_cover_are_json_null(tmp_path):
    result = _tracks()
    result.tracks[:2, 1] = np.nan  # backward_tracking=False: no track before its query frame
    text = result.save(tmp_path / "t.json").read_text()
    assert "NaN" not in text
    saved = json.loads(text)
    assert saved["tracks"][0][1] == [None, None] and saved["tracks"][2][1] == [10.0, 7.0]


def test_depth_videos_take_the_colour_bar_option(tmp_path):
    result = _depth()
    result._source = np.zeros((6, 20, 30, 3), dtype=np.uint8)
    plain = next(iter(result.render()))
    with_bar = next(iter(result.render(colorbar=True)))
    assert with_bar.shape[0] == plain.shape[0] and with_bar.shape[1] > plain.shape[1]
    frames = sorted(result.save(tmp_path / "png", colorbar=True).glob("*.png"))
    assert np.asarray(Image.open(frames[0])).shape == with_bar.shape
    with pytest.raises(TypeError, match="colorbar: options of the visualisation"):
        result.save(tmp_path / "d.npz", colorbar=True)
