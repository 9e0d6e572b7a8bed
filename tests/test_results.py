"""Pipeline results on their own (fourd_hub/results.py): formats, atomic saving, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fourd_hub.processing import FrameGeometry
from fourd_hub.results import DepthEstimationResult, FeatureExtractionResult, PointTrackingResult


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
