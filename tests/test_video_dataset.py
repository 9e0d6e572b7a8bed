"""Tests for the pretraining data pipeline: fourd_hub.data.stream and fourd_hub.data.video_dataset.

Videos are tiny real mp4 files written by ``video_factory`` (PyAV directly) into temporary
directories; clips are compared with independent by-hand computations (decode, pick frames, resize,
crop, flip).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fourd_hub.data.stream import BatchStream
from fourd_hub.data.video_dataset import (
    ClipParams,
    ClipSampling,
    VideoClipDataset,
    resized_size,
    resolve_video_paths,
    sample_clip_params,
    transform_clip,
)
from fourd_hub.video_io import VideoError, open_video
from video_factory import moving_shapes_frames, write_test_video

pytestmark = pytest.mark.training

SAMPLING = ClipSampling(num_frames=4, frame_stride=2, crop_size=(32, 32))
# (name, frames, height, width): different lengths and one portrait video.
VIDEO_SPECS = [("a.mp4", 20, 48, 64), ("b.mp4", 24, 48, 64), ("c.mp4", 30, 64, 48), ("d.mp4", 22, 48, 64)]


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("videos")
    for seed, (name, num_frames, height, width) in enumerate(VIDEO_SPECS):
        write_test_video(directory / name, moving_shapes_frames(num_frames, height, width, seed=seed), fps=24)
    return directory


@pytest.fixture(scope="module")
def decoded(video_dir: Path) -> dict[str, np.ndarray]:
    """Every frame of every test video, decoded once: ``{absolute path: (T, H, W, 3) uint8}``."""
    frames = {}
    for name, *_ in VIDEO_SPECS:
        with open_video(video_dir / name) as reader:
            frames[os.path.abspath(video_dir / name)] = reader.read()
    return frames


def make_dataset(video_dir: Path, **kwargs) -> VideoClipDataset:
    kwargs.setdefault("sampling", SAMPLING)
    kwargs.setdefault("batch_size", 2)
    return VideoClipDataset(video_dir, **kwargs)


def by_hand(frames: np.ndarray, indices, size: tuple[int, int], top: int, left: int, crop: tuple[int, int],
            flip: bool) -> torch.Tensor:
    """Independent reimplementation of a clip: pick frames, resize all at once, crop, flip."""
    clip = torch.from_numpy(frames[list(indices)]).permute(0, 3, 1, 2).float() / 255
    clip = F.interpolate(clip, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    clip = clip[:, :, top : top + crop[0], left : left + crop[1]]
    return clip.flip(-1) if flip else clip


def assert_batches_equal(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=key)


# --------------------------------------------------------------------------------------------------
# Sampling parameters
# --------------------------------------------------------------------------------------------------


def test_clip_sampling_defaults_and_validation():
    default = ClipSampling()
    assert (default.num_frames, default.frame_stride, default.crop_size) == (16, 2, (224, 224))
    assert default.min_resize_factor == 1.15 and default.frame_span == 31
    assert ClipSampling(crop_size=32).crop_size == (32, 32)
    assert ClipSampling(crop_size=[24, 40]).crop_size == (24, 40)
    for kwargs, match in [
        ({"num_frames": 0}, "num_frames"),
        ({"frame_stride": 0}, "frame_stride"),
        ({"num_frames": 2.0}, "num_frames"),
        ({"crop_size": (0, 32)}, "crop_size"),
        ({"crop_size": (32,)}, "crop_size"),
        ({"min_resize_factor": 0.9}, "min_resize_factor"),
        ({"min_resize_factor": float("nan")}, "min_resize_factor"),
        ({"random_flip": "yes"}, "random_flip"),
    ]:
        with pytest.raises(ValueError, match=match):
            ClipSampling(**kwargs)


def test_resized_size_shortest_side_is_factor_times_crop():
    # 1.15 * 32 = 36.8 -> 37 on the shortest side; the aspect ratio is kept on the other.
    assert resized_size(48, 64, SAMPLING) == (37, 49)
    assert resized_size(64, 48, SAMPLING) == (49, 37)
    assert resized_size(1080, 1920, ClipSampling()) == (258, 458)  # 1.15 * 224 = 257.6; 1920 * 257.6 / 1080 = 457.96
    # Non-square crop: both sides reach at least factor * crop along them.
    sampling = ClipSampling(crop_size=(20, 60), min_resize_factor=1.0)
    assert resized_size(100, 100, sampling) == (60, 60)
    assert resized_size(30, 300, sampling) == (20, 200)


def test_sample_clip_params_draw_order_and_ranges():
    seed_rng, rng = np.random.default_rng(7), np.random.default_rng(7)
    params = sample_clip_params(rng, 30, 48, 64, SAMPLING)
    # Manual draws in the documented order: start, top, left, flip.
    start = seed_rng.integers(0, 30 - 7 + 1)
    top, left = seed_rng.integers(0, 37 - 32 + 1), seed_rng.integers(0, 49 - 32 + 1)
    flip = seed_rng.random() < 0.5
    assert params == ClipParams(tuple(int(start) + 2 * i for i in range(4)), (37, 49), int(top), int(left), bool(flip))

    centred = sample_clip_params(np.random.default_rng(7), 30, 48, 64, ClipSampling(4, 2, (32, 32), random_crop=False))
    assert centred.frame_indices == (11, 13, 15, 17)  # (30 - 7) // 2 = 11
    assert (centred.crop_top, centred.crop_left) == (2, 8)
    assert centred.flip == params.flip  # the same draws: switching random_crop off leaves the flip alone

    # Shorter than the 7-frame span: start at 0, clamp to the last frame.
    short = sample_clip_params(np.random.default_rng(0), 5, 48, 64, SAMPLING)
    assert short.frame_indices == (0, 2, 4, 4)
    flips = [sample_clip_params(np.random.default_rng(i), 30, 48, 64, SAMPLING).flip for i in range(200)]
    assert 60 < sum(flips) < 140
    no_flip = ClipSampling(4, 2, (32, 32), random_flip=False)
    assert not any(sample_clip_params(np.random.default_rng(i), 30, 48, 64, no_flip).flip for i in range(50))


# --------------------------------------------------------------------------------------------------
# Clips
# --------------------------------------------------------------------------------------------------


def test_batch_shapes_dtype_range(video_dir: Path):
    dataset = make_dataset(video_dir, batch_size=3)
    batch = dataset.batch(0)
    assert set(batch) == {"pixel_values_videos", "video_index", "sample_index"}
    video = batch["pixel_values_videos"]
    assert video.shape == (3, 4, 3, 32, 32) and video.dtype == torch.float32
    assert 0 <= video.min() and video.max() <= 1 and video.std() > 0.05
    assert batch["sample_index"].tolist() == [0, 1, 2] and batch["sample_index"].dtype == torch.int64
    assert batch["video_index"].dtype == torch.int64 and batch["video_index"].shape == (3,)
    assert dataset.num_videos == 4
    assert "num_videos=4" in repr(dataset) and "ClipSampling(num_frames=4" in repr(dataset)


def test_clip_matches_by_hand_computation(video_dir: Path, decoded: dict):
    dataset = make_dataset(video_dir, seed=3)
    for index in range(6):
        sample = dataset.sample(index)
        path = dataset.videos[int(sample["video_index"])]
        frames = decoded[path]
        params = sample_clip_params(np.random.default_rng([3, index]), len(frames), *frames.shape[1:3], SAMPLING)
        expected = by_hand(frames, params.frame_indices, params.resized_size, params.crop_top, params.crop_left,
                           (32, 32), params.flip)
        torch.testing.assert_close(sample["pixel_values_videos"], expected, rtol=0, atol=1e-5)
        # transform_clip on the decoded frames is the same computation.
        torch.testing.assert_close(transform_clip(frames[list(params.frame_indices)], params, (32, 32)), expected,
                                   rtol=0, atol=1e-5)


def test_centre_crop_without_randomness(video_dir: Path, decoded: dict):
    sampling = ClipSampling(num_frames=4, frame_stride=2, crop_size=(32, 32), random_crop=False, random_flip=False)
    dataset = make_dataset(video_dir, sampling=sampling, batch_size=4)
    batch = dataset.batch(0)
    for clip, video_index in zip(batch["pixel_values_videos"], batch["video_index"]):
        frames = decoded[dataset.videos[int(video_index)]]
        num, height, width = frames.shape[:3]
        size = resized_size(height, width, sampling)
        start = (num - 7) // 2
        expected = by_hand(frames, range(start, start + 7, 2), size, (size[0] - 32) // 2, (size[1] - 32) // 2,
                           (32, 32), False)
        torch.testing.assert_close(clip, expected, rtol=0, atol=1e-5)


def test_flip_mirrors_the_same_clip(video_dir: Path):
    flipping = make_dataset(video_dir, seed=0, batch_size=8)
    plain = make_dataset(video_dir, seed=0, batch_size=8, sampling=ClipSampling(4, 2, (32, 32), random_flip=False))
    flipped_batch, plain_batch = flipping.batch(0), plain.batch(0)
    assert torch.equal(flipped_batch["video_index"], plain_batch["video_index"])
    flips = []
    for index, (with_flip, without) in enumerate(zip(flipped_batch["pixel_values_videos"], plain_batch["pixel_values_videos"])):
        path = flipping.videos[int(flipped_batch["video_index"][index])]
        with open_video(path) as reader:
            frames_count, height, width = len(reader), reader.metadata.height, reader.metadata.width
        flip = sample_clip_params(np.random.default_rng([0, index]), frames_count, height, width, SAMPLING).flip
        flips.append(flip)
        assert torch.equal(with_flip, without.flip(-1) if flip else without)
        assert not torch.equal(without.flip(-1), without)  # the content is not mirror-symmetric
    assert any(flips) and not all(flips)


def test_video_shorter_than_clip_span_repeats_last_frame(tmp_path: Path):
    frames = moving_shapes_frames(5, 48, 64, seed=9)
    write_test_video(tmp_path / "short.mp4", frames, fps=24)
    dataset = VideoClipDataset(tmp_path / "short.mp4", sampling=ClipSampling(4, 2, (32, 32), random_crop=False,
                                                                              random_flip=False))
    clip = dataset.sample(0)["pixel_values_videos"]
    torch.testing.assert_close(clip[3], clip[2], rtol=0, atol=0)
    assert not torch.equal(clip[1], clip[2])


# --------------------------------------------------------------------------------------------------
# Determinism, workers, resuming, sharding, epochs
# --------------------------------------------------------------------------------------------------


def test_same_seed_same_batches_other_seed_differs(video_dir: Path):
    first, second = make_dataset(video_dir, seed=1), make_dataset(video_dir, seed=1)
    assert_batches_equal(first.batch(2), second.batch(2))
    other = make_dataset(video_dir, seed=2).batch(2)
    assert not torch.equal(first.batch(2)["pixel_values_videos"], other["pixel_values_videos"])


def test_content_independent_of_num_workers(video_dir: Path):
    dataset = make_dataset(video_dir, seed=4, num_batches=5)  # 5: not a multiple of the 2 workers
    expected = [dataset.batch(k) for k in range(5)]
    for num_workers in (0, 2):
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers)
        batches = list(loader)
        assert len(batches) == 5
        for got, want in zip(batches, expected):
            assert_batches_equal(got, want)
    # Resuming inside workers: start_batch=2 yields batches 2, 3, 4 in order.
    dataset.set_position(2)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)
    assert [batch["sample_index"].tolist() for batch in loader] == [[4, 5], [6, 7], [8, 9]]
    assert len(dataset) == 3


def test_resume_equals_skipping(video_dir: Path):
    full = iter(make_dataset(video_dir, seed=6))
    skipped = [next(full) for _ in range(5)][3:]
    resumed = make_dataset(video_dir, seed=6, start_batch=3)
    for got, want in zip(resumed, skipped):
        assert_batches_equal(got, want)
    moved = make_dataset(video_dir, seed=6)
    moved.set_position(3)
    assert_batches_equal(next(iter(moved)), skipped[0])


def test_rank_sharding_covers_the_single_rank_stream(video_dir: Path):
    ranks = [make_dataset(video_dir, rank=rank, world_size=2, batch_size=2, num_batches=3) for rank in (0, 1)]
    single = make_dataset(video_dir, batch_size=4, num_batches=3)
    seen = []
    for k, (batch0, batch1, whole) in enumerate(zip(*ranks, single)):
        indices0, indices1 = batch0["sample_index"].tolist(), batch1["sample_index"].tolist()
        assert not set(indices0) & set(indices1)
        assert indices0 + indices1 == whole["sample_index"].tolist() == list(range(4 * k, 4 * k + 4))
        # The same global sample has the same content whatever the rank layout.
        torch.testing.assert_close(torch.cat([batch0["pixel_values_videos"], batch1["pixel_values_videos"]]),
                                   whole["pixel_values_videos"], rtol=0, atol=0)
        seen += indices0 + indices1
    assert sorted(seen) == list(range(12))


def test_every_epoch_visits_every_video_once(video_dir: Path):
    dataset = make_dataset(video_dir, batch_size=4, seed=11)  # batch k = epoch k (4 videos)
    orders = []
    for epoch in range(3):
        order = dataset.batch(epoch)["video_index"].tolist()
        assert sorted(order) == [0, 1, 2, 3]
        assert order == dataset.epoch_permutation(epoch).tolist()
        orders.append(order)
    permutations = [dataset.epoch_permutation(epoch).tolist() for epoch in range(10)]
    assert len({tuple(p) for p in permutations}) > 1  # reshuffled every epoch


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------


def test_video_collection_inputs(video_dir: Path, tmp_path: Path):
    expected = sorted(os.path.abspath(video_dir / name) for name, *_ in VIDEO_SPECS)
    assert resolve_video_paths(video_dir) == expected
    assert resolve_video_paths(str(video_dir / "*.mp4")) == expected
    assert resolve_video_paths(video_dir / "c.mp4") == [expected[2]]
    assert resolve_video_paths([video_dir / "d.mp4", str(video_dir / "a.mp4")]) == [expected[0], expected[3]]

    # Recursive search, case-insensitive suffixes; other files and hidden files are skipped.
    nested = tmp_path / "tree"
    (nested / "sub" / "deeper").mkdir(parents=True)
    (nested / ".hidden").mkdir()
    for relative in ("sub/deeper/x.MP4", "sub/y.webm", "z.mkv", ".hidden/h.mp4", "._z.mp4", "notes.txt"):
        (nested / relative).write_bytes(b"")
    found = [os.path.relpath(path, nested) for path in resolve_video_paths(nested)]
    assert found == [os.path.join("sub", "deeper", "x.MP4"), os.path.join("sub", "y.webm"), "z.mkv"]
    assert resolve_video_paths(nested, extensions=("webm",)) == [os.path.abspath(nested / "sub" / "y.webm")]
    assert len(resolve_video_paths(str(nested / "**" / "*.*"))) == 4  # glob: whatever the extension

    # A list file: relative to itself, comments and blank lines ignored, sorted.
    list_file = tmp_path / "lists" / "train.txt"
    list_file.parent.mkdir()
    relative = os.path.relpath(video_dir / "b.mp4", list_file.parent)
    list_file.write_text(f"# training videos\n\n{relative}\n  {video_dir / 'a.mp4'}  \n")
    assert resolve_video_paths(list_file) == [expected[0], expected[1]]
    dataset = VideoClipDataset(list_file, sampling=SAMPLING)
    assert dataset.num_videos == 2 and dataset.batch(0)["pixel_values_videos"].shape == (1, 4, 3, 32, 32)


def test_video_collection_errors(tmp_path: Path, video_dir: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"no video files .* under the directory {empty}"):
        VideoClipDataset(empty)
    with pytest.raises(ValueError, match="matches no files"):
        VideoClipDataset(str(tmp_path / "*.mp4"))
    with pytest.raises(FileNotFoundError, match="nowhere.mp4"):
        VideoClipDataset(tmp_path / "nowhere.mp4")
    list_file = tmp_path / "list.txt"
    list_file.write_text(f"{video_dir / 'a.mp4'}\nmissing.mp4\n")
    with pytest.raises(FileNotFoundError, match=r"line 2 of .*list.txt.*missing.mp4"):
        VideoClipDataset(list_file)
    (tmp_path / "blank.txt").write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="lists no videos"):
        VideoClipDataset(tmp_path / "blank.txt")
    with pytest.raises(ValueError, match="empty sequence"):
        VideoClipDataset([])
    with pytest.raises(FileNotFoundError, match="gone.mp4"):
        VideoClipDataset([video_dir / "a.mp4", tmp_path / "gone.mp4"])
    with pytest.raises(TypeError, match="videos must be"):
        VideoClipDataset(42)


def test_bad_arguments(video_dir: Path):
    for kwargs, match in [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"rank": 2, "world_size": 2}, r"rank must be in \[0, world_size\)"),
        ({"world_size": 0}, "world_size"),
        ({"start_batch": -1}, "start_batch"),
        ({"seed": -1}, "seed"),
        ({"num_batches": -2}, "num_batches"),
    ]:
        with pytest.raises(ValueError, match=match):
            make_dataset(video_dir, **kwargs)
    with pytest.raises(TypeError, match="ClipSampling"):
        VideoClipDataset(video_dir, sampling={"num_frames": 4})
    with pytest.raises(ValueError, match="num_frames"):
        VideoClipDataset(video_dir, sampling=ClipSampling(num_frames=0))


# --------------------------------------------------------------------------------------------------
# Corrupt files
# --------------------------------------------------------------------------------------------------


def test_corrupt_file_is_skipped_with_one_warning(video_dir: Path, tmp_path: Path):
    for name in ("a.mp4", "b.mp4"):
        os.symlink(video_dir / name, tmp_path / name)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    dataset = VideoClipDataset(tmp_path, batch_size=3, sampling=SAMPLING, seed=2)
    bad_index = dataset.videos.index(os.path.abspath(bad))
    with pytest.warns(RuntimeWarning, match=r"bad\.mp4.*cannot be decoded") as caught:
        batches = [dataset.batch(k) for k in range(3)]  # three epochs, each meets the bad file
    assert sum("bad.mp4" in str(warning.message) for warning in caught) == 1
    for epoch, batch in enumerate(batches):
        permutation = dataset.epoch_permutation(epoch).tolist()
        position = permutation.index(bad_index)
        replacement = permutation[(position + 1) % 3]
        expected = [replacement if video == bad_index else video for video in permutation]
        assert batch["video_index"].tolist() == expected
    # Deterministic: a fresh dataset (fresh warning state) gives the same batch.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_batches_equal(VideoClipDataset(tmp_path, batch_size=3, sampling=SAMPLING, seed=2).batch(1), batches[1])


def test_all_files_corrupt_raises(tmp_path: Path):
    for name in ("x.mp4", "y.mp4"):
        (tmp_path / name).write_bytes(b"not a video at all" * 100)
    dataset = VideoClipDataset(tmp_path, sampling=SAMPLING)
    with pytest.warns(RuntimeWarning), pytest.raises(VideoError, match="none of the 2 videos could be decoded"):
        dataset.batch(0)


# --------------------------------------------------------------------------------------------------
# State and the generic stream
# --------------------------------------------------------------------------------------------------


def test_state_dict_round_trip_and_mismatch(video_dir: Path):
    dataset = make_dataset(video_dir, seed=8, rank=1, world_size=2, start_batch=2)
    state = dataset.state_dict(batches_consumed=3)
    assert state == {"seed": 8, "batch_size": 2, "rank": 1, "world_size": 2, "start_batch": 5}
    resumed = make_dataset(video_dir, seed=8, rank=0, world_size=2)  # any rank's state resumes any rank
    resumed.load_state_dict(state)
    assert resumed.start_batch == 5 and resumed.state_dict()["start_batch"] == 5
    for key, value in (("batch_size", 4), ("world_size", 4), ("seed", 9)):
        other = make_dataset(video_dir, **{"seed": 8, "world_size": 2, "rank": 0, key: value})
        with pytest.raises(ValueError, match=f"cannot resume: the saved stream has {key}="):
            other.load_state_dict(state)
    with pytest.raises(KeyError, match="start_batch"):
        resumed.load_state_dict({key: value for key, value in state.items() if key != "start_batch"})


class CountingStream(BatchStream):
    """Samples whose content is a function of (seed, index) through the rng."""

    def __init__(self, *args, ragged_at: int | None = None, missing_key_at: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.ragged_at, self.missing_key_at = ragged_at, missing_key_at

    def make_sample(self, index, rng):
        sample = {"value": torch.from_numpy(rng.random(3)), "index": torch.tensor(index)}
        if index == self.ragged_at:
            sample["value"] = torch.zeros(4, dtype=torch.float64)
        if index == self.missing_key_at:
            del sample["index"]
        return sample


def test_batch_stream_generic_behaviour():
    stream = CountingStream(2, seed=3, num_batches=4)
    batch = stream.batch(1)
    assert batch["index"].tolist() == batch["sample_index"].tolist() == [2, 3]
    assert torch.equal(batch["value"][0], torch.from_numpy(np.random.default_rng([3, 2]).random(3)))
    assert [b["sample_index"].tolist() for b in stream] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert len(stream) == 4
    with pytest.raises(IndexError, match="num_batches=4"):
        stream.batch(4)
    with pytest.raises(TypeError, match="infinite"):
        len(CountingStream(2))
    with pytest.raises(ValueError, match="cannot stack key 'value'"):
        CountingStream(2, ragged_at=1).batch(0)
    with pytest.raises(ValueError, match="key 'index' is only in one"):
        CountingStream(2, missing_key_at=1).batch(0)
    with pytest.raises(NotImplementedError, match="make_sample"):
        BatchStream(1).batch(0)
    assert (BatchStream(1).rank, BatchStream(1).world_size) == (0, 1)  # no process group: single process
    assert "CountingStream(batch_size=2, seed=3" in repr(stream)
