"""End to end: real encoded video files through ``fourd_hub.pipeline`` and ``transformers.pipeline``.

Models are converted from the reference checkpoints (4DS depth, MooG backbone and heads) or built
from tiny configs with random weights; the video is written with PyAV (moving textured shapes).
Each task is checked against a direct call of the model on the processor's frames, so the
plumbing (windows, chaining, coordinates, resampling) is what is tested.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from conftest import E2E_VIDEO
from fourd_hub import VideoError, open_video, pipeline
from fourd_hub.readout import track_boxes, track_points

pytestmark = pytest.mark.e2e

NUM_FRAMES, HEIGHT, WIDTH, FPS = E2E_VIDEO


def _direct(pipe, frames: np.ndarray) -> torch.Tensor:
    """The processor's clip of these decoded frames, as the pipeline feeds it, with a batch axis."""
    return pipe.video_processor.preprocess_frames(frames)[None]


# ----------------------------------------------------------------------------------------------
# Depth


def test_fourds_depth_windows_match_direct_model_calls(video, models):
    path, frames = video
    pipe = pipeline("depth-estimation", model=models["fourds-depth"], progress=False)
    result = pipe(path)
    assert result.depth.shape == (NUM_FRAMES, HEIGHT, WIDTH) and result.depth.dtype == np.float32
    np.testing.assert_array_equal(result.frame_indices, np.arange(NUM_FRAMES))
    assert result.fps == pytest.approx(FPS) and result.image_size == (HEIGHT, WIDTH)
    geometry = pipe.video_processor.geometry((HEIGHT, WIDTH))
    window = pipe.video_processor.num_frames  # 8 for the reference model: windows 0-7, ..., 24-31, then 29-36
    with torch.no_grad():
        first = pipe.model(_direct(pipe, frames[:window])).predicted_depth[0]
        last = pipe.model(_direct(pipe, frames[-window:])).predicted_depth[0]
    np.testing.assert_allclose(result.depth[:window], geometry.dense_to_input(first).numpy(), atol=1e-5)
    np.testing.assert_allclose(result.depth[32:], geometry.dense_to_input(last[3:]).numpy(), atol=1e-5)
    # One window (frames 29-36 on their own) agrees with the chained run where the windows are the same.
    alone = pipe(path, start=29)
    np.testing.assert_array_equal(alone.frame_indices, np.arange(29, 37))
    np.testing.assert_allclose(alone.depth[3:], result.depth[32:], atol=1e-5)
    assert np.abs(alone.depth[:3] - result.depth[29:32]).max() > 1e-4  # those came from another window
    batched = pipeline("depth-estimation", model=models["fourds-depth"], progress=False, batch_size=3)(path)
    np.testing.assert_allclose(batched.depth, result.depth, atol=1e-5)


def test_depth_result_saves_arrays_and_a_side_by_side_video(video, models, tmp_path):
    path, _ = video
    result = pipeline("depth-estimation", model=models["fourds-depth"], progress=False)(path, stride=2)
    np.testing.assert_array_equal(result.frame_indices, np.arange(0, NUM_FRAMES, 2))
    assert result.fps == pytest.approx(FPS / 2)
    with np.load(result.save(tmp_path / "depth.npz"), allow_pickle=False) as saved:
        np.testing.assert_array_equal(saved["depth"], result.depth)
        np.testing.assert_array_equal(saved["frame_indices"], result.frame_indices)
    with open_video(result.save(tmp_path / "depth.mp4")) as reader:
        assert len(reader) == len(result.frame_indices)
        assert (reader.metadata.height, reader.metadata.width) == (HEIGHT, 2 * WIDTH)
        assert reader.metadata.fps == pytest.approx(FPS / 2, rel=1e-3)
    with pytest.raises(ValueError, match="npz"):
        result.save(tmp_path / "depth.json")
    assert not (tmp_path / "depth.json").exists()


def test_processor_temporal_stride_is_the_default_selection(video, models):
    path, _ = video
    strided = pipeline("depth-estimation", model=models["fourds-depth"], progress=False, temporal_stride=3)
    np.testing.assert_array_equal(strided(path).frame_indices, np.arange(0, NUM_FRAMES, 3))
    np.testing.assert_array_equal(strided(path, stride=1).frame_indices, np.arange(NUM_FRAMES))  # the caller decides


def test_moog_depth_streams_in_chunks_exactly(video, models):
    path, _ = video
    chunked = pipeline("depth-estimation", model=models["moog-depth"], progress=False, num_frames=16)(path)
    whole = pipeline("depth-estimation", model=models["moog-depth"], progress=False, num_frames=64)(path)
    assert chunked.depth.shape == (NUM_FRAMES, HEIGHT, WIDTH)
    np.testing.assert_allclose(chunked.depth, whole.depth, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# Tracking


QUERIES = [(0, 10.5, 20.25), (10, 50.0, 30.0), (36, 95.5, 71.5), (20, 0.0, 0.0)]


def test_point_tracking_queries_at_any_frame(video, models):
    path, frames = video
    pipe = pipeline("point-tracking", model=models["fourds-points"], progress=False)
    result = pipe(path, points=QUERIES)
    assert result.tracks.shape == (NUM_FRAMES, 4, 2) and result.visible.shape == (NUM_FRAMES, 4)
    assert np.isfinite(result.tracks).all()
    for index, (t, x, y) in enumerate(QUERIES):  # x stays x: the query frame returns the query exactly
        np.testing.assert_array_equal(result.tracks[t, index], np.float32([x, y]))
        assert result.visible[t, index]
    # Frames 1-3 of the first query come from the first window: the model on frames 0-3 directly.
    geometry = pipe.video_processor.geometry((HEIGHT, WIDTH))
    query = torch.tensor(geometry.to_normalized(np.array([[10.5, 20.25]])), dtype=torch.float32)[None]
    with torch.no_grad():
        direct = pipe.model(_direct(pipe, frames[:4]), query, normalized_coordinates=True)
    np.testing.assert_allclose(result.tracks[1:4, 0], geometry.to_input(direct.normalized_tracks[0, 1:, 0].double()), atol=1e-4)
    np.testing.assert_array_equal(result.visible[1:4, 0], direct.visible[0, 1:, 0].numpy())
    # The point queried at frame 10 is tracked backwards too: frames 9..7 from the reversed window 10..7.
    query = torch.tensor(geometry.to_normalized(np.array([[50.0, 30.0]])), dtype=torch.float32)[None]
    with torch.no_grad():
        backwards = pipe.model(_direct(pipe, frames[10:6:-1]), query, normalized_coordinates=True)
    np.testing.assert_allclose(result.tracks[9:6:-1, 1], geometry.to_input(backwards.normalized_tracks[0, 1:, 0].double()), atol=1e-4)
    # A one-window video gives the same first window.
    short = pipe(path, end=4, points=[QUERIES[0]])
    np.testing.assert_allclose(short.tracks[:, 0], result.tracks[:4, 0], atol=1e-5)


def test_moog_point_tracking_carries_state_and_reseeds(video, models):
    path, frames = video
    pipe = pipeline("point-tracking", model=models["moog-points"], backbone=models["moog-backbone"], progress=False)
    points = [(0, 12.0, 30.0), (0, 70.0, 50.0)]
    result = pipe(path, points=points)
    assert pipe.video_processor.num_frames == 16 and result.tracks.shape == (NUM_FRAMES, 2, 2)
    # Windows: 0-15, 15-30 (seeded at frame 15, state after frame 14), 21-36 (seeded at frame 21).
    geometry = pipe.video_processor.geometry((HEIGHT, WIDTH))
    clip = _direct(pipe, frames)
    with torch.no_grad():
        streamed = pipe.model.moog(clip, initial_state=pipe._initial_state()).last_hidden_state  # one call, all frames
        seeds = []
        for index in range(2):
            last_seen = max(t for t in range(16) if result.visible[t, index])
            seeds.append(geometry.to_normalized(result.tracks[last_seen, index].astype(np.float64)))
        seeds = torch.tensor(np.stack(seeds), dtype=torch.float32)[None]
        second = track_points(pipe.model.head, streamed[:, 15:31], seeds, (0, 0), normalized_coordinates=True)
    np.testing.assert_allclose(result.tracks[16:31], geometry.to_input(second.normalized_tracks[0, 1:].double()), atol=1e-3)
    np.testing.assert_array_equal(result.visible[16:31], second.visible[0, 1:].numpy())


def test_box_tracking_end_to_end(video, models, tmp_path):
    path, frames = video
    pipe = pipeline("box-tracking", model=models["moog-boxes"], backbone=models["moog-backbone"], progress=False)
    boxes = [(0, 20.0, 10.0, 60.0, 50.0), (5, 30.0, 30.0, 90.0, 70.0)]
    result = pipe(path, boxes=boxes)
    assert result.boxes.shape == (NUM_FRAMES, 2, 4) and np.isfinite(result.boxes).all()
    np.testing.assert_array_equal(result.boxes[0, 0], np.float32(boxes[0][1:]))
    np.testing.assert_array_equal(result.boxes[5, 1], np.float32(boxes[1][1:]))
    geometry = pipe.video_processor.geometry((HEIGHT, WIDTH))
    query = torch.tensor(geometry.to_normalized(np.array([boxes[0][1:]])), dtype=torch.float32)[None]
    with torch.no_grad():
        features = pipe.model.moog(_direct(pipe, frames[:16]), initial_state=pipe._initial_state()).last_hidden_state
        direct = track_boxes(pipe.model.head, features, query, (0, 0), normalized_coordinates=True)
    np.testing.assert_allclose(result.boxes[1:16, 0], geometry.to_input(direct.normalized_boxes[0, 1:, 0].double()), atol=1e-3)
    saved = json.loads(result.save(tmp_path / "boxes.json").read_text())
    assert saved["frame_indices"] == list(range(NUM_FRAMES)) and np.array(saved["boxes"]).shape == (NUM_FRAMES, 2, 4)
    with open_video(result.save(tmp_path / "boxes.mp4")) as reader:
        assert len(reader) == NUM_FRAMES and (reader.metadata.height, reader.metadata.width) == (HEIGHT, WIDTH)


def test_point_tracks_render_and_save(video, models, tmp_path):
    path, _ = video
    result = pipeline("point-tracking", model=models["fourds-points"], progress=False)(path, grid=3)
    assert result.query_points.shape == (9, 3)
    np.testing.assert_allclose(result.query_points[4], [0, WIDTH / 2, HEIGHT / 2])  # the grid's centre cell
    saved = json.loads(result.save(tmp_path / "tracks.json").read_text())
    np.testing.assert_allclose(np.array(saved["tracks"]), result.tracks, atol=1e-3)
    assert np.array(saved["visible"]).dtype == bool
    with open_video(result.save(tmp_path / "tracks.mp4")) as reader:
        assert len(reader) == NUM_FRAMES and (reader.metadata.height, reader.metadata.width) == (HEIGHT, WIDTH)
    png_dir = result.save(tmp_path / "frames")
    assert len(list(png_dir.glob("*.png"))) == NUM_FRAMES


# ----------------------------------------------------------------------------------------------
# Camera pose, features, reconstruction


def test_camera_poses_chain_window_predictions(video, models, tmp_path):
    path, frames = video
    pipe = pipeline("camera-pose-estimation", model=models["fourds-pose"], progress=False)
    result = pipe(path)
    # Window length 4, overlap 1: key frames 0, 3, 6, ..., 36.
    np.testing.assert_array_equal(result.pose_frames, np.arange(0, NUM_FRAMES, 3))
    np.testing.assert_allclose(result.poses[0], np.eye(4), atol=1e-7)
    for k, relative in enumerate(result.relative_poses):
        np.testing.assert_allclose(result.poses[k + 1], result.poses[k] @ relative, atol=1e-4)
        np.testing.assert_allclose(relative[:3, :3] @ relative[:3, :3].T, np.eye(3), atol=1e-4)
    with torch.no_grad():
        direct = pipe.model(_direct(pipe, frames[3:7])).pose[0].numpy()
    np.testing.assert_allclose(result.relative_poses[1], direct, atol=1e-5)
    saved = json.loads(result.save(tmp_path / "poses.json").read_text())
    assert np.array(saved["poses"]).shape == (13, 4, 4)


def test_features_have_documented_layouts(video, models):
    path, frames = video
    pipe = pipeline("video-feature-extraction", model=models["fourds-backbone"], progress=False)
    result = pipe(path)
    assert result.layout == "(T, h, w, D)" and result.features.shape == (NUM_FRAMES, 4, 3, 32)
    with torch.no_grad():
        direct = pipe.model(_direct(pipe, frames[:4])).readout_features[0]
    np.testing.assert_allclose(result.features[:4], direct.unflatten(1, (4, 3)).numpy(), atol=1e-5)
    # A task checkpoint serves features too (its backbone).
    assert pipeline("features", model=models["fourds-points"], progress=False)(path).features.shape == (NUM_FRAMES, 4, 3, 32)
    moog = pipeline("video-feature-extraction", model=models["moog-backbone"], progress=False)
    streamed = moog(path)
    assert streamed.layout == "(T, N, D)" and streamed.features.shape == (NUM_FRAMES, 16, 32)
    with torch.no_grad():
        whole = moog.model(_direct(moog, frames), initial_state=moog._initial_state()).last_hidden_state[0]
    np.testing.assert_allclose(streamed.features, whole.numpy(), atol=1e-4)


def test_moog_reconstruction(video, models, tmp_path):
    path, frames = video
    pipe = pipeline("video-reconstruction", model=models["moog-backbone"], progress=False)
    result = pipe(path, end=20)
    assert result.frames.shape == (20, HEIGHT, WIDTH, 3) and result.frames.dtype == np.uint8
    assert result.mask is None  # MooG sees every pixel
    # Bit for bit the model's forward, streamed in windows with the state carried.
    clip, state, chunks = _direct(pipe, frames[:20]), pipe._initial_state(), []
    with torch.no_grad():
        for start in range(0, 20, pipe.window):
            out = pipe.model(clip[:, start : start + pipe.window], initial_state=state)
            state = out.state
            chunks.append(out.predicted_frames[0].permute(0, 2, 3, 1).clamp(0, 1).numpy())
    np.testing.assert_array_equal(result.model_frames, np.concatenate(chunks))
    with open_video(result.save(tmp_path / "reconstruction.mp4")) as reader:
        assert len(reader) == 20 and reader.metadata.width == 2 * WIDTH
    with np.load(result.save(tmp_path / "reconstruction.npz"), allow_pickle=False) as saved:
        assert "mask" not in saved.files and saved["frames"].shape == (20, HEIGHT, WIDTH, 3)
    with pytest.raises(ValueError, match="MooGForNextFramePrediction|no trained weights|do not run video-reconstruction"):
        pipeline("video-reconstruction", model=models["fourds-backbone"])


# ----------------------------------------------------------------------------------------------
# RVM: features, masked reconstruction and the readout heads through the shared recurrent path


@pytest.fixture(scope="module")
def rvm_models(tmp_path_factory) -> dict[str, Path]:
    """Tiny RVM directories (the debug config, random weights): the backbone with its decoder, the
    reconstruction model around it, a backbone without decoder, and one head model per readout task."""
    from fourd_hub import RVMForBoxTracking, RVMForCameraPoseEstimation, RVMForDepthEstimation, RVMForMaskedVideoReconstruction
    from fourd_hub import RVMForPointTracking, RVMModel
    from fourd_hub.models.rvm.configuration_rvm import debug_config

    root = tmp_path_factory.mktemp("rvm")
    torch.manual_seed(0)
    backbone = RVMModel(debug_config())
    backbone.save_pretrained(root / "backbone")
    RVMForMaskedVideoReconstruction.from_base_model(backbone).save_pretrained(root / "reconstruction")
    RVMModel(debug_config(decoder=None)).save_pretrained(root / "no-decoder")
    heads = {
        "depth-estimation": RVMForDepthEstimation, "point-tracking": RVMForPointTracking,
        "box-tracking": RVMForBoxTracking, "camera-pose-estimation": RVMForCameraPoseEstimation,
    }
    for task, cls in heads.items():
        cls(debug_config()).save_pretrained(root / task)
    return {name: root / name for name in ("backbone", "reconstruction", "no-decoder", *heads)}


def test_rvm_features_stream_through_the_recurrent_path(video, rvm_models):
    path, frames = video
    pipe = pipeline("video-feature-extraction", model=rvm_models["backbone"], progress=False)
    assert pipe.recurrent and pipe.window == 4
    result = pipe(path, end=10)  # chunks of 4, 4, 2 frames
    assert result.layout == "(T, h, w, D)" and result.features.shape == (10, 4, 3, 32)
    with torch.no_grad():
        whole = pipe.model(_direct(pipe, frames[:10])).patch_features[0]
    np.testing.assert_allclose(result.features, whole.numpy(), atol=1e-5)
    # Without a decoder the features still work.
    assert pipeline("features", model=rvm_models["no-decoder"], progress=False)(path, end=5).features.shape == (5, 4, 3, 32)


def test_rvm_reconstruction_masks_and_reconstructs_every_frame(video, rvm_models, tmp_path):
    path, frames = video
    pipe = pipeline("video-reconstruction", model=rvm_models["backbone"], progress=False, seed=5)
    assert type(pipe.model).__name__ == "RVMForMaskedVideoReconstruction"  # around the backbone, sharing its weights
    result = pipe(path, end=10)
    visible = pipe.model.config.num_visible(12)
    assert result.frames.shape == (10, HEIGHT, WIDTH, 3) and result.frames.dtype == np.uint8
    assert result.mask.shape == (10, 4, 3) and result.mask.dtype == bool
    assert (~result.mask).sum(axis=(1, 2)).tolist() == [visible] * 10
    # Chunks of the window (4 frames), the state and the generator carried = one call on the processed frames.
    with torch.no_grad():
        direct = pipe.model.reconstruct_video(
            _direct(pipe, frames[:10]), initial_state=pipe._initial_state(), generator=torch.Generator().manual_seed(5)
        )
    np.testing.assert_array_equal(result.mask, direct.mask[0].numpy())
    np.testing.assert_allclose(result.model_frames, direct.predicted_frames[0].permute(0, 2, 3, 1).clamp(0, 1).numpy(), atol=1e-5)
    # Seeded: the same seed gives the same frames and masks (also from the reconstruction model's own directory).
    again = pipeline("video-reconstruction", model=rvm_models["reconstruction"], progress=False, seed=5)(path, end=10)
    assert np.array_equal(again.frames, result.frames) and np.array_equal(again.mask, result.mask)
    other = pipeline("video-reconstruction", model=rvm_models["backbone"], progress=False, seed=6)(path, end=10)
    assert not np.array_equal(other.mask, result.mask)

    # input | masked input | reconstruction (the visible pixels pasted back), as the original demo.
    rendered = list(result.render())
    assert len(rendered) == 10 and all(frame.shape == (HEIGHT, 3 * WIDTH, 3) for frame in rendered)
    for t in (0, 9):
        seen = list(result.iter_visibility())[t]
        shown, masked, reconstruction = np.split(rendered[t], 3, axis=1)
        inside, hidden = seen == 1, seen == 0
        assert inside.any() and hidden.any() and ((seen >= 0) & (seen <= 1)).all()
        np.testing.assert_array_equal(shown, frames[t])
        np.testing.assert_array_equal(masked[inside], frames[t][inside])
        assert (masked[hidden] == 128).all()
        np.testing.assert_array_equal(reconstruction[inside], frames[t][inside])
        np.testing.assert_array_equal(reconstruction[hidden], result.frames[t][hidden])
    raw = next(iter(result.render(paste_visible=False)))
    np.testing.assert_array_equal(raw[:, 2 * WIDTH :], result.frames[0])
    with open_video(result.save(tmp_path / "reconstruction.mp4")) as reader:
        assert len(reader) == 10 and (reader.metadata.height, reader.metadata.width) == (HEIGHT, 3 * WIDTH)
    with np.load(result.save(tmp_path / "reconstruction.npz"), allow_pickle=False) as saved:
        np.testing.assert_array_equal(saved["mask"], result.mask)
        np.testing.assert_array_equal(saved["frames"], result.frames)


def test_rvm_reconstruction_without_a_decoder_is_a_clear_error(rvm_models):
    from fourd_hub import RVMModel
    from fourd_hub.models.rvm.configuration_rvm import debug_config

    with pytest.raises(ValueError, match="needs a decoder; config.decoder is None"):
        pipeline("video-reconstruction", model=rvm_models["no-decoder"])
    with pytest.raises(ValueError, match="no decoder .*so it cannot reconstruct frames; its features still work"):
        pipeline("video-reconstruction", model=RVMModel(debug_config(), add_decoder=False))
    with pytest.raises(ValueError, match="holds a RVMForDepthEstimation, not a RVMForMaskedVideoReconstruction"):
        pipeline("video-reconstruction", model=rvm_models["depth-estimation"])


RVM_HEAD_CALLS = {
    "depth-estimation": {},
    "point-tracking": {"points": [(0, 30.0, 20.0), (6, 60.0, 40.0)]},
    "box-tracking": {"boxes": [(0, 10.0, 10.0, 50.0, 40.0)]},
    "camera-pose-estimation": {},
}


@pytest.mark.parametrize("task", list(RVM_HEAD_CALLS))
def test_rvm_readout_heads_run_through_the_pipelines(video, rvm_models, task):
    path, frames = video
    pipe = pipeline(task, model=rvm_models[task], progress=False)
    result = pipe(path, end=10, **RVM_HEAD_CALLS[task])
    np.testing.assert_array_equal(result.frame_indices, np.arange(10))
    values = {
        "depth-estimation": lambda: result.depth, "point-tracking": lambda: result.tracks,
        "box-tracking": lambda: result.boxes, "camera-pose-estimation": lambda: result.poses,
    }[task]()
    expected = {
        "depth-estimation": (10, HEIGHT, WIDTH), "point-tracking": (10, 2, 2), "box-tracking": (10, 1, 4),
        "camera-pose-estimation": (4, 4, 4),  # key frames 0, 3, 6, 9: windows overlap by one frame
    }
    assert values.shape == expected[task] and np.isfinite(values).all()
    if task == "depth-estimation":  # one frame's state at a time: the streamed chunks equal one call
        with torch.no_grad():
            whole = pipe.model(_direct(pipe, frames[:10])).predicted_depth[0]
        np.testing.assert_allclose(result.model_depth, whole.numpy(), atol=1e-5)


# ----------------------------------------------------------------------------------------------
# Inputs, dtypes, transformers registration


def test_every_input_kind_gives_the_same_depth(video, models):
    from PIL import Image

    path, frames = video
    pipe = pipeline("depth-estimation", model=models["fourds-depth"], progress=False)
    expected = pipe(path, end=10).depth
    for source in (path.read_bytes(), frames[:10], torch.from_numpy(frames[:10]), [Image.fromarray(f) for f in frames[:10]]):
        np.testing.assert_allclose(pipe(source, end=10).depth, expected, atol=1e-6)
    with open(path, "rb") as handle:
        np.testing.assert_allclose(pipe(handle, end=10).depth, expected, atol=1e-6)
    both = pipe([path, frames[:10]], end=10)
    assert len(both) == 2


def test_a_directory_of_frames_or_a_glob_is_a_video(video, models, tmp_path):
    from video_factory import write_image_frames

    _, frames = video
    pipe = pipeline("depth-estimation", model=models["fourds-depth"], progress=False)
    expected = pipe(frames[:10]).depth
    write_image_frames(tmp_path / "frames", frames[:10])
    np.testing.assert_array_equal(pipe(tmp_path / "frames").depth, expected)
    np.testing.assert_array_equal(pipe(str(tmp_path / "frames" / "*.png")).depth, expected)
    # Image sequences have no timestamps: source_fps says what the frame rate is.
    assert pipe(tmp_path / "frames", source_fps=5.0).fps == pytest.approx(5.0)


def test_bfloat16_runs_close_to_float32(video, models):
    path, _ = video
    reference = pipeline("depth-estimation", model=models["fourds-depth"], progress=False)(path, end=8).depth
    low = pipeline("depth-estimation", model=models["fourds-depth"], progress=False, dtype=torch.bfloat16)
    assert low.model.dtype == torch.bfloat16
    depth = low(path, end=8).depth
    assert depth.dtype == np.float32 and np.isfinite(depth).all()
    assert np.abs(depth - reference).max() < 0.05 * (np.abs(reference).max() + 1e-6) + 0.05


def test_transformers_pipeline_runs_our_tasks(video, models):
    path, _ = video
    ours = pipeline("depth-estimation", model=models["fourds-depth"], progress=False)(path, end=8).depth
    theirs = transformers.pipeline("video-depth-estimation", model=str(models["fourds-depth"]), device="cpu", progress=False)
    np.testing.assert_allclose(theirs(path, end=8).depth, ours, atol=1e-6)
    tracker = transformers.pipeline("point-tracking", model=str(models["fourds-points"]), device="cpu", progress=False)
    assert tracker(path, end=8, points=[(0, 5.0, 5.0)]).tracks.shape == (8, 1, 2)


def test_a_backbone_directory_is_refused_for_a_head_task(models):
    with pytest.raises(ValueError, match="no trained weights for depth-estimation"):
        pipeline("depth-estimation", model=models["fourds-backbone"])
    with pytest.raises(ValueError, match="standalone readout head"):
        from fourd_hub.pipelines import load_task_model

        load_task_model("point-tracking", models["moog-points"])
    with pytest.raises(KeyError, match="unknown task"):
        pipeline("image-segmentation", model=models["fourds-depth"])


# ----------------------------------------------------------------------------------------------
# Bad input: a clear error, before any output is written


@pytest.mark.parametrize(
    "name, error, message",
    [
        ("missing", FileNotFoundError, "not found"),
        ("empty", VideoError, "empty"),
        ("truncated", VideoError, "truncated|corrupt|not a readable video"),
        ("text", VideoError, "not a readable video"),
        ("one-frame", VideoError, "1 frame"),
    ],
)
def test_bad_video_files_are_clear_errors(bad_files, models, name, error, message):
    pipe = pipeline("depth-estimation", model=models["fourds-depth"], progress=False)
    with pytest.raises(error, match=message):
        pipe(bad_files[name])


def test_huge_frames_are_refused_before_decoding(models):
    pipe = pipeline("depth-estimation", model=models["fourds-depth"], progress=False)
    huge = np.broadcast_to(np.zeros((1, 1, 1, 3), dtype=np.uint8), (2, 10000, 10000, 3))  # no memory behind it
    with pytest.raises(VideoError, match="10000"):
        pipe(huge)


def test_meta_tensor_video_is_a_value_error_naming_the_device(models):
    pipe = pipeline("depth-estimation", model=models["fourds-depth"], progress=False)
    with pytest.raises(ValueError, match="'meta' device"):
        pipe(torch.zeros(4, HEIGHT, WIDTH, 3, dtype=torch.uint8, device="meta"))


# ----------------------------------------------------------------------------------------------
# Devices: one resolver for pipelines and the CLI


def test_resolve_device_accepts_the_usual_spellings():
    from fourd_hub.pipelines import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(-1) == resolve_device("-1") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device(None) == (torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu"))


@pytest.mark.parametrize(
    "device, message",
    [
        ("banana", r"unknown device 'banana'; available: cpu"),
        ("cuda:-1", r"unknown device 'cuda:-1'"),
        ("meta", r"device 'meta' holds no data"),
        (2.5, r"got 2\.5; available: cpu"),
    ],
)
def test_resolve_device_refuses_unknown_devices_naming_them(device, message):
    from fourd_hub.pipelines import resolve_device

    with pytest.raises(ValueError, match=message):
        resolve_device(device)


def test_cuda_on_a_cpu_build_and_missing_gpus_are_named(monkeypatch):
    from fourd_hub.pipelines import resolve_device

    # A CPU-only build (this test suite's own, or simulated on a GPU machine).
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:0", 0, "0"):
        with pytest.raises(ValueError, match=r"device 'cuda(:0)?' is not available: this PyTorch build .* has no CUDA support; available: cpu"):
            resolve_device(device)
    # A CUDA build with two GPUs: cuda:7 does not exist.
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match=r"device 'cuda:7' does not exist: 2 CUDA device\(s\) are visible; available: cpu, cuda:0, cuda:1"):
        resolve_device("cuda:7")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    # A CUDA build on a machine without a visible GPU.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device 'cuda' is not available: no CUDA GPU is visible; available: cpu"):
        resolve_device("cuda")


def test_pipeline_refuses_a_bad_device_before_loading_the_model(monkeypatch):
    import fourd_hub.pipelines as pipelines_module

    monkeypatch.setattr(pipelines_module, "load_task_model", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(ValueError, match="unknown device 'banana'"):
        pipeline("depth-estimation", model="anything", device="banana")


# ----------------------------------------------------------------------------------------------
# The query grid: refused above MAX_GRID_SIZE before anything is opened or allocated


@pytest.mark.parametrize("grid", [0, -2, 65, 10**6, 2.5, float("inf"), True])
def test_grid_outside_the_limit_is_refused_before_the_video_is_opened(models, tmp_path, grid):
    from fourd_hub.pipelines import MAX_GRID_SIZE, grid_points

    pipe = pipeline("point-tracking", model=models["fourds-points"], progress=False)
    # The video does not exist: a refusal of the grid proves the check ran before opening it.
    with pytest.raises(ValueError, match=rf"grid.*{MAX_GRID_SIZE}") as caught:
        pipe(tmp_path / "missing.mp4", grid=grid)
    assert repr(grid) in str(caught.value) or str(int(grid)) in str(caught.value)
    with pytest.raises(ValueError, match=rf"grid.*{MAX_GRID_SIZE}"):
        grid_points(grid, (HEIGHT, WIDTH))
    assert grid_points(MAX_GRID_SIZE, (HEIGHT, WIDTH)).shape == (MAX_GRID_SIZE**2, 3)


@pytest.mark.parametrize(
    "points, message",
    [
        ([(0, WIDTH + 1.0, 10.0)], "outside the 96x72 frame"),
        ([(0, 10.0, -0.5)], "outside"),
        ([(-1, 10.0, 10.0)], "non-negative"),
        ([(NUM_FRAMES, 10.0, 10.0)], "not among the processed frames"),
        ([(1.5, 10.0, 10.0)], "integers"),
        ([(0, float("nan"), 1.0)], "NaN"),
        ([[1.0, 2.0, 3.0, 4.0]], r"shape \(Q, 3\)"),
        ([], r"shape \(Q, 3\)"),
    ],
)
def test_bad_points_are_clear_errors(video, models, points, message):
    pipe = pipeline("point-tracking", model=models["fourds-points"], progress=False)
    with pytest.raises(ValueError, match=message):
        pipe(video[0], points=points)


def test_query_frames_must_be_processed_and_boxes_ordered(video, models):
    pipe = pipeline("point-tracking", model=models["fourds-points"], progress=False)
    with pytest.raises(ValueError, match="every 2"):
        pipe(video[0], stride=2, points=[(1, 5.0, 5.0)])
    boxes = pipeline("box-tracking", model=models["moog-boxes"], backbone=models["moog-backbone"], progress=False)
    with pytest.raises(ValueError, match="x1 < x2"):
        boxes(video[0], boxes=[(0, 50.0, 10.0, 20.0, 40.0)])
    crop = pipeline("point-tracking", model=models["fourds-points"], progress=False, resize_mode="crop")
    with pytest.raises(ValueError, match="part of the frame the model sees"):
        crop(video[0], points=[(0, 1.0, 1.0)])


def test_a_catalog_name_loads_the_cached_converted_model(video, models, tmp_path, monkeypatch):
    """pipeline(task, model=<catalog name>) finds the converted copy in the Hugging Face cache, offline."""
    import shutil

    from huggingface_hub import constants

    revision = "0" * 40
    repo = tmp_path / "models--fourd-hub--4ds-b-dist-e-scannet-depth"
    shutil.copytree(models["fourds-depth"], repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv("FOURD_HUB_ORG", raising=False)
    by_name = pipeline("depth-estimation", model="4ds-b-dist-e-scannet-depth", progress=False)(video[0], end=8)
    by_dir = pipeline("depth-estimation", model=models["fourds-depth"], progress=False)(video[0], end=8)
    np.testing.assert_array_equal(by_name.depth, by_dir.depth)


# ----------------------------------------------------------------------------------------------
# Saving a pipeline: save_pretrained and push_to_hub write what pipeline(task, model=dir) loads


SAVED_FILES = {"config.json", "model.safetensors", "video_preprocessor_config.json"}


@pytest.mark.parametrize("name, backbone", [("fourds-points", None), ("moog-points", "moog-backbone")])
def test_pipeline_save_pretrained_round_trips(video, models, tmp_path, name, backbone):
    path, _ = video
    extra = {} if backbone is None else {"backbone": models[backbone]}
    pipe = pipeline("point-tracking", model=models[name], progress=False, resize_mode="pad", **extra)
    pipe.save_pretrained(tmp_path / "saved")
    # Our pipelines are installed code: no module source copied beside the weights, no custom_pipelines.
    assert {p.name for p in (tmp_path / "saved").iterdir()} == SAVED_FILES
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert "custom_pipelines" not in config and "auto_map" not in config
    assert not config.get("use_pretrained_backbone")  # a head on its backbone is saved whole
    assert "custom_pipelines" not in pipe.model.config.to_dict()
    points = [(0, 10.0, 20.0), (5, 60.0, 40.0)]
    expected = pipe(path, end=8, points=points)
    reloaded = pipeline("point-tracking", model=tmp_path / "saved", progress=False)
    assert reloaded.video_processor.to_dict() == pipe.video_processor.to_dict()  # resize_mode="pad" kept
    np.testing.assert_array_equal(reloaded(path, end=8, points=points).tracks, expected.tracks)
    theirs = transformers.pipeline("point-tracking", model=str(tmp_path / "saved"), device="cpu", progress=False)
    np.testing.assert_array_equal(theirs(path, end=8, points=points).tracks, expected.tracks)
    with pytest.raises(NotADirectoryError, match="pass a directory"):
        pipe.save_pretrained(tmp_path / "saved" / "config.json")


@pytest.fixture
def uploads(monkeypatch):
    """HfApi.create_repo / upload_folder replaced: what would be uploaded is recorded (file bytes)."""
    from pathlib import Path

    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoUrl

    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kwargs: RepoUrl(f"https://huggingface.co/{repo_id}"))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        folder = Path(folder_path)
        calls.append({"repo_id": repo_id, "files": {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}, **kwargs})
        return f"https://huggingface.co/{repo_id}/commit/0000"

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_pipeline_push_to_hub_uploads_what_loads_back_by_repo_id(video, models, uploads, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from fourd_hub.cards import card_metadata
    from hub_helpers import write_hf_snapshot

    path, _ = video
    pipe = pipeline("depth-estimation", model=models["fourds-depth"], progress=False, resize_mode="crop")
    assert pipe.push_to_hub("me/depth-pipeline", commit_message="mine") == "https://huggingface.co/me/depth-pipeline/commit/0000"
    (upload,) = uploads
    assert upload["repo_id"] == "me/depth-pipeline" and upload["commit_message"] == "mine"
    assert set(upload["files"]) == SAVED_FILES | {"README.md"}
    assert card_metadata(upload["files"]["README.md"].decode())["library_name"] == "fourd_hub"
    # save_pretrained(push_to_hub=True) uploads the same files.
    pipe.save_pretrained(tmp_path / "local", push_to_hub=True, repo_id="me/depth-pipeline")
    assert uploads[1]["files"] == upload["files"]
    # What was uploaded loads back by repo id (from the cache, offline) and gives the same depth.
    pushed = tmp_path / "pushed"
    pushed.mkdir()
    for name, data in upload["files"].items():
        (pushed / name).write_bytes(data)
    cache = tmp_path / "hf-cache"
    write_hf_snapshot(cache, "me/depth-pipeline", pushed)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reloaded = pipeline("depth-estimation", model="me/depth-pipeline", progress=False)
    assert reloaded.video_processor.resize_mode == "crop"
    np.testing.assert_array_equal(reloaded(path, end=8).depth, pipe(path, end=8).depth)


# ----------------------------------------------------------------------------------------------
# Tracking arguments: CoTracker's names next to ours, unknown keywords, backward_tracking


def test_cotracker_style_queries_give_the_same_tracks_as_points(video, models):
    path, _ = video
    pipe = pipeline("point-tracking", model=models["fourds-points"], progress=False)
    ours = pipe(path, end=12, points=QUERIES[:2])
    for queries in (QUERIES[:2], np.array(QUERIES[:2]), torch.tensor([QUERIES[:2]])):  # (N, 3) or CoTracker's (1, N, 3)
        theirs = pipe(path, end=12, queries=queries)
        np.testing.assert_array_equal(theirs.tracks, ours.tracks)
        np.testing.assert_array_equal(theirs.visible, ours.visible)
        np.testing.assert_array_equal(theirs.query_points, ours.query_points)
    np.testing.assert_array_equal(pipe(path, end=12, queries=QUERIES[:2], grid_size=0).tracks, ours.tracks)  # CoTracker's default
    grid = pipe(path, end=12, grid=2, grid_frame=3)
    np.testing.assert_array_equal(pipe(path, end=12, grid_size=2, grid_query_frame=3).tracks, grid.tracks)
    assert (grid.query_points[:, 0] == 3).all()
    with pytest.raises(ValueError, match=r"a batch of 2 query sets.*call it once per video"):
        pipe(path, end=12, queries=torch.tensor([QUERIES[:2], QUERIES[:2]]))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(points=QUERIES, queries=QUERIES), TypeError, r"both points= and queries= \(CoTracker's name for points=\)"),
        (dict(grid=4, grid_size=4), TypeError, "both grid= and grid_size="),
        (dict(grid=4, grid_frame=0, grid_query_frame=0), TypeError, "both grid_frame= and grid_query_frame="),
        (dict(queries=QUERIES, segm_mask=None), TypeError, r"unexpected keyword argument 'segm_mask'; it accepts points, grid.*queries \(= points\)"),
        (dict(point=QUERIES), TypeError, r"'point' \(did you mean 'points'\?\)"),
        (dict(grid_size=0), ValueError, "dense tracking.*grid_size=N"),
        (dict(points=QUERIES, backward_tracking="no"), ValueError, "backward_tracking must be True .* or False"),
        (dict(), ValueError, r"points=.*\(CoTracker: queries=\) or grid=N"),
    ],
)
def test_bad_tracking_arguments_are_clear_errors_before_the_video_is_opened(models, tmp_path, kwargs, error, message):
    pipe = pipeline("point-tracking", model=models["fourds-points"], progress=False)
    with pytest.raises(error, match=message):
        pipe(tmp_path / "missing.mp4", **kwargs)  # not opened: the arguments are checked first


def test_unknown_keywords_of_other_pipelines_name_the_accepted_ones(models, tmp_path):
    boxes = pipeline("box-tracking", model=models["moog-boxes"], backbone=models["moog-backbone"], progress=False)
    with pytest.raises(TypeError, match=r"'grid'.*accepts boxes, backward_tracking, num_frames"):
        boxes(tmp_path / "missing.mp4", boxes=[(0, 1.0, 1.0, 5.0, 5.0)], grid=3)
    with pytest.raises(TypeError, match=r"both boxes= and queries="):
        boxes(tmp_path / "missing.mp4", boxes=[(0, 1.0, 1.0, 5.0, 5.0)], queries=[(0, 1.0, 1.0, 5.0, 5.0)])
    depth = pipeline("depth-estimation", model=models["fourds-depth"], progress=False)
    with pytest.raises(TypeError, match=r"depth-estimation got an unexpected keyword argument 'frames' \(did you mean 'num_frames'\?\); it accepts num_frames, stride"):
        depth(tmp_path / "missing.mp4", frames=8)


def test_backward_tracking_false_tracks_only_forward_from_each_query(video, models):
    path, _ = video
    pipe = pipeline("point-tracking", model=models["fourds-points"], progress=False)
    queries = [(0, 10.5, 20.25), (6, 50.0, 30.0), (11, 20.0, 10.0)]  # the last on the last frame
    both = pipe(path, end=12, queries=queries)
    np.testing.assert_array_equal(pipe(path, end=12, queries=queries, backward_tracking=True).tracks, both.tracks)  # the default
    assert np.isfinite(both.tracks).all()
    forward = pipe(path, end=12, queries=queries, backward_tracking=False)
    for index, (t, x, y) in enumerate(queries):
        # Before its frame a track is not covered: NaN and not visible; from it on, the same forward pass.
        assert np.isnan(forward.tracks[:t, index]).all() and not forward.visible[:t, index].any()
        np.testing.assert_array_equal(forward.tracks[t:, index], both.tracks[t:, index])
        np.testing.assert_array_equal(forward.visible[t:, index], both.visible[t:, index])
        np.testing.assert_array_equal(forward.tracks[t, index], np.float32([x, y]))
        assert forward.visible[t, index]
    boxes = pipeline("box-tracking", model=models["moog-boxes"], backbone=models["moog-backbone"], progress=False)
    query = [(4, 20.0, 10.0, 60.0, 50.0)]
    backward, only_forward = boxes(path, end=8, queries=query), boxes(path, end=8, boxes=query, backward_tracking=False)
    assert np.isfinite(backward.boxes).all() and np.isnan(only_forward.boxes[:4]).all()
    np.testing.assert_array_equal(only_forward.boxes[4:], backward.boxes[4:])
