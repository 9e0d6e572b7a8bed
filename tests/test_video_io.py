"""Tests for fourd_hub.video_io: reading (files and in-memory frames), frame selection and writing.

Every video here is synthesised by ``video_factory`` (written with PyAV directly, independently of
the writer under test) into pytest's temporary directories; nothing is downloaded.
"""

from __future__ import annotations

import io
import os
import re
import time
import tracemalloc
import types
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from fourd_hub.video_io import (
    DEFAULT_FPS,
    VideoError,
    VideoMetadata,
    VideoReader,
    VideoWriter,
    load_video,
    open_video,
    select_frames,
    write_png_frames,
    write_video,
)
from video_factory import (
    moving_shapes_frames,
    png_declaring_size,
    write_image_frames,
    write_test_video,
    write_vfr_test_video,
    write_y4m_declaring_size,
)

T, H, W, FPS = 24, 72, 96, 24
# libx264 at crf 12 (video_factory) / 18 (VideoWriter) on smooth synthetic content. Separate encodes
# of the same frames are not compared bit for bit: x264's output can vary between processes.
MAX_MEAN_ABS_ERROR = 6.0


def mean_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def assert_frames_match(decoded: np.ndarray, original: np.ndarray, indices=None) -> None:
    """Decoded frames are close to ``original[indices]``, and each is closest to its own original among all
    of them (so a shifted, repeated or reordered frame fails)."""
    indices = np.arange(len(original)) if indices is None else np.asarray(indices)
    assert decoded.shape == original[indices].shape and decoded.dtype == np.uint8
    assert mean_abs_error(decoded, original[indices]) < MAX_MEAN_ABS_ERROR
    for frame, index in zip(decoded, indices):
        errors = [mean_abs_error(frame, candidate) for candidate in original]
        assert int(np.argmin(errors)) == index


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return moving_shapes_frames(T, H, W, seed=0)


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def video_path(video_dir: Path, frames: np.ndarray) -> Path:
    return write_test_video(video_dir / "shapes.mp4", frames, fps=FPS)


@pytest.fixture(scope="module")
def decoded(video_path: Path) -> np.ndarray:
    with open_video(video_path) as reader:
        return reader.read()


def write_audio_only(path: Path) -> Path:
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100, layout="mono")
        silence = np.zeros((1, 1024), dtype=np.float32)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(silence, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


class CountingReader(io.RawIOBase):
    """A seekable binary file object that counts the bytes read through it."""

    def __init__(self, data: bytes) -> None:
        self._buffer = io.BytesIO(data)
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        chunk = self._buffer.read(len(buffer))
        buffer[: len(chunk)] = chunk
        self.bytes_read += len(chunk)
        return len(chunk)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._buffer.seek(offset, whence)

    def tell(self) -> int:
        return self._buffer.tell()


class PipeReader(io.RawIOBase):
    """A non-seekable binary stream, like a pipe or an HTTP response body."""

    def __init__(self, data: bytes) -> None:
        self._buffer = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:  # type: ignore[override]
        chunk = self._buffer.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# ------------------------------------------------------------------------------------------------
# Files: round trips
# ------------------------------------------------------------------------------------------------


def test_file_round_trip_metadata_and_pixels(video_path: Path, frames: np.ndarray, decoded: np.ndarray) -> None:
    with open_video(video_path) as reader:
        meta = reader.metadata
        assert isinstance(reader, VideoReader) and len(reader) == T
        np.testing.assert_allclose(reader.timestamps, np.arange(T) / FPS, atol=1e-9)
    assert meta == VideoMetadata(
        num_frames=T,
        fps=24.0,
        width=W,
        height=H,
        duration=1.0,
        rotation=0,
        codec="h264",
        has_audio=False,
        variable_frame_rate=False,
        source=str(video_path),
    )
    assert_frames_match(decoded, frames)


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "file object", "non-seekable file object"])
def test_encoded_in_memory_sources_decode_like_the_path(video_path: Path, decoded: np.ndarray, kind: str) -> None:
    data = video_path.read_bytes()
    source = {
        "bytes": lambda: data,
        "bytearray": lambda: bytearray(data),
        "memoryview": lambda: memoryview(data),
        "file object": lambda: io.BytesIO(data),
        "non-seekable file object": lambda: PipeReader(data),
    }[kind]()
    with open_video(source) as reader:
        assert reader.metadata.source == ("<bytes>" if kind in ("bytes", "bytearray", "memoryview") else "<file object>")
        assert (reader.metadata.num_frames, reader.metadata.width, reader.metadata.height) == (T, W, H)
        assert reader.metadata.codec == "h264" and reader.metadata.fps == 24.0
        np.testing.assert_array_equal(reader.read(), decoded)
        # A second pass re-opens (or rewinds) the source.
        np.testing.assert_array_equal(reader.read([3, 4]), decoded[[3, 4]])


def test_open_file_object_from_disk(video_path: Path, decoded: np.ndarray) -> None:
    with open(video_path, "rb") as handle, open_video(handle) as reader:
        np.testing.assert_array_equal(reader.read([0, 23]), decoded[[0, 23]])
        assert not handle.closed  # the caller's file stays the caller's to close


def test_iter_frames_selected_indices(video_path: Path, decoded: np.ndarray) -> None:
    indices = [0, 5, 6, 17, 23]
    with open_video(video_path) as reader:
        iterator = reader.iter_frames(np.array(indices))
        assert isinstance(iterator, types.GeneratorType)
        got = list(iterator)
        assert [i for i, _ in got] == indices
        for i, frame in got:
            assert frame.shape == (H, W, 3) and frame.dtype == np.uint8 and frame.flags.c_contiguous
            np.testing.assert_array_equal(frame, decoded[i])
        np.testing.assert_array_equal(reader.read(indices), decoded[indices])
        assert reader.read([]).shape == (0, H, W, 3)


def test_two_passes_over_a_path_can_interleave(video_path: Path, decoded: np.ndarray) -> None:
    with open_video(video_path) as reader:
        pairs = list(zip(reader.iter_frames([1, 2, 3]), reader.iter_frames([10, 11, 12])))
    assert [(a[0], b[0]) for a, b in pairs] == [(1, 10), (2, 11), (3, 12)]
    np.testing.assert_array_equal(pairs[2][1][1], decoded[12])


def test_file_object_allows_one_pass_at_a_time(video_path: Path) -> None:
    with open_video(io.BytesIO(video_path.read_bytes())) as reader:
        first = reader.iter_frames()
        next(first)
        with pytest.raises(VideoError, match="still open"):
            next(reader.iter_frames())
        first.close()
        assert next(reader.iter_frames())[0] == 0


def test_file_decoding_is_lazy_and_stops_after_the_last_requested_frame(tmp_path: Path) -> None:
    # Noise does not compress, so the file (~300 KB) is much larger than FFmpeg's 32 KiB read buffer.
    noise = np.random.default_rng(1).integers(0, 256, size=(120, 48, 64, 3), dtype=np.uint8)
    data = write_test_video(tmp_path / "noise.mp4", noise).read_bytes()
    counting = CountingReader(data)
    with open_video(counting) as reader:
        counting.bytes_read = 0
        iterator = reader.iter_frames()
        index, frame = next(iterator)
        assert index == 0 and frame.shape == (48, 64, 3)
        # Yielded before reading (let alone decoding) the rest; the margin covers read-ahead buffers
        # and the packets that frame-threaded decoding consumes before its first output.
        assert counting.bytes_read < len(data) / 2
        iterator.close()
        counting.bytes_read = 0
        assert [i for i, _ in reader.iter_frames([0, 1])] == [0, 1]
        assert counting.bytes_read < len(data) / 2  # stopped after frame 1


def test_odd_frame_size_is_padded_to_even_by_edge_replication(tmp_path: Path, frames: np.ndarray) -> None:
    odd = np.ascontiguousarray(frames[:8, :71, :95])
    path = write_video(tmp_path / "odd.mp4", odd, fps=8)
    with open_video(path) as reader:
        assert (reader.metadata.height, reader.metadata.width) == (72, 96)
        video = reader.read()
    assert mean_abs_error(video[:, :71, :95], odd) < MAX_MEAN_ABS_ERROR
    # The added row/column replicate the last ones (up to compression error).
    assert mean_abs_error(video[:, 71, :95], odd[:, 70]) < 2 * MAX_MEAN_ABS_ERROR
    assert mean_abs_error(video[:, :71, 95], odd[:, :, 94]) < 2 * MAX_MEAN_ABS_ERROR


def test_audio_stream_is_ignored(tmp_path: Path, frames: np.ndarray) -> None:
    path = write_test_video(tmp_path / "with_audio.mp4", frames, fps=FPS, audio=True)
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 1  # the fixture really has audio
    with open_video(path) as reader:
        assert reader.metadata.has_audio and reader.metadata.num_frames == T and reader.metadata.fps == 24.0
        assert_frames_match(reader.read(), frames)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_display_matrix_rotation_is_applied(tmp_path: Path, frames: np.ndarray, rotation: int) -> None:
    path = write_test_video(tmp_path / f"rotated_{rotation}.mp4", frames, fps=FPS, rotation=rotation)
    with open_video(path) as reader:
        meta = reader.metadata
        video = reader.read([0, 7])
    assert meta.rotation == rotation
    expected_hw = (W, H) if rotation in (90, 270) else (H, W)
    assert (meta.height, meta.width) == expected_hw
    assert video.shape == (2, *expected_hw, 3)
    # np.rot90 turns counter-clockwise, the direction the display matrix asks for; any other
    # orientation of the same shape is far off.
    for k in range(4):
        candidate = np.rot90(frames[[0, 7]], k=k, axes=(1, 2))
        if candidate.shape == video.shape:
            error = mean_abs_error(video, candidate)
            assert error < MAX_MEAN_ABS_ERROR if k == rotation // 90 else error > 4 * MAX_MEAN_ABS_ERROR


def test_variable_frame_rate_timestamps(tmp_path: Path, frames: np.ndarray) -> None:
    times = [0.0, 0.04, 0.1, 0.13, 0.3, 0.31, 0.5]
    path = write_vfr_test_video(tmp_path / "vfr.mp4", frames[: len(times)], times)
    with open_video(path) as reader:
        assert reader.metadata.variable_frame_rate
        assert reader.metadata.num_frames == len(times)
        np.testing.assert_allclose(reader.timestamps, times, atol=1 / 90_000)
        assert reader.metadata.duration is not None and reader.metadata.duration > 0.5
        # Grid 0, 0.2, 0.4 s -> frames at 0, 0.13 (nearer 0.2 than 0.3) and 0.31 (nearer 0.4 than 0.5).
        selected = select_frames(len(reader), reader.timestamps, fps=5)
        np.testing.assert_array_equal(selected, [0, 3, 5])
        assert_frames_match(reader.read(selected), frames[: len(times)], selected)


def test_constant_frame_rate_is_not_variable(video_path: Path) -> None:
    with open_video(video_path) as reader:
        assert not reader.metadata.variable_frame_rate


def test_greyscale_file_comes_out_rgb(tmp_path: Path, frames: np.ndarray) -> None:
    path = write_test_video(tmp_path / "gray.mp4", frames, codec="png", pixel_format="gray")
    with open_video(path) as reader:
        video = reader.read()
    assert video.shape == (T, H, W, 3)
    assert np.array_equal(video[..., 0], video[..., 1]) and np.array_equal(video[..., 1], video[..., 2])
    luma = frames @ np.array([0.299, 0.587, 0.114])
    assert np.abs(video[..., 0] - luma).max() < 2


def test_rgba_file_drops_alpha(tmp_path: Path, frames: np.ndarray) -> None:
    path = write_test_video(tmp_path / "rgba.mp4", frames, codec="png", pixel_format="rgba")
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "rgba"
    with open_video(path) as reader:
        np.testing.assert_array_equal(reader.read(), frames)  # lossless PNG: exact


# ------------------------------------------------------------------------------------------------
# In-memory frames
# ------------------------------------------------------------------------------------------------


def test_uint8_array_is_yielded_unchanged(frames: np.ndarray) -> None:
    with open_video(frames) as reader:
        assert reader.metadata == VideoMetadata(
            num_frames=T, fps=30.0, width=W, height=H, duration=T / 30.0, rotation=0, codec=None,
            has_audio=False, variable_frame_rate=False, source="<array>",
        )
        np.testing.assert_allclose(reader.timestamps, np.arange(T) / 30.0)
        np.testing.assert_array_equal(reader.read(), frames)
        np.testing.assert_array_equal(reader.read([2, 9]), frames[[2, 9]])


def test_in_memory_fps(frames: np.ndarray) -> None:
    with open_video(frames, fps=12.5) as reader:
        assert reader.metadata.fps == 12.5 and reader.metadata.duration == pytest.approx(T / 12.5)
        np.testing.assert_allclose(reader.timestamps, np.arange(T) / 12.5)
    for bad in (0, -1.0, float("nan"), float("inf"), "fast"):
        with pytest.raises(VideoError, match="fps"):
            open_video(frames, fps=bad)


def test_fps_is_refused_for_files(video_path: Path) -> None:
    with pytest.raises(VideoError, match=r"fps= is only for in-memory frames and image sequences .*; video files carry their"):
        open_video(video_path, fps=10)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_array_in_unit_range(dtype: type) -> None:
    values = np.random.default_rng(0).random((3, 8, 10, 3)).astype(dtype)
    values[0, 0, 0] = [0.0, 1.0, 0.5]
    video, _ = load_video(values)
    np.testing.assert_array_equal(video, np.rint(values.astype(np.float32) * 255).astype(np.uint8))
    assert video[0, 0, 0].tolist() == [0, 255, 128]


def test_float_array_out_of_range_is_refused() -> None:
    values = np.full((2, 4, 4, 3), 0.5, dtype=np.float32)
    values[1, 0, 0, 0] = 200.0
    with open_video(values) as reader:
        assert reader.read([0]).shape == (1, 4, 4, 3)  # validated per frame, lazily
        with pytest.raises(VideoError, match=r"frame 1 .*\[0, 1\].*divide by 255"):
            reader.read()
    values[1, 0, 0, 0] = -0.1
    with pytest.raises(VideoError, match=r"frame 1 .*\[0, 1\]"):
        load_video(values)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(bad: float) -> None:
    values = np.zeros((2, 4, 4, 3), dtype=np.float32)
    values[0, 1, 1, 2] = bad
    with pytest.raises(VideoError, match="frame 0 .*NaN or infinite"):
        load_video(values)


@pytest.mark.parametrize(
    ("dtype", "fix"), [(np.uint16, "65535"), (np.bool_, "astype"), (np.int64, "uint8"), (np.int8, "uint8")]
)
def test_unsupported_array_dtype(dtype: type, fix: str) -> None:
    with pytest.raises(VideoError, match=rf"unsupported frame dtype {np.dtype(dtype)}.*{fix}"):
        open_video(np.zeros((2, 4, 4, 3), dtype=dtype))


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((4, 4), "unsupported array shape"),
        ((2, 4, 4, 2), r"unsupported array shape \(2, 4, 4, 2\).*\(T, H, W, 3\)"),
        ((2, 3, 8, 8), "channels-first: use frames.transpose"),
        ((8, 8, 3), "single .* image is not a video"),
        ((1, 2, 4, 4, 3), "pass one video at a time"),
    ],
)
def test_wrong_array_shape(shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(VideoError, match=message):
        open_video(np.zeros(shape, dtype=np.uint8))


def test_empty_array_is_refused() -> None:
    with pytest.raises(VideoError, match="no frames"):
        open_video(np.zeros((0, 4, 4, 3), dtype=np.uint8))


def test_greyscale_and_alpha_arrays_become_rgb(frames: np.ndarray) -> None:
    grey = frames[..., 1]
    expected_grey = np.repeat(grey[..., None], 3, axis=-1)
    np.testing.assert_array_equal(load_video(grey)[0], expected_grey)
    np.testing.assert_array_equal(load_video(grey[..., None])[0], expected_grey)
    rgba = np.concatenate([frames, np.full((T, H, W, 1), 7, dtype=np.uint8)], axis=-1)
    np.testing.assert_array_equal(load_video(rgba)[0], frames)


def test_pil_images(frames: np.ndarray) -> None:
    rgba = [Image.fromarray(f).convert("RGBA") for f in frames[:3]]
    video, meta = load_video(rgba)
    np.testing.assert_array_equal(video, frames[:3])
    assert meta.source == "<PIL images>" and meta.num_frames == 3
    grey = tuple(Image.fromarray(f).convert("L") for f in frames[:2])
    video, _ = load_video(grey)
    expected = np.repeat(np.stack([np.asarray(image) for image in grey])[..., None], 3, axis=-1)
    np.testing.assert_array_equal(video, expected)


def test_pil_errors(frames: np.ndarray) -> None:
    images = [Image.fromarray(f) for f in frames[:4]]
    images[2] = images[2].resize((W // 2, H // 2))
    with pytest.raises(VideoError, match=f"PIL image 2 is {W // 2}x{H // 2} but image 0 is {W}x{H}"):
        open_video(images)
    with pytest.raises(VideoError, match="empty"):
        open_video([])
    with pytest.raises(VideoError, match="item 1 .*ndarray.*np.stack"):
        open_video([images[0], frames[1]])
    with pytest.raises(TypeError, match="list of PIL images"):
        open_video(images[0])


def test_torch_channels_first_and_last_agree(frames: np.ndarray) -> None:
    thwc = torch.from_numpy(frames)
    tchw = thwc.permute(0, 3, 1, 2)
    from_last, meta_last = load_video(thwc)
    from_first, meta_first = load_video(tchw)
    np.testing.assert_array_equal(from_last, frames)
    np.testing.assert_array_equal(from_first, frames)
    assert meta_last == meta_first and meta_last.source == "<tensor>" and (meta_last.height, meta_last.width) == (H, W)


def test_torch_ambiguous_layout_is_channels_last() -> None:
    # (T, 3, 4, 3): both readings are possible; channels-last wins.
    tensor = torch.arange(2 * 3 * 4 * 3, dtype=torch.uint8).reshape(2, 3, 4, 3)
    video, meta = load_video(tensor)
    assert (meta.height, meta.width) == (3, 4)
    np.testing.assert_array_equal(video, tensor.numpy())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_torch_float_tensors(dtype: torch.dtype) -> None:
    tensor = torch.rand(3, 3, 6, 8, generator=torch.Generator().manual_seed(0)).to(dtype).requires_grad_(dtype != torch.float16)
    video, _ = load_video(tensor)
    expected = np.rint(tensor.detach().float().permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    np.testing.assert_array_equal(video, expected)


def test_torch_errors() -> None:
    with pytest.raises(VideoError, match="pass one video at a time"):
        open_video(torch.zeros(2, 4, 3, 8, 8))
    with pytest.raises(VideoError, match="unsupported frame dtype torch.int32"):
        open_video(torch.zeros(2, 8, 8, 3, dtype=torch.int32))
    with pytest.raises(VideoError, match=r"unsupported tensor shape \(2, 5, 8, 8\)"):
        open_video(torch.zeros(2, 5, 8, 8))
    with pytest.raises(VideoError, match="NaN"):
        load_video(torch.full((1, 4, 4, 3), float("nan")))


def test_unsupported_source_type() -> None:
    with pytest.raises(TypeError, match="unsupported video source of type int"):
        open_video(42)


# ------------------------------------------------------------------------------------------------
# Laziness and guards
# ------------------------------------------------------------------------------------------------


def test_array_frames_are_converted_lazily() -> None:
    # 10000 frames of 64x64 would be 123 MB if materialised; broadcast_to stores one frame.
    one = np.random.default_rng(0).integers(0, 256, size=(1, 64, 64, 3), dtype=np.uint8)
    huge = np.broadcast_to(one, (10_000, 64, 64, 3))
    tracemalloc.start()
    try:
        started = time.perf_counter()
        with open_video(huge) as reader:
            got = list(reader.iter_frames([0, 5_000, 9_999]))
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [i for i, _ in got] == [0, 5_000, 9_999]
    np.testing.assert_array_equal(got[2][1], one[0])
    assert peak < 5_000_000 and elapsed < 1.0


def test_huge_frames_are_refused_before_anything_is_copied() -> None:
    pixel = np.zeros((1, 1, 1, 3), dtype=np.uint8)
    with pytest.raises(VideoError, match=r"10000x10000 .*max_frame_pixels="):
        open_video(np.broadcast_to(pixel, (2, 10_000, 10_000, 3)))
    with pytest.raises(VideoError, match=r"10000x10000 .*max_frame_pixels="):
        open_video(torch.zeros(1, 1, 1, 3, dtype=torch.uint8).expand(2, 10_000, 10_000, 3))
    small = np.broadcast_to(pixel, (2, 100, 100, 3))
    with pytest.raises(VideoError, match="100x100"):
        open_video(small, max_frame_pixels=9_999)
    assert len(open_video(small, max_frame_pixels=10_000)) == 2
    with pytest.raises(VideoError, match="max_frame_pixels="):
        open_video([Image.new("RGB", (100, 100))], max_frame_pixels=9_999)


def test_huge_file_frames_are_refused(video_path: Path) -> None:
    with pytest.raises(VideoError, match=rf"{W}x{H} pixels .*limit of {W * H - 1:,} .*pass max_frame_pixels="):
        open_video(video_path, max_frame_pixels=W * H - 1)
    assert len(open_video(video_path, max_frame_pixels=W * H)) == T


@pytest.mark.parametrize("size", [(100_000, 100_000), (6_000, 6_000)])
def test_header_declaring_huge_frames_gets_the_guard_message(tmp_path: Path, size: tuple[int, int]) -> None:
    # 100000x100000: FFmpeg's Y4M demuxer refuses to open it ("Device or resource busy"), so the size is
    # read from the header; 6000x6000 opens, and the guard reads the codec context. Either way: the guard.
    width, height = size
    path = write_y4m_declaring_size(tmp_path / "bomb.y4m", moving_shapes_frames(2, 16, 16), width, height)
    assert path.stat().st_size < 2_000
    guard = rf"{width}x{height} pixels \({width * height:,}\) exceed the limit of .*max_frame_pixels="
    with pytest.raises(VideoError, match=rf"bomb\.y4m: frames of {guard}"):
        open_video(path)
    with pytest.raises(VideoError, match=rf"<bytes>: frames of {guard}"):
        open_video(path.read_bytes())
    with path.open("rb") as handle, pytest.raises(VideoError, match=rf"<file object>: frames of {guard}"):
        open_video(handle)


def test_image_header_declaring_huge_frames_gets_the_guard_message(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring_size(np.zeros((8, 8, 3), np.uint8), 100_000, 100_000))
    with pytest.raises(VideoError, match=r"bomb\.png: frames of 100000x100000 pixels .*max_frame_pixels="):
        open_video(path)


def test_declared_size_within_the_guard_keeps_the_usual_message(tmp_path: Path) -> None:
    # A small declared size is not blamed: the file is reported as unreadable, as before.
    path = write_y4m_declaring_size(tmp_path / "small.y4m", moving_shapes_frames(2, 16, 16), 16, 16)
    path.write_bytes(path.read_bytes()[:60])  # header and part of the first frame only
    with pytest.raises(VideoError) as caught:
        load_video(path)
    assert "exceed the limit" not in str(caught.value)


def test_meta_tensor_is_refused_naming_the_device() -> None:
    with pytest.raises(VideoError, match="'meta' device .*holds no data"):
        open_video(torch.zeros(4, 16, 16, 3, dtype=torch.uint8, device="meta"))
    with pytest.raises(VideoError, match="layout torch.sparse_coo"):
        open_video(torch.zeros(4, 16, 16, 3).to_sparse())


def test_min_frames(tmp_path: Path, frames: np.ndarray) -> None:
    one = write_test_video(tmp_path / "one.mp4", frames[:1])
    with open_video(one) as reader:
        assert len(reader) == 1 and reader.read().shape == (1, H, W, 3)
    with pytest.raises(VideoError, match="this video has 1 frame; at least 2 are needed"):
        open_video(one, min_frames=2)
    with pytest.raises(VideoError, match="this video has 3 frames; at least 4 are needed"):
        open_video(frames[:3], min_frames=4)


def test_bad_indices_raise_before_decoding(video_path: Path) -> None:
    with open_video(video_path) as reader:
        cases = [
            ([-1, 2], "negative frame index -1"),
            ([0, T], f"frame index {T} is out of range for a video of {T} frames"),
            ([3, 2], "strictly increasing.*got 2 after 3"),
            ([1, 1], "strictly increasing"),
            ([0.5, 2.0], "must be integers"),
            ([[0, 1]], "1-D"),
        ]
        for indices, message in cases:
            with pytest.raises(VideoError, match=message):
                reader.iter_frames(indices)  # raised by the call itself, not at the first next()
            with pytest.raises(VideoError, match=message):
                reader.read(indices)
    with pytest.raises(VideoError, match="closed"):
        reader.iter_frames()


# ------------------------------------------------------------------------------------------------
# Bad files
# ------------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError, match=f"video file not found: {missing}"):
        open_video(missing)
    with pytest.raises(FileNotFoundError):
        load_video(str(missing))


def test_directory_empty_and_non_video_files(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="is a directory"):
        open_video(tmp_path)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty.mp4 is empty"):
        open_video(empty)
    with pytest.raises(VideoError, match="empty"):
        open_video(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match=r"notes.mp4 is not a readable video .*ffmpeg -i"):
        open_video(text)
    with pytest.raises(VideoError, match="not a readable video"):
        open_video(text.read_bytes())
    audio_only = write_audio_only(tmp_path / "audio.mp4")
    with pytest.raises(VideoError, match="audio.mp4 is not a readable video .*no video stream; streams found: audio"):
        open_video(audio_only)
    with open(text, encoding="utf-8") as handle, pytest.raises(VideoError, match="binary mode"):
        open_video(handle)


@pytest.mark.parametrize("faststart", [False, True], ids=["moov-at-end", "faststart"])
@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_truncated_files_never_yield_fewer_frames(tmp_path: Path, frames: np.ndarray, faststart: bool, keep: float) -> None:
    data = write_test_video(tmp_path / "full.mp4", frames, faststart=faststart).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(VideoError, match="truncated or corrupt|not a readable video") as info:
        with open_video(cut) as reader:  # refused here (the demux pass sees the damage) ...
            reader.read()  # ... or here, but never a short array
    assert not isinstance(info.value, av.FFmpegError) and info.value.__cause__ is None
    assert str(cut) in str(info.value)


def test_file_cut_at_a_packet_boundary_is_refused(tmp_path: Path, frames: np.ndarray) -> None:
    # Every remaining packet is intact, so only the header's frame count reveals the missing ones.
    path = write_test_video(tmp_path / "full.mp4", frames, faststart=True)
    with av.open(str(path)) as container:
        positions = [packet.pos for packet in container.demux(video=0) if packet.size]
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: positions[12]])
    with pytest.raises(VideoError, match=f"cut.mp4 is truncated or corrupt: its header declares {T} frames but only 12"):
        open_video(cut)


def test_corrupt_data_mid_stream_fails_during_iteration(tmp_path: Path, frames: np.ndarray) -> None:
    data = bytearray(write_test_video(tmp_path / "full.mp4", frames).read_bytes())
    # Zero 20% of the media data (the index at the end survives, so every packet still demuxes).
    start, stop = int(len(data) * 0.5), int(len(data) * 0.7)
    data[start:stop] = bytes(stop - start)
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    with open_video(path) as reader:
        assert len(reader) == T
        assert_frames_match(reader.read([0, 1]), frames, [0, 1])  # the intact start decodes
        yielded = []
        with pytest.raises(VideoError, match=rf"only decoded \d+ of {T} frames .*truncated or corrupt"):
            for index, _ in reader.iter_frames():
                yielded.append(index)
    assert 0 < len(yielded) < T and yielded == list(range(len(yielded)))


# ------------------------------------------------------------------------------------------------
# select_frames
# ------------------------------------------------------------------------------------------------


def test_select_frames_default_and_range() -> None:
    np.testing.assert_array_equal(select_frames(5), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(select_frames(10, start=3, end=6), [3, 4, 5])
    assert select_frames(10).dtype == np.int64


def test_select_frames_stride() -> None:
    np.testing.assert_array_equal(select_frames(10, stride=3), [0, 3, 6, 9])
    np.testing.assert_array_equal(select_frames(10, stride=3, start=1, end=10), [1, 4, 7])
    np.testing.assert_array_equal(select_frames(10, stride=20), [0])


def test_select_frames_num_frames() -> None:
    np.testing.assert_array_equal(select_frames(12, num_frames=4, start=2), [2, 5, 8, 11])
    # linspace(0, 9, 5) = 0, 2.25, 4.5, 6.75, 9 -> rounded half to even.
    np.testing.assert_array_equal(select_frames(10, num_frames=5), [0, 2, 4, 7, 9])
    np.testing.assert_array_equal(select_frames(10, num_frames=1, start=4), [4])
    np.testing.assert_array_equal(select_frames(7, num_frames=7), np.arange(7))
    with pytest.raises(VideoError, match="cannot select 8 frames from 7 frames"):
        select_frames(7, num_frames=8)


def test_select_frames_fps_constant_rate() -> None:
    times = np.arange(30) / 30.0
    np.testing.assert_array_equal(select_frames(30, times, fps=15), np.arange(0, 30, 2))
    np.testing.assert_array_equal(select_frames(30, times, fps=10), np.arange(0, 30, 3))
    # Grid k/7 s, k = 0..6 (6/7 <= 29/30): nearest frames round(k * 30 / 7).
    np.testing.assert_array_equal(select_frames(30, times, fps=7), [0, 4, 9, 13, 17, 21, 26])
    # At or above the source rate: every frame once, never duplicated.
    np.testing.assert_array_equal(select_frames(30, times, fps=30), np.arange(30))
    np.testing.assert_array_equal(select_frames(30, times, fps=31), np.arange(30))
    np.testing.assert_array_equal(select_frames(30, times, fps=1000), np.arange(30))
    # The grid starts at frame `start`: times 5/30 + k/10 up to 19/30.
    np.testing.assert_array_equal(select_frames(30, times, fps=10, start=5, end=20), [5, 8, 11, 14, 17])


def test_select_frames_fps_variable_rate() -> None:
    times = np.array([0.0, 0.04, 0.1, 0.13, 0.3, 0.31, 0.5])
    # Grid 0, .1, .2, .3, .4, .5: .2 is nearer .13 (frame 3) than .3; .4 nearer .31 (frame 5) than .5.
    np.testing.assert_array_equal(select_frames(7, times, fps=10), [0, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(select_frames(7, times, fps=5), [0, 3, 5])
    # A tie (grid time 2 between frames at 1 and 3) goes to the earlier frame.
    np.testing.assert_array_equal(select_frames(4, np.array([0.0, 1.0, 3.0, 4.0]), fps=0.5), [0, 1, 3])


def test_select_frames_fps_matches_brute_force_on_random_timestamps() -> None:
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.uniform(0.01, 0.1, size=200))
    for fps in (2.0, 5.5, 11.0):
        grid = times[0] + np.arange(int(np.floor((times[-1] - times[0]) * fps)) + 1) / fps
        brute = np.unique(np.abs(times[None, :] - grid[:, None]).argmin(axis=1))
        np.testing.assert_array_equal(select_frames(200, times, fps=fps), brute)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": -1}, "start=-1 is negative"),
        ({"start": 5, "end": 5}, r"\[start=5, end=5\) is empty"),
        ({"start": 6, "end": 5}, "is empty"),
        ({"end": 11}, "end=11 is past the end of the video"),
        ({"stride": 0}, "stride must be an integer >= 1"),
        ({"stride": 1.5}, "stride must be an integer >= 1"),
        ({"num_frames": 0}, "num_frames must be an integer >= 1"),
        ({"fps": 0}, "fps must be a positive"),
        ({"fps": -2.0}, "fps must be a positive"),
        ({"fps": float("nan")}, "fps must be a positive"),
        ({"fps": float("inf")}, "fps must be a positive"),
        ({"num_frames": 2, "stride": 2}, "at most one of .* num_frames and stride"),
        ({"stride": 2, "fps": 5.0}, "at most one of .* stride and fps"),
    ],
)
def test_select_frames_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(VideoError, match=message):
        select_frames(10, np.arange(10) / 10.0, **kwargs)


def test_select_frames_fps_needs_valid_timestamps() -> None:
    with pytest.raises(VideoError, match="needs the frame timestamps"):
        select_frames(10, fps=5)
    with pytest.raises(VideoError, match=r"shape \(10,\)"):
        select_frames(10, np.arange(9) / 10.0, fps=5)
    with pytest.raises(VideoError, match="non-decreasing"):
        select_frames(3, np.array([0.0, 0.2, 0.1]), fps=5)


def test_load_video_selects_frames(video_path: Path, decoded: np.ndarray, frames: np.ndarray) -> None:
    video, meta = load_video(video_path, num_frames=4)
    np.testing.assert_array_equal(video, decoded[[0, 8, 15, 23]])
    assert meta.num_frames == T  # metadata describes the source, not the selection
    video, _ = load_video(frames, source_fps=24, fps=8, start=3)
    np.testing.assert_array_equal(video, frames[3::3])
    with pytest.raises(VideoError, match="fps= is only for in-memory frames"):
        load_video(video_path, source_fps=24)


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------


def test_write_video_round_trip(tmp_path: Path, frames: np.ndarray) -> None:
    path = write_video(tmp_path / "out.mp4", iter(frames), fps=FPS)  # a generator streams
    assert path == tmp_path / "out.mp4"
    with open_video(path) as reader:
        assert (reader.metadata.num_frames, reader.metadata.height, reader.metadata.width) == (T, H, W)
        assert reader.metadata.fps == 24.0 and reader.metadata.codec == "h264"
        assert_frames_match(reader.read(), frames)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    assert os.listdir(tmp_path) == ["out.mp4"]  # no temporary file left behind


@pytest.mark.parametrize(("fps", "interval"), [(29.97, 1001 / 30000), (12.5, 0.08), (60, 1 / 60)])
def test_written_frame_rate(tmp_path: Path, frames: np.ndarray, fps: float, interval: float) -> None:
    path = write_video(tmp_path / "rate.mp4", frames[:6], fps=fps)
    with open_video(path) as reader:
        assert reader.metadata.fps == pytest.approx(fps, abs=1e-3)
        assert len(reader) == 6 and not reader.metadata.variable_frame_rate
        np.testing.assert_allclose(np.diff(reader.timestamps), interval, atol=1e-6)


def test_writer_streams_into_a_hidden_temporary_file(tmp_path: Path, frames: np.ndarray) -> None:
    target = tmp_path / "streamed.mp4"
    with VideoWriter(target, fps=FPS) as writer:
        writer.write(frames[0])
        assert not target.exists()
        (temp,) = os.listdir(tmp_path)
        assert temp.startswith(".") and temp != target.name
        writer.write(frames[1])
        assert writer.frames_written == 2
    assert os.listdir(tmp_path) == ["streamed.mp4"]
    assert writer.close() == target  # idempotent
    with pytest.raises(VideoError, match="already closed"):
        writer.write(frames[2])


def test_exception_inside_with_leaves_nothing(tmp_path: Path, frames: np.ndarray) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(tmp_path / "broken.mp4", fps=FPS) as writer:
            writer.write(frames[0])
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_the_existing_file(tmp_path: Path, frames: np.ndarray) -> None:
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"previous content")
    with pytest.raises(VideoError, match=f"frame 1 is {W // 2}x{H} but the first frame was {W}x{H}"):
        with VideoWriter(target, fps=FPS) as writer:
            writer.write(frames[0])
            writer.write(np.ascontiguousarray(frames[1, :, : W // 2]))
    assert target.read_bytes() == b"previous content"
    assert os.listdir(tmp_path) == ["keep.mp4"]
    # A successful write replaces it.
    write_video(target, frames[:2], fps=FPS)
    assert len(open_video(target)) == 2


def test_unsupported_pixel_format_for_encoder_cleans_up(tmp_path: Path, frames: np.ndarray) -> None:
    with pytest.raises(VideoError, match="libx264 .*pixel_format='yuva420p'") as info:
        write_video(tmp_path / "alpha.mp4", frames[:2], fps=FPS, pixel_format="yuva420p")
    assert info.value.__cause__ is None and not isinstance(info.value, av.FFmpegError)
    assert os.listdir(tmp_path) == []


def test_writer_argument_errors(tmp_path: Path, frames: np.ndarray) -> None:
    with pytest.raises(VideoError, match="no frames to write"):
        write_video(tmp_path / "none.mp4", [], fps=FPS)
    assert os.listdir(tmp_path) == []
    with pytest.raises(VideoError, match=r"must end in \.mp4"):
        write_video(tmp_path / "clip.avi", frames[:1], fps=FPS)
    with pytest.raises(VideoError, match="does not exist"):
        VideoWriter(tmp_path / "missing_dir" / "a.mp4", fps=FPS)
    with pytest.raises(VideoError, match="fps"):
        VideoWriter(tmp_path / "a.mp4", fps=0)
    with pytest.raises(VideoError, match="unknown video encoder 'nope'"):
        VideoWriter(tmp_path / "a.mp4", fps=FPS, codec="nope")
    with pytest.raises(VideoError, match="unknown pixel format"):
        VideoWriter(tmp_path / "a.mp4", fps=FPS, pixel_format="nope")
    with pytest.raises(VideoError, match=r"crf must be an integer in \[0, 51\]"):
        VideoWriter(tmp_path / "a.mp4", fps=FPS, crf=70)
    with pytest.raises(VideoError, match=r"dtype float32.*\* 255"):
        write_video(tmp_path / "a.mp4", [frames[0].astype(np.float32) / 255], fps=FPS)
    with pytest.raises(VideoError, match=r"shape \(72, 96\).*\(H, W, 3\)"):
        write_video(tmp_path / "a.mp4", [frames[0, ..., 0]], fps=FPS)
    assert os.listdir(tmp_path) == []


def test_write_png_frames(tmp_path: Path, frames: np.ndarray) -> None:
    out = write_png_frames(tmp_path / "pngs", frames[:5])
    assert out == tmp_path / "pngs"
    names = sorted(os.listdir(out))
    assert names == [f"frame_{i:05d}.png" for i in range(5)]
    for i, name in enumerate(names):
        with Image.open(out / name) as image:
            assert image.size == (W, H) and image.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(image), frames[i])
    assert sorted(os.listdir(tmp_path)) == ["pngs"]  # the temporary directory was renamed
    # An existing empty directory is accepted; custom prefix.
    (tmp_path / "empty").mkdir()
    write_png_frames(tmp_path / "empty", iter(frames[:2]), prefix="f")
    assert sorted(os.listdir(tmp_path / "empty")) == ["f00000.png", "f00001.png"]


def test_write_png_frames_refusals_leave_nothing(tmp_path: Path, frames: np.ndarray) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(VideoError, match="busy: the directory is not empty"):
        write_png_frames(busy, frames[:2])
    assert os.listdir(busy) == ["keep.txt"]
    with pytest.raises(VideoError, match="no frames to write"):
        write_png_frames(tmp_path / "none", [])
    with pytest.raises(VideoError, match="frame 2 has dtype float64"):
        write_png_frames(tmp_path / "bad", [frames[0], frames[1], frames[2] / 255.0])
    with pytest.raises(VideoError, match="path separators"):
        write_png_frames(tmp_path / "sep", frames[:1], prefix="a/b")
    assert sorted(os.listdir(tmp_path)) == ["busy"]


def test_write_png_frames_overwrite_replaces_earlier_frames(tmp_path: Path, frames: np.ndarray) -> None:
    out = write_png_frames(tmp_path / "pngs", frames[:5])
    with pytest.raises(VideoError, match="pngs: the directory is not empty.*overwrite=True"):
        write_png_frames(out, frames[5:7])
    assert len(os.listdir(out)) == 5
    write_png_frames(out, frames[5:7], overwrite=True)  # fewer frames: the old ones go, not only the first two
    assert sorted(os.listdir(out)) == ["frame_00000.png", "frame_00001.png"]
    with Image.open(out / "frame_00000.png") as image:
        np.testing.assert_array_equal(np.asarray(image), frames[5])
    assert sorted(os.listdir(tmp_path)) == ["pngs"]  # no .partial or .old directory left


def test_write_png_frames_overwrite_never_deletes_other_files_or_follows_links(tmp_path: Path, frames: np.ndarray) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "frame_00000.png").write_bytes(b"old")
    (mixed / "notes.txt").write_text("mine")
    with pytest.raises(VideoError, match=r"refusing to replace .*mixed: it holds files that are not PNG frames \(notes\.txt\)"):
        write_png_frames(mixed, frames[:2], overwrite=True)
    assert sorted(os.listdir(mixed)) == ["frame_00000.png", "notes.txt"]
    real = write_png_frames(tmp_path / "real", frames[:2])
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with pytest.raises(VideoError, match=r"link: it is a symbolic link"):
        write_png_frames(link, frames[:1], overwrite=True)
    (tmp_path / "file").write_text("mine")
    with pytest.raises(VideoError, match=r"file: a file with that name exists"):
        write_png_frames(tmp_path / "file", frames[:1], overwrite=True)
    assert link.is_symlink() and len(os.listdir(real)) == 2 and (tmp_path / "file").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["file", "link", "mixed", "real"]


def test_reading_late_frames_seeks_to_the_keyframe_before_them(tmp_path):
    """Frames read from the middle of a file with many keyframes equal the same frames of a full decode."""
    frames = moving_shapes_frames(60, 48, 64)
    path = write_test_video(tmp_path / "gop.mp4", frames, fps=24, keyframe_interval=7)
    with open_video(path) as reader:
        everything = reader.read()
        for indices in ([30], [8, 9, 40], [59], [6, 7, 8, 13, 14]):
            np.testing.assert_array_equal(reader.read(indices), everything[indices])


# --------------------------------------------------------------------------------------------------
# Image sequences: a directory of frames or a glob pattern
# --------------------------------------------------------------------------------------------------


def test_a_directory_and_a_glob_of_pngs_read_as_the_frames_written(tmp_path: Path) -> None:
    frames = moving_shapes_frames(3, 12, 16)
    write_image_frames(tmp_path / "frames", frames)
    (tmp_path / "frames" / "notes.txt").write_text("not a frame")  # other files in a directory are skipped
    for source in (tmp_path / "frames", str(tmp_path / "frames" / "*.png")):
        with open_video(source) as reader:
            assert reader.metadata.num_frames == 3 and (reader.metadata.height, reader.metadata.width) == (12, 16)
            assert reader.metadata.fps == DEFAULT_FPS and reader.metadata.source == os.fspath(source)
            np.testing.assert_array_equal(reader.read(), frames)  # PNG is lossless
        np.testing.assert_array_equal(load_video(source, stride=2)[0], frames[::2])
    video, metadata = load_video(tmp_path / "frames", source_fps=12.5)
    assert metadata.fps == 12.5 and metadata.codec is None and metadata.duration == pytest.approx(3 / 12.5)


def test_frames_are_sorted_in_natural_order(tmp_path: Path) -> None:
    frames = moving_shapes_frames(4, 8, 8)
    write_image_frames(tmp_path, frames, ["frame10.png", "frame2.png", "Frame1.png", "frame9.jpg"])
    (tmp_path / "._frame0.png").write_bytes(b"macOS metadata, hidden")  # hidden files are skipped
    order = [2, 1, 3, 0]  # Frame1, frame2, frame9, frame10
    with open_video(tmp_path) as reader:
        decoded = reader.read()
    np.testing.assert_array_equal(decoded[[0, 1, 3]], frames[[2, 1, 0]])
    assert mean_abs_error(decoded[2], frames[3]) < MAX_MEAN_ABS_ERROR  # the JPEG, third
    assert [int(np.argmin([mean_abs_error(d, f) for f in frames])) for d in decoded] == order
    np.testing.assert_array_equal(load_video(str(tmp_path / "frame*.png"))[0], frames[[1, 0]])  # glob: case matters


def test_image_sequence_errors_name_the_input_and_the_fix(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoError, match=f"{empty} is a directory with no image files .*it is empty.*\\.png"):
        open_video(empty)
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "clip.mp4").write_bytes(b"x")
    with pytest.raises(VideoError, match=r"no image files .*holds clip\.mp4.*pass its path \(e\.g\. .*clip\.mp4\)"):
        open_video(videos)
    pattern = str(tmp_path / "missing" / "*.jpg")
    with pytest.raises(FileNotFoundError, match=f"no files match the pattern '{re.escape(pattern)}'"):
        open_video(pattern)
    frames = moving_shapes_frames(3, 8, 8)
    write_image_frames(tmp_path / "mixed", frames, ["a1.png", "a2.png", "a3.png"])
    write_image_frames(tmp_path / "mixed", moving_shapes_frames(2, 6, 8), ["a10.png", "a11.png"])
    with pytest.raises(VideoError, match=r"a10\.png is 8x6 but the first frame of .*mixed \(a1\.png\) is 8x8.*same size"):
        open_video(tmp_path / "mixed")
    broken = tmp_path / "broken"
    write_image_frames(broken, frames)
    (broken / "frame_1.png").write_bytes(b"not a png")
    with pytest.raises(VideoError, match=r"frame_1\.png \(a frame of .*broken\) is not an image Pillow can read"):
        open_video(broken)
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    (bomb / "f0.png").write_bytes(png_declaring_size(frames[0], 100_000, 100_000))
    with pytest.raises(VideoError, match=r"f0\.png: frames of 100000x100000 pixels .*max_frame_pixels="):
        open_video(bomb)
    with pytest.raises(VideoError, match=r"a1\.png: frames of 8x8 pixels"):
        open_video(tmp_path / "mixed" / "a[12].png", max_frame_pixels=10)  # the guard holds for globs too
    with pytest.raises(VideoError, match="min_frames=2"):
        open_video(str(tmp_path / "mixed" / "a1.*"), min_frames=2)
    with pytest.raises(VideoError, match="video files carry their own rate"):
        open_video(write_test_video(tmp_path / "v.mp4", moving_shapes_frames(2, 16, 16)), fps=10)


def test_image_frames_are_decoded_lazily_upright_and_as_rgb(tmp_path: Path) -> None:
    frames = moving_shapes_frames(3, 8, 12)
    paths = write_image_frames(tmp_path, frames)
    reader = open_video(tmp_path)
    paths[2].write_bytes(b"damaged after opening")  # only read when frame 2 is decoded
    np.testing.assert_array_equal(reader.read([0, 1]), frames[:2])
    with pytest.raises(VideoError, match=r"frame_2\.png \(a frame of .*\) is not an image Pillow can read \(decoding failed"):
        reader.read([2])
    # EXIF orientation 6 (rotate 90 degrees clockwise to display) is applied, as PIL.ImageOps.exif_transpose does.
    rotated = tmp_path / "rotated"
    rotated.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(frames[0]).save(rotated / "f.png", exif=exif)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(rotated / "f.png")).convert("RGB"))
    with open_video(rotated) as rotated_reader:
        assert (rotated_reader.metadata.width, rotated_reader.metadata.height) == (8, 12)
        np.testing.assert_array_equal(rotated_reader.read()[0], upright)
    # 16-bit greyscale is scaled to 8 bits (Pillow's convert("RGB") would clip it to 255).
    grey = tmp_path / "grey16"
    grey.mkdir()
    Image.fromarray(np.full((4, 4), 0x8000, np.uint16)).save(grey / "g.png")
    with open_video(grey) as grey_reader:
        assert (grey_reader.read() == 128).all()
    with open_video([Image.open(grey / "g.png")]) as pil_reader:  # and so is a list of PIL images
        assert (pil_reader.read() == 128).all()


def test_write_png_frames_with_a_palette_writes_the_labels_as_they_are(tmp_path: Path) -> None:
    from PIL import Image

    labels = np.array([[0, 1, 2], [255, 7, 0]], np.uint8)
    palette = np.zeros((256, 3), np.uint8)
    palette[7] = (1, 2, 3)
    out = write_png_frames(tmp_path / "masks", [labels, labels[::-1]], palette=palette)
    with Image.open(out / "frame_00001.png") as image:
        assert image.mode == "P"
        np.testing.assert_array_equal(np.asarray(image), labels[::-1])
        assert image.getpalette()[21:24] == [1, 2, 3]
    for bad_palette, bad_maps in (
        (np.zeros((256, 4), np.uint8), [labels]),  # not RGB
        (palette.astype(np.int64), [labels]),  # not uint8
        (palette, [labels.astype(np.int32)]),  # a label map that is not uint8
        (palette, [np.zeros((2, 3, 3), np.uint8)]),  # an RGB frame, not a label map
    ):
        with pytest.raises(VideoError):
            write_png_frames(tmp_path / "bad", bad_maps, palette=bad_palette)
        assert not (tmp_path / "bad").exists()
