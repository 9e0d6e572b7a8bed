"""Video input/output: lazy decoding of files and in-memory frames, frame selection, atomic writing.

Every model in this hub consumes RGB videos as ``(T, H, W, 3)`` ``uint8`` frames. This module turns
whatever the user has (a file path, encoded bytes, a file object, a numpy array, a torch tensor, a
list of PIL images, a directory of frame images or a glob pattern such as ``"frames/*.jpg"``) into
that form through one interface, :class:`VideoReader`, and writes results
back as mp4 files (:class:`VideoWriter`, :func:`write_video`) or PNG sequences
(:func:`write_png_frames`). Decoding and encoding use PyAV (FFmpeg bindings); there is no dependency
on torchvision, OpenCV or an ``ffmpeg`` binary.

Design:

* **Lazy and sequential.** Opening a file demuxes its video packets once (no decoding except the
  first frame, see "Rotation") to count the frames and read their timestamps; frames are decoded
  only by :meth:`VideoReader.iter_frames`, in one forward pass, keeping one frame at a time. In-memory
  arrays are never copied as a whole: each frame is converted when it is yielded, so a memory-mapped
  ten-minute video costs one frame of memory. Image sequences likewise: opening reads each image's
  header only (size and EXIF orientation), and each frame is decoded when it is yielded.
* **Exact frame counts.** ``num_frames`` is the number of video packets the demuxer returns, which
  for every common container is the number of decodable frames. A reader never yields silently fewer
  frames than it promised: a file whose packets stop before what its header declares, or contain a
  packet the demuxer flags as corrupt (a truncated download), is refused by :func:`open_video`; a
  file that demuxes cleanly but fails to decode part way (corrupt data mid-stream) raises
  :class:`VideoError` ("only decoded K of N frames ...") from :meth:`VideoReader.iter_frames` as soon
  as a requested frame cannot be produced. Frames decoded before that point have already been yielded.
* **Clear errors.** Problems with the input raise :class:`VideoError` (a ``ValueError``) whose message
  names the problem and the fix; FFmpeg errors are translated, never propagated raw. A missing file
  raises ``FileNotFoundError`` and an unsupported source type ``TypeError``. The frame-size guard
  (``max_frame_pixels``) reads the declared size before any frame is decoded; when FFmpeg refuses
  to open a header because of an absurd size (a Y4M, PNG or JPEG claiming 100000 x 100000), the
  size is read from the header bytes so that the guard, not FFmpeg's "Device or resource busy",
  explains the failure.
* **Upright RGB frames.** Frames are converted with ``to_ndarray(format="rgb24")`` whatever the
  stored pixel format: greyscale is replicated to three channels and an alpha channel (``rgba``,
  ``yuva420p``, ...) is dropped, not composited. Non-square pixels (a sample aspect ratio other than
  1:1) are not resampled.

Rotation: phone videos store upright orientation as a display matrix rather than rotated pixels.
FFmpeg attaches that matrix to every decoded frame and PyAV (>= 13) exposes its rotation as
``VideoFrame.rotation`` (degrees counter-clockwise); stream-level side data is not exposed, so the
first frame is decoded when a file is opened to read it (older FFmpeg builds instead exported a
clockwise ``rotate`` stream tag, which is used as a fallback). Rotations are rounded to a multiple of
90 degrees; the mirroring part of a display matrix (rare; it comes from EXIF-style flips) is ignored
because PyAV does not expose it.

Image sequences: a directory is read as the image files directly inside it (``.png``, ``.jpg``,
``.jpeg``, ``.bmp``, ``.tif``, ``.tiff``, ``.webp``, ``.ppm``, ``.pgm``; hidden files and other files are
skipped); a path that does not exist but contains ``*``, ``?`` or ``[`` is a glob pattern (``**``
recursive), every file it matches a frame. Frames are sorted in natural order (``frame2``
before ``frame10``; the full path for a glob), decoded with Pillow, turned upright by their EXIF
orientation (as transformers' ``load_image`` does), and converted to RGB (16-bit greyscale is
scaled to 8 bits, not clipped). They have no timestamps of their own: the rate is ``fps=`` or
:data:`DEFAULT_FPS`. A directory without images, a pattern matching nothing, an unreadable image or
one whose size differs from the first frame's is refused, naming it, when the sequence is opened.

Writing: :class:`VideoWriter` encodes H.264 (``libx264``) into mp4 with ``+faststart`` (index at the
front, so the file streams in browsers and on the Hub). Frames with an odd width or height are padded
to even sizes by replicating the last row/column, because 4:2:0 chroma subsampling needs even
dimensions; reading such a file back gives the padded size. Output is atomic: frames go to a hidden
temporary file beside the target, renamed onto it only when :meth:`VideoWriter.close` succeeds.

Example:
    >>> with open_video("clip.mp4") as reader:  # doctest: +SKIP
    ...     indices = select_frames(len(reader), reader.timestamps, num_frames=16)
    ...     video = reader.read(indices)  # (16, H, W, 3) uint8
"""

from __future__ import annotations

import glob
import io
import math
import os
import re
import secrets
import shutil
import struct
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Union

import av
import numpy as np
import torch
from PIL import Image

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_MAX_FRAME_PIXELS",
    "IMAGE_SUFFIXES",
    "VideoError",
    "VideoMetadata",
    "VideoReader",
    "VideoWriter",
    "load_video",
    "open_video",
    "select_frames",
    "write_png_frames",
    "write_video",
]

#: Default frame size guard for :func:`open_video`: half of an 8192x8192 frame (32 Mpixels), about
#: 100 MB per RGB frame. Larger frames are almost always a mistake (or a decompression bomb).
DEFAULT_MAX_FRAME_PIXELS = 8192 * 8192 // 2

#: The frame rate of in-memory frames and image sequences (directories, glob patterns) when
#: ``fps=`` is not given; also the fallback for files whose rate cannot be read.
DEFAULT_FPS = 30.0

#: File suffixes (lower case) read as frames from a directory (a glob pattern takes any match).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

VideoSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, np.ndarray, torch.Tensor, Sequence[Image.Image]]

_REENCODE_HINT = "re-encode it, e.g. `ffmpeg -i in.mp4 -c:v libx264 -pix_fmt yuv420p out.mp4`"
# Frame intervals that differ from their median by more than this fraction mark a variable frame rate.
_VFR_TOLERANCE = 0.01
# torch dtypes accepted for frames; half precision is widened to float32 per frame.
_TORCH_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Encoders that take a constant rate factor (quality-targeted encoding).
_CRF_ENCODERS = ("libx264", "libx265")


class VideoError(ValueError):
    """A video could not be read or written; the message says why and what to do."""


@dataclass(frozen=True)
class VideoMetadata:
    """Properties of a whole video source (not of a selection of its frames).

    Attributes:
        num_frames: Exact number of frames the reader yields. For files, the number of video packets
            found by demuxing (no decoding).
        fps: Average frame rate. For files, ``num_frames / duration`` with the duration measured from
            the frame timestamps (the stream's average rate when that is not possible); for in-memory
            frames and image sequences, the ``fps`` given to :func:`open_video` (default
            :data:`DEFAULT_FPS`, 30.0).
        width: Display width in pixels, after rotation.
        height: Display height in pixels, after rotation.
        duration: Duration in seconds (first frame to the end of the last one), or ``None`` when the
            file does not say.
        rotation: Counter-clockwise rotation in degrees (0, 90, 180 or 270) applied to decoded frames
            so that they display upright; always 0 for in-memory inputs and image sequences (whose
            EXIF orientation is applied per image).
        codec: FFmpeg codec name, e.g. ``"h264"``; ``None`` for in-memory inputs and image sequences.
        has_audio: Whether the file has an audio stream (it is ignored).
        variable_frame_rate: Whether frame intervals differ by more than 1% from their median.
        source: The file path, the directory or the glob pattern of an image sequence, or
            ``"<bytes>"``, ``"<file object>"``, ``"<array>"``, ``"<tensor>"``, ``"<PIL images>"``.
    """

    num_frames: int
    fps: float
    width: int
    height: int
    duration: float | None
    rotation: int
    codec: str | None
    has_audio: bool
    variable_frame_rate: bool
    source: str


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _av_message(error: BaseException) -> str:
    """The human part of an FFmpeg error (PyAV prefixes it with ``[Errno N]`` and the file name)."""
    strerror = getattr(error, "strerror", None)
    return str(strerror) if strerror else str(error)


def _check_positive_rate(fps: Any, what: str) -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise VideoError(f"{what} must be a positive number of frames per second, got {fps!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise VideoError(f"{what} must be a positive, finite number of frames per second, got {fps!r}")
    return value


def _check_frame_pixels(width: int, height: int, max_frame_pixels: int, source: str) -> None:
    if width * height > max_frame_pixels:
        raise VideoError(
            f"{source}: frames of {width}x{height} pixels ({width * height:,}) exceed the limit of "
            f"{max_frame_pixels:,} pixels per frame (a guard against decompression bombs and "
            f"out-of-memory errors); pass max_frame_pixels= to allow it, or downscale the video"
        )


#: Bytes of a file's start that :func:`_declared_frame_size` reads.
_HEADER_BYTES = 64 * 1024
_JPEG_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _declared_frame_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) a Y4M, PNG or JPEG header declares, read from its first bytes; else ``None``.

    FFmpeg's demuxers for these formats refuse to open a file whose declared size is absurd (the
    Y4M demuxer then reports "Device or resource busy"), so the frame-size guard, which reads the
    codec context of an opened stream, never sees it. When opening fails, this reads the size from
    the header itself so that the guard can say what is wrong.
    """
    if head.startswith(b"YUV4MPEG2 "):
        line = head.split(b"\n", 1)[0]
        width = re.search(rb" W(\d+)", line)
        height = re.search(rb" H(\d+)", line)
        if width and height:
            return int(width.group(1)), int(height.group(1))
        return None
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        width, height = struct.unpack(">II", head[16:24])
        return int(width), int(height)
    if head.startswith(b"\xff\xd8"):
        position = 2
        while position + 9 <= len(head) and head[position] == 0xFF:
            marker = head[position + 1]
            if marker in _JPEG_SOF_MARKERS:
                height, width = struct.unpack(">HH", head[position + 5 : position + 9])
                return int(width), int(height)
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
                position += 2
                continue
            position += 2 + struct.unpack(">H", head[position + 2 : position + 4])[0]
    return None


def _variable_frame_rate(timestamps: np.ndarray) -> bool:
    if timestamps.size < 3:
        return False  # one interval cannot vary
    intervals = np.diff(timestamps)
    median = float(np.median(intervals))
    if median <= 0:
        return bool(np.any(intervals != median))
    return bool(np.any(np.abs(intervals - median) > _VFR_TOLERANCE * median))


def _rate_fraction(fps: float) -> Fraction:
    """An exact rational frame rate for the encoder's time base.

    NTSC-style rates are snapped to ``k/1001`` (29.97 -> 30000/1001, 23.976 -> 24000/1001) because
    that is what those numbers abbreviate; other rates use the closest fraction with a denominator
    of at most 1001 (12.5 -> 25/2).
    """
    ntsc = round(fps * 1001)
    if ntsc > 0 and abs(fps * 1001 - ntsc) < 0.05:
        return Fraction(ntsc, 1001)
    rate = Fraction(fps).limit_denominator(1001)
    return rate if rate > 0 else Fraction(1, 1001)


# --------------------------------------------------------------------------------------------------
# Frame selection
# --------------------------------------------------------------------------------------------------


def _check_indices(indices: Sequence[int] | np.ndarray | None, num_frames: int) -> np.ndarray:
    """Validate frame indices for iteration: 1-D integers, in range, strictly increasing."""
    if indices is None:
        return np.arange(num_frames, dtype=np.int64)
    array = np.asarray(indices)
    if array.ndim != 1:
        raise VideoError(f"frame indices must be a 1-D sequence of integers, got an array of shape {array.shape}")
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise VideoError(
            f"frame indices must be integers, got dtype {array.dtype}; "
            f"use select_frames(...) or np.asarray(indices, dtype=np.int64)"
        )
    array = array.astype(np.int64)
    if array.min() < 0:
        raise VideoError(
            f"negative frame index {int(array.min())}: indices count from 0 and negative (from the end) "
            f"indexing is not supported; use len(reader) - k for the k-th frame from the end"
        )
    if array.max() >= num_frames:
        raise VideoError(
            f"frame index {int(array.max())} is out of range for a video of "
            f"{_plural(num_frames, 'frame')} (valid indices: 0 to {num_frames - 1})"
        )
    steps = np.diff(array)
    if np.any(steps <= 0):
        position = int(np.argmax(steps <= 0)) + 1
        raise VideoError(
            f"frame indices must be strictly increasing because frames are decoded in one forward pass: "
            f"got {int(array[position])} after {int(array[position - 1])} at position {position}; "
            f"sort them and drop duplicates with np.unique(indices)"
        )
    return array


def select_frames(
    num_frames_total: int,
    timestamps: np.ndarray | None = None,
    *,
    num_frames: int | None = None,
    stride: int | None = None,
    fps: float | None = None,
    start: int = 0,
    end: int | None = None,
) -> np.ndarray:
    """Indices of the frames to use from the range ``[start, end)`` of a video.

    At most one of ``num_frames``, ``stride`` and ``fps`` may be given; by default every frame in the
    range is used.

    * ``stride=k``: every k-th frame, ``start, start + k, ...``.
    * ``num_frames=n``: ``n`` frames evenly spaced over the range, both ends included
      (``np.linspace(start, end - 1, n)`` rounded to the nearest integer, as transformers'
      ``sample_frames``); an error if the range has fewer than ``n`` frames.
    * ``fps=f``: resampling in time, which also works for variable frame rate videos. For each time of
      the grid ``t0, t0 + 1/f, t0 + 2/f, ...`` up to the last frame's timestamp, where ``t0`` is the
      timestamp of frame ``start``, the frame with the nearest timestamp (the earlier one on a tie),
      without duplicates. If ``f`` is at or above the range's average frame rate, every frame is used
      (frames are never duplicated to reach a higher rate).

    Args:
        num_frames_total: Number of frames in the video (``len(reader)``).
        timestamps: ``(num_frames_total,)`` frame times in seconds, non-decreasing
            (``reader.timestamps``); required with ``fps``.
        num_frames: Number of evenly spaced frames to select.
        stride: Step between selected frames.
        fps: Target frame rate of the selection.
        start: First frame of the range.
        end: One past the last frame of the range (default: ``num_frames_total``).

    Returns:
        ``(n,)`` ``int64`` strictly increasing frame indices within ``[start, end)``.

    Raises:
        VideoError: For a negative ``start``, ``start >= end``, ``end > num_frames_total``,
            ``stride < 1``, ``num_frames < 1`` or more than the range holds, ``fps <= 0`` or NaN, ``fps``
            without timestamps, or more than one of ``num_frames`` / ``stride`` / ``fps``.
    """
    given = [name for name, value in (("num_frames", num_frames), ("stride", stride), ("fps", fps)) if value is not None]
    if len(given) > 1:
        raise VideoError(
            f"pass at most one of num_frames=, stride= and fps= to choose frames (got {' and '.join(given)})"
        )
    total = int(num_frames_total)
    if total < 0:
        raise VideoError(f"num_frames_total must be >= 0, got {num_frames_total}")
    end = total if end is None else int(end)
    start = int(start)
    if start < 0:
        raise VideoError(f"start={start} is negative: frame ranges count from 0")
    if end > total:
        raise VideoError(f"end={end} is past the end of the video ({_plural(total, 'frame')}); use end <= {total}")
    if start >= end:
        raise VideoError(f"the frame range [start={start}, end={end}) is empty: start must be smaller than end")
    available = end - start

    if stride is not None:
        if not _is_int(stride) or stride < 1:
            raise VideoError(f"stride must be an integer >= 1, got {stride!r}")
        return np.arange(start, end, int(stride), dtype=np.int64)

    if num_frames is not None:
        if not _is_int(num_frames) or num_frames < 1:
            raise VideoError(f"num_frames must be an integer >= 1, got {num_frames!r}")
        if num_frames > available:
            raise VideoError(
                f"cannot select {num_frames} frames from {_plural(available, 'frame')} "
                f"(range [{start}, {end})); ask for at most {available} or use a longer video"
            )
        # With n <= available the spacing is >= 1, so rounding cannot produce duplicates.
        return np.rint(np.linspace(start, end - 1, int(num_frames))).astype(np.int64)

    if fps is not None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)):
            raise VideoError(f"fps must be a positive number, got {fps!r}")
        if not math.isfinite(fps) or fps <= 0:
            raise VideoError(f"fps must be a positive, finite frame rate, got {fps!r}")
        if timestamps is None:
            raise VideoError(
                "select_frames(fps=...) needs the frame timestamps: pass reader.timestamps as the second argument"
            )
        times = np.asarray(timestamps, dtype=np.float64)
        if times.shape != (total,):
            raise VideoError(
                f"timestamps must have shape ({total},) to match num_frames_total, got {times.shape}"
            )
        times = times[start:end]
        if not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0):
            raise VideoError("timestamps must be finite and non-decreasing (frame times in display order)")
        span = float(times[-1] - times[0])
        # At or above the source rate every frame is used; this also keeps the grid below `available` points.
        if available == 1 or span <= 0 or fps * span >= (available - 1) * (1 - 1e-9):
            return np.arange(start, end, dtype=np.int64)
        grid = times[0] + np.arange(int(math.floor(span * fps + 1e-9)) + 1, dtype=np.float64) / fps
        after = np.clip(np.searchsorted(times, grid, side="left"), 1, available - 1)
        before = after - 1
        # Nearest timestamp, the earlier frame on a tie.
        nearest = np.where(grid - times[before] <= times[after] - grid, before, after)
        return np.unique(nearest).astype(np.int64) + start

    return np.arange(start, end, dtype=np.int64)


# --------------------------------------------------------------------------------------------------
# Frame sources
# --------------------------------------------------------------------------------------------------


class _FrameSource:
    """What a :class:`VideoReader` reads from: metadata, timestamps and sequential frame access."""

    metadata: VideoMetadata
    timestamps: np.ndarray

    def iter_frames(self, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _MemoryFrames(_FrameSource):
    """Frames already in memory (numpy, torch, PIL); converted to uint8 RGB one at a time."""

    def __init__(self, num_frames: int, height: int, width: int, fps: float | None, source: str) -> None:
        rate = DEFAULT_FPS if fps is None else _check_positive_rate(fps, "fps")
        self.metadata = VideoMetadata(
            num_frames=num_frames,
            fps=rate,
            width=width,
            height=height,
            duration=num_frames / rate,
            rotation=0,
            codec=None,
            has_audio=False,
            variable_frame_rate=False,
            source=source,
        )
        self.timestamps = np.arange(num_frames, dtype=np.float64) / rate

    def frame(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def iter_frames(self, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        for index in indices:
            yield int(index), self.frame(int(index))


def _to_rgb_uint8(frame: np.ndarray, index: int, source: str) -> np.ndarray:
    """One (H, W) / (H, W, C) uint8 or float frame -> contiguous (H, W, 3) uint8 RGB."""
    if np.issubdtype(frame.dtype, np.floating):
        frame = frame.astype(np.float32, copy=False)
        if not np.all(np.isfinite(frame)):
            raise VideoError(f"frame {index} of the {source} input contains NaN or infinite values")
        low, high = float(frame.min()), float(frame.max())
        if low < 0.0 or high > 1.0:
            hint = " (the values look like 0-255: divide by 255 or cast to uint8)" if high <= 255 and low >= 0 else ""
            raise VideoError(
                f"frame {index} of the {source} input has float values in [{low:g}, {high:g}]; float frames "
                f"must lie in [0, 1]{hint}; clip them with np.clip(frames, 0, 1) if they overshoot"
            )
        frame = np.rint(frame * 255.0).astype(np.uint8)
    if frame.ndim == 2:
        frame = frame[:, :, None]
    channels = frame.shape[2]
    if channels == 1:
        return np.ascontiguousarray(np.repeat(frame, 3, axis=2))
    # channels == 3, or 4: the alpha channel is dropped (not composited over a background).
    return np.ascontiguousarray(frame[:, :, :3])


def _layout_error(shape: tuple[int, ...], kind: str) -> VideoError:
    if len(shape) == 5:
        return VideoError(
            f"got a 5-D {kind} of shape {tuple(shape)}, which looks like a batch of videos: "
            f"pass one video at a time (e.g. frames[0])"
        )
    layouts = "(T, H, W, 3) RGB, (T, H, W, 4) RGBA, (T, H, W, 1) or (T, H, W) greyscale"
    if kind == "tensor":
        layouts += ", or channels-first (T, 3, H, W) / (T, 4, H, W) / (T, 1, H, W)"
    hint = ""
    if kind == "array" and len(shape) == 4 and shape[1] in (1, 3, 4) and shape[3] not in (1, 3, 4):
        hint = "; this looks channels-first: use frames.transpose(0, 2, 3, 1)"
    elif len(shape) == 3 and shape[-1] in (3, 4):
        hint = "; a single (H, W, C) image is not a video: add a time axis with frames[None]"
    return VideoError(f"unsupported {kind} shape {tuple(shape)}: expected {layouts}{hint}")


class _ArrayFrames(_MemoryFrames):
    """A numpy array (or memmap); each frame is read and converted only when it is yielded."""

    def __init__(self, array: np.ndarray, fps: float | None, max_frame_pixels: int) -> None:
        dtype = array.dtype
        if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
            raise VideoError(_dtype_message(str(dtype)))
        shape = array.shape
        if array.ndim == 3:
            layout_ok = shape[2] not in (3, 4)  # (H, W, 3) is one image, not a width-3 greyscale video
        elif array.ndim == 4:
            layout_ok = shape[3] in (1, 3, 4)
        else:
            layout_ok = False
        if not layout_ok:
            raise _layout_error(shape, "array")
        num_frames, height, width = shape[0], shape[1], shape[2]
        if num_frames == 0:
            raise VideoError(f"the array has no frames (shape {shape}): a video needs at least one frame")
        _check_frame_pixels(width, height, max_frame_pixels, "<array>")
        super().__init__(num_frames, height, width, fps, "<array>")
        self._array = array

    def frame(self, index: int) -> np.ndarray:
        return _to_rgb_uint8(np.asarray(self._array[index]), index, "array")


def _dtype_message(dtype: str) -> str:
    hints = {
        "uint16": "scale 16-bit frames with (frames / 65535).astype(np.float32) or (frames >> 8).astype(np.uint8)",
        "bool": "convert masks with frames.astype(np.uint8) * 255",
        "torch.bool": "convert masks with frames.to(torch.uint8) * 255",
    }
    hint = hints.get(dtype, "convert to uint8 (0-255) or to float with values in [0, 1]")
    return f"unsupported frame dtype {dtype}: frames must be uint8 (0-255) or float in [0, 1]; {hint}"


class _TensorFrames(_MemoryFrames):
    """A torch tensor, (T, H, W, C) or unambiguous (T, C, H, W); converted per frame on the CPU."""

    def __init__(self, tensor: torch.Tensor, fps: float | None, max_frame_pixels: int) -> None:
        if tensor.device.type == "meta":
            # A meta tensor has a shape but no data: every frame conversion would fail deep inside.
            raise VideoError(
                f"the video tensor is on the 'meta' device (shape {tuple(tensor.shape)}): it holds no data; "
                "pass a tensor with real frames (on the CPU or a GPU)"
            )
        if tensor.layout != torch.strided:
            raise VideoError(f"the video tensor has layout {tensor.layout}; pass a dense tensor (tensor.to_dense())")
        if tensor.dtype != torch.uint8 and tensor.dtype not in _TORCH_FLOAT_DTYPES:
            raise VideoError(_dtype_message(str(tensor.dtype)))
        shape = tuple(tensor.shape)
        self._channels_first = False
        if tensor.ndim == 3:
            if shape[2] in (3, 4):
                raise _layout_error(shape, "tensor")  # one (H, W, C) image, not a width-3 greyscale video
            num_frames, height, width = shape
        elif tensor.ndim == 4 and shape[3] in (1, 3, 4):
            # Channels-last wins when both readings are possible, e.g. (T, 3, 4, 3).
            num_frames, height, width = shape[:3]
        elif tensor.ndim == 4 and shape[1] in (1, 3, 4):
            self._channels_first = True
            num_frames, height, width = shape[0], shape[2], shape[3]
        else:
            raise _layout_error(shape, "tensor")
        if num_frames == 0:
            raise VideoError(f"the tensor has no frames (shape {shape}): a video needs at least one frame")
        _check_frame_pixels(width, height, max_frame_pixels, "<tensor>")
        super().__init__(num_frames, height, width, fps, "<tensor>")
        self._tensor = tensor

    def frame(self, index: int) -> np.ndarray:
        frame = self._tensor[index].detach()
        if self._channels_first:
            frame = frame.permute(1, 2, 0)
        if frame.dtype in (torch.float16, torch.bfloat16):
            frame = frame.float()  # numpy has no bfloat16; float16 is widened too for one code path
        return _to_rgb_uint8(frame.cpu().numpy(), index, "tensor")


class _PILFrames(_MemoryFrames):
    """A list/tuple of PIL images of one size; each converted with ``.convert("RGB")`` when yielded."""

    def __init__(self, images: Sequence[Any], fps: float | None, max_frame_pixels: int) -> None:
        if len(images) == 0:
            raise VideoError("the list of PIL images is empty: a video needs at least one frame")
        for i, image in enumerate(images):
            if not isinstance(image, Image.Image):
                hint = "; stack numpy frames into one array with np.stack(frames)" if isinstance(image, np.ndarray) else ""
                raise VideoError(
                    f"item {i} of the frame list is a {type(image).__name__}, not a PIL.Image.Image; "
                    f"a list/tuple source must hold only PIL images{hint}"
                )
        width, height = images[0].size
        for i, image in enumerate(images):
            if image.size != (width, height):
                raise VideoError(
                    f"PIL image {i} is {image.size[0]}x{image.size[1]} but image 0 is {width}x{height}: all "
                    f"frames of a video must have the same size; resize them first"
                )
        _check_frame_pixels(width, height, max_frame_pixels, "<PIL images>")
        super().__init__(len(images), height, width, fps, "<PIL images>")
        self._images = images

    def frame(self, index: int) -> np.ndarray:
        return _pil_to_rgb(self._images[index])


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    """One PIL image of any mode -> contiguous (H, W, 3) uint8 RGB; alpha is dropped.

    ``.convert("RGB")`` handles every mode (L, P, RGBA, CMYK, ...) except 16-bit greyscale, which it
    clips to 255 (a 16-bit PNG would turn white): that is scaled to 8 bits instead.
    """
    if image.mode.startswith("I;16"):
        grey = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


# EXIF orientation -> the transpose that makes the image upright (as PIL.ImageOps.exif_transpose).
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_GLOB_CHARACTERS = re.compile(r"[*?[]")


def _natural_key(text: str) -> tuple[list[Any], str]:
    """Sort key putting ``frame2`` before ``frame10`` (digit runs compare as numbers, case ignored)."""
    parts = re.split(r"(\d+)", text)
    return [int(part) if i % 2 else part.casefold() for i, part in enumerate(parts)], text


def _image_sequence(source: str | os.PathLike) -> list[Path] | None:
    """The frame files of a directory or glob pattern, naturally sorted; ``None`` for any other path.

    Raises:
        VideoError: A directory without image files.
        FileNotFoundError: A glob pattern that matches no file.
    """
    path = Path(source)
    if path.is_dir():
        entries = [entry for entry in path.iterdir() if not entry.name.startswith(".") and entry.is_file()]
        images = [entry for entry in entries if entry.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            others = sorted((entry.name for entry in entries), key=_natural_key)
            held = f"it holds {', '.join(others[:3])}{', ...' if len(others) > 3 else ''}" if others else "it is empty"
            hint = f"; to read a video inside it, pass its path (e.g. {path / others[0]})" if others else ""
            raise VideoError(
                f"{source} is a directory with no image files to read as frames ({held}); frames are files "
                f"ending in {', '.join(IMAGE_SUFFIXES)}{hint}"
            )
        return sorted(images, key=lambda entry: _natural_key(entry.name))
    if path.exists() or not _GLOB_CHARACTERS.search(os.fspath(source)):
        return None
    pattern = os.fspath(source)
    matches = [Path(match) for match in glob.glob(pattern, recursive=True)]
    files = [match for match in matches if match.is_file()]
    if not files:
        found = f" (only the directories {', '.join(sorted(map(str, matches))[:3])})" if matches else ""
        raise FileNotFoundError(
            f"no files match the pattern {pattern!r}{found}: it is read as a glob of frame images "
            f"(e.g. 'frames/*.png'); check the directory and the extension, and quote the pattern in a shell"
        )
    return sorted(files, key=lambda match: _natural_key(str(match)))


class _ImageFrames(_MemoryFrames):
    """Image files (a directory or glob pattern): headers read on opening, each decoded when yielded."""

    def __init__(self, paths: list[Path], label: str, fps: float | None, max_frame_pixels: int) -> None:
        self._label = label
        self._max_frame_pixels = max_frame_pixels
        self._paths = paths
        self._transposes: list[Image.Transpose | None] = []
        size: tuple[int, int] | None = None
        for i, path in enumerate(paths):
            width, height, transpose = self._header(path)
            if size is None:
                size = (width, height)
                _check_frame_pixels(width, height, max_frame_pixels, str(path))
            elif (width, height) != size:
                raise VideoError(
                    f"{path} is {width}x{height} but the first frame of {label} ({paths[0].name}) is "
                    f"{size[0]}x{size[1]}: all frames of a video must have the same size; resize or remove it"
                )
            self._transposes.append(transpose)
        assert size is not None
        super().__init__(len(paths), size[1], size[0], fps, label)

    def _unreadable(self, path: Path, reason: str) -> VideoError:
        return VideoError(
            f"{path} (a frame of {self._label}) is not an image Pillow can read ({reason}); remove it from "
            f"the frames or re-save it as PNG"
        )

    def _header(self, path: Path) -> tuple[int, int, Image.Transpose | None]:
        """(width, height) upright, and the transpose that makes the image upright; nothing decoded."""
        try:
            with warnings.catch_warnings():
                # Pillow warns about large images; the frame-size guard below decides, with its own message.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    width, height = image.size
                    # The base class's getexif reads only the header (PngImageFile's decodes the image).
                    orientation = Image.Image.getexif(image).get(0x0112, 1)
        except Image.DecompressionBombError as error:
            with open(path, "rb") as handle:
                declared = _declared_frame_size(handle.read(_HEADER_BYTES))
            if declared is not None:
                _check_frame_pixels(*declared, self._max_frame_pixels, str(path))
            raise VideoError(
                f"{path}: Pillow refuses to open it as a possible decompression bomb ({error}); downscale the frames, "
                "or raise PIL.Image.MAX_IMAGE_PIXELS if they are genuine"
            ) from None
        except FileNotFoundError:
            raise FileNotFoundError(f"frame image not found: {path} (was it removed after {self._label} was listed?)") from None
        except (OSError, SyntaxError, ValueError) as error:  # UnidentifiedImageError is an OSError
            raise self._unreadable(path, str(error)) from None
        transpose = _EXIF_TRANSPOSE.get(orientation) if isinstance(orientation, int) else None
        if orientation in (5, 6, 7, 8):  # a quarter turn: the upright image is the other way round
            width, height = height, width
        return width, height, transpose

    def frame(self, index: int) -> np.ndarray:
        path = self._paths[index]
        try:
            with Image.open(path) as image:
                transpose = self._transposes[index]
                upright = image.transpose(transpose) if transpose is not None else image
                frame = _pil_to_rgb(upright)
        except FileNotFoundError:
            raise VideoError(f"frame {index} of {self._label}, {path}, was removed after the frames were listed") from None
        except (OSError, SyntaxError, ValueError) as error:
            raise self._unreadable(path, f"decoding failed: {error}") from None
        if frame.shape[:2] != (self.metadata.height, self.metadata.width):
            raise VideoError(
                f"frame {index} of {self._label}, {path}, changed size after the frames were listed "
                f"({frame.shape[1]}x{frame.shape[0]}, not {self.metadata.width}x{self.metadata.height})"
            )
        return frame


class _SeekMissed(Exception):
    """A seek landed on a frame that cannot be placed before the target; decode from the start instead."""


class _FileFrames(_FrameSource):
    """An encoded video (path, bytes or file object), decoded with PyAV."""

    def __init__(self, source: Any, max_frame_pixels: int) -> None:
        self._path: str | None = None
        self._data: bytes | None = None
        self._file: BinaryIO | None = None
        self._file_start = 0
        self._open_containers: list[Any] = []
        self._max_frame_pixels = max_frame_pixels

        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            self._describe = str(source)
            if not path.exists():
                raise FileNotFoundError(f"video file not found: {source}")
            if path.is_dir():
                raise VideoError(f"{source} is a directory, not a video file; pass the path of a video inside it")
            if path.stat().st_size == 0:
                raise VideoError(f"video file {source} is empty (0 bytes); the write or download probably failed")
            self._path = str(path)
            label = str(source)
        elif isinstance(source, (bytes, bytearray, memoryview)):
            self._data = bytes(source)  # one copy for mutable buffers; bytes are shared, not copied
            self._describe = "the video given as bytes"
            label = "<bytes>"
            if not self._data:
                raise VideoError("the video bytes are empty (0 bytes); pass the content of an encoded video file")
        else:
            self._describe = "the video file object"
            label = "<file object>"
            if isinstance(source, io.TextIOBase):
                raise VideoError("the file object is in text mode: open the video in binary mode, open(path, 'rb')")
            seekable = bool(getattr(source, "seekable", lambda: False)())
            if seekable:
                self._file = source
                self._file_start = source.tell()
                source.seek(0, io.SEEK_END)
                size = source.tell() - self._file_start
                source.seek(self._file_start)
            else:
                # FFmpeg probes by seeking back and forth, so a pipe/socket is read into memory first.
                self._data = source.read()
                if not isinstance(self._data, (bytes, bytearray)):
                    raise VideoError("the file object returned text, not bytes: open the video in binary mode ('rb')")
                self._data = bytes(self._data)
                size = len(self._data)
            if size == 0:
                raise VideoError("the video file object is empty (0 bytes left to read); did you read it already?")

        self._label = label
        self._probe(max_frame_pixels)

    # -- opening ----------------------------------------------------------------------------------

    def _not_a_video(self, reason: str) -> VideoError:
        return VideoError(f"{self._describe} is not a readable video ({reason}); {_REENCODE_HINT}")

    def _open_container(self) -> Any:
        if self._path is not None:
            target: Any = self._path
        elif self._data is not None:
            target = io.BytesIO(self._data)  # a fresh cursor per pass; BytesIO shares the bytes
        else:
            assert self._file is not None
            if self._open_containers:
                raise VideoError(
                    "another iter_frames() pass over this file object is still open: finish or close it first "
                    "(a file object has a single read position; pass a path or bytes to iterate concurrently)"
                )
            self._file.seek(self._file_start)
            target = self._file
        try:
            container = av.open(target, mode="r", metadata_errors="replace")
        except av.FFmpegError as error:
            # A header declaring an absurd frame size fails here, before the codec-context guard of
            # _probe_container can run: read the size from the header and let the guard explain.
            self._check_declared_size()
            # A cut-short mp4 whose index (moov) was written last fails here, like a non-video file.
            raise self._not_a_video(f"{_av_message(error)}: it may be truncated, or not a video at all") from None
        self._open_containers.append(container)
        return container

    def _check_declared_size(self) -> None:
        """Run the frame-size guard on the size the file's header declares, if it can be read."""
        declared = _declared_frame_size(self._head())
        if declared is not None:
            _check_frame_pixels(*declared, self._max_frame_pixels, self._label)

    def _head(self) -> bytes:
        """The first bytes of the source (for :func:`_declared_frame_size`); empty if unreadable."""
        try:
            if self._path is not None:
                with open(self._path, "rb") as handle:
                    return handle.read(_HEADER_BYTES)
            if self._data is not None:
                return self._data[:_HEADER_BYTES]
            assert self._file is not None
            self._file.seek(self._file_start)
            head = self._file.read(_HEADER_BYTES)
            self._file.seek(self._file_start)
            return head if isinstance(head, bytes) else b""
        except OSError:
            return b""

    def _release(self, container: Any) -> None:
        if container in self._open_containers:
            self._open_containers.remove(container)
        try:
            container.close()
        except av.FFmpegError:
            pass  # closing an input cannot lose data; nothing useful to report

    def _video_stream(self, container: Any) -> Any:
        # Cover art in mp4/mkv is a one-frame "video" stream flagged attached_pic: never the video.
        streams = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
        if not streams:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise self._not_a_video(f"it has no video stream; streams found: {', '.join(kinds)}")
        stream = streams[0]
        if stream.codec_context is None:
            raise self._not_a_video(f"this FFmpeg build has no decoder for its {stream.codec.name!r} video codec")
        return stream

    def _probe(self, max_frame_pixels: int) -> None:
        """One demux pass: count packets, collect timestamps, decode only the first frame (rotation)."""
        container = self._open_container()
        try:
            try:
                self._probe_container(container, max_frame_pixels)
            except av.FFmpegError as error:
                self._check_declared_size()  # a decoder refusing an absurd size: the guard's message
                raise self._not_a_video(_av_message(error)) from None
        finally:
            self._release(container)

    def _probe_container(self, container: Any, max_frame_pixels: int) -> None:
        stream = self._video_stream(container)
        self._stream_index = stream.index
        context = stream.codec_context
        codec = context.name
        coded_width, coded_height = int(context.width or 0), int(context.height or 0)
        # The guard runs on the container's declared size, before a single frame is decoded.
        _check_frame_pixels(coded_width, coded_height, max_frame_pixels, self._label)

        time_base = stream.time_base
        pts: list[int] = []
        missing_pts = False
        max_pts: int | None = None
        last_duration = 0  # duration of the last frame in display order, in time_base units
        packets = 0  # every video packet, to compare with the count the header declares
        frames = 0  # packets the decoder turns into frames (not flagged discard)
        corrupt = False
        first_frame = None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    # The empty packet PyAV yields at the end flushes the decoder (first frame still pending).
                    if first_frame is None:
                        first_frame = next(iter(packet.decode()), None)
                    continue
                packets += 1
                corrupt = corrupt or packet.is_corrupt
                if packet.is_discard:
                    continue  # dropped by the decoder (e.g. before an mp4 edit list's start)
                frames += 1
                if packet.pts is None:
                    missing_pts = True
                else:
                    if max_pts is None or packet.pts > max_pts:
                        max_pts, last_duration = packet.pts, packet.duration or 0
                    pts.append(packet.pts)
                if first_frame is None and not corrupt:
                    first_frame = next(iter(packet.decode()), None)
        except av.FFmpegError as error:
            if first_frame is None:
                raise
            raise VideoError(
                f"{self._describe} is truncated or corrupt: reading its packets failed after "
                f"{_plural(packets, 'frame')} ({_av_message(error)}); re-download it or {_REENCODE_HINT}"
            ) from None

        declared = int(stream.frames or 0)  # 0 when the container does not say (mkv, ts, ...)
        num_frames = frames
        if declared and packets < declared:
            raise VideoError(
                f"{self._describe} is truncated or corrupt: its header declares {declared} frames but only "
                f"{packets} could be read; re-download it or {_REENCODE_HINT}"
            )
        if corrupt:
            raise VideoError(
                f"{self._describe} is truncated or corrupt: the demuxer flagged damaged data; "
                f"re-download it or {_REENCODE_HINT}"
            )
        if num_frames == 0:
            raise self._not_a_video("its video stream has no frames")
        if first_frame is None:
            raise self._not_a_video(f"no frame of its {codec!r} video stream could be decoded")

        width, height = first_frame.width, first_frame.height
        if (width, height) != (coded_width, coded_height):
            _check_frame_pixels(width, height, max_frame_pixels, self._label)
        rotation = self._rotation(first_frame, stream)
        if rotation in (90, 270):
            width, height = height, width

        average_rate = stream.average_rate or stream.guessed_rate
        if missing_pts or time_base is None:
            # Without packet timestamps the frames are assumed evenly spaced at the declared rate.
            rate = float(average_rate) if average_rate else DEFAULT_FPS
            timestamps = np.arange(num_frames, dtype=np.float64) / rate
            self._frame_pts: np.ndarray | None = None
        else:
            self._frame_pts = np.sort(np.asarray(pts, dtype=np.int64))
            timestamps = self._frame_pts.astype(np.float64) * time_base.numerator / time_base.denominator

        # Exact rational arithmetic on the integer timestamps, so that 24 fps reads back as 24.0.
        span: Fraction | None = None  # first frame to the end of the last one, in seconds
        if self._frame_pts is not None:
            ticks = int(self._frame_pts[-1] - self._frame_pts[0])
            if last_duration <= 0 and num_frames >= 2:
                last_duration = int(np.median(np.diff(self._frame_pts)))  # the muxer did not say
            if ticks + last_duration > 0:
                span = (ticks + last_duration) * Fraction(time_base)
        elif average_rate:
            span = num_frames / Fraction(average_rate)
        if span is not None:
            duration: float | None = float(span)
            fps = float(num_frames / span)
        else:
            duration = None
            fps = float(average_rate) if average_rate else DEFAULT_FPS

        self.timestamps = timestamps
        self.metadata = VideoMetadata(
            num_frames=num_frames,
            fps=float(fps),
            width=int(width),
            height=int(height),
            duration=duration,
            rotation=rotation,
            codec=codec,
            has_audio=any(s.type == "audio" for s in container.streams),
            variable_frame_rate=_variable_frame_rate(timestamps),
            source=self._label,
        )

    @staticmethod
    def _rotation(frame: Any, stream: Any) -> int:
        """Counter-clockwise degrees to rotate decoded frames by, rounded to a multiple of 90."""
        degrees = getattr(frame, "rotation", None)  # display matrix, PyAV >= 13
        if not degrees:
            tag = stream.metadata.get("rotate")  # older FFmpeg: clockwise degrees as a stream tag
            try:
                degrees = -float(tag) if tag else 0
            except ValueError:
                degrees = 0
        return int(round(float(degrees) / 90.0)) % 4 * 90

    # -- decoding ---------------------------------------------------------------------------------

    def _truncated(self, decoded: int, detail: str = "") -> VideoError:
        n = self.metadata.num_frames
        return VideoError(
            f"only decoded {decoded} of {n} frames from {self._describe}: the file is truncated or corrupt"
            f"{detail}; re-download it or {_REENCODE_HINT}"
        )

    def _to_rgb(self, frame: Any) -> np.ndarray:
        rgb = frame.to_ndarray(format="rgb24")
        if self.metadata.rotation:
            rgb = np.rot90(rgb, k=self.metadata.rotation // 90)
        return np.ascontiguousarray(rgb)

    def iter_frames(self, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        if indices.size == 0:
            return
        # Start late in a long file by seeking to the keyframe before the first wanted frame
        # (frames are then placed by their timestamps); without timestamps, decode from the start.
        seek = self._frame_pts is not None and int(indices[0]) > 0
        try:
            yield from self._decode(indices, seek)
        except _SeekMissed:
            yield from self._decode(indices, False)

    def _decode(self, indices: np.ndarray, seek: bool) -> Iterator[tuple[int, np.ndarray]]:
        container = self._open_container()
        try:
            stream = container.streams[self._stream_index]
            stream.thread_type = "AUTO"  # frame + slice threading: decoding is the bottleneck
            frame_pts = self._frame_pts
            wanted = iter(indices.tolist())
            target = next(wanted)
            if seek:
                container.seek(int(frame_pts[target]), backward=True, any_frame=False, stream=stream)
            index = -1
            decoded = 0
            try:
                for packet in container.demux(stream):
                    for frame in packet.decode():
                        decoded += 1
                        # Identify frames by their timestamp when possible, so that a frame the decoder
                        # drops is reported as missing instead of shifting every later index.
                        position = -1
                        if frame_pts is not None and frame.pts is not None:
                            position = int(np.searchsorted(frame_pts, frame.pts))
                            if position >= frame_pts.size or frame_pts[position] != frame.pts:
                                position = -1
                        if seek and index < 0 and (position < 0 or position > target):
                            raise _SeekMissed  # landed where frames cannot be placed: decode from the start
                        index = position if position > index else index + 1
                        if index > target:
                            raise self._truncated(decoded, f" (frame {target} could not be decoded)")
                        if index == target:
                            yield index, self._to_rgb(frame)
                            target = next(wanted, None)
                            if target is None:
                                return
            except av.FFmpegError as error:
                raise self._truncated(decoded, f" ({_av_message(error)})") from None
            raise self._truncated(decoded)
        finally:
            self._release(container)

    def close(self) -> None:
        for container in list(self._open_containers):
            self._release(container)


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


class VideoReader:
    """Lazy, sequential access to the frames of one video (file or in-memory).

    Create it with :func:`open_video`. Opening validates the source and reads its metadata (for files,
    one demux pass over the packets and one decoded frame); frames are only decoded by
    :meth:`iter_frames` / :meth:`read`.

    Attributes:
        metadata: Properties of the whole video (:class:`VideoMetadata`).
        timestamps: ``(num_frames,)`` ``float64`` time in seconds of each frame in display order (from
            the packet timestamps for files; ``i / fps`` for in-memory frames).
    """

    metadata: VideoMetadata
    timestamps: np.ndarray

    def __init__(
        self,
        source: VideoSource,
        *,
        fps: float | None = None,
        max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
        min_frames: int = 1,
    ) -> None:
        if not _is_int(max_frame_pixels) or max_frame_pixels < 1:
            raise VideoError(f"max_frame_pixels must be a positive integer, got {max_frame_pixels!r}")
        if not _is_int(min_frames) or min_frames < 1:
            raise VideoError(f"min_frames must be an integer >= 1, got {min_frames!r}")
        self._closed = False
        self._source = _make_source(source, fps, int(max_frame_pixels))
        self.metadata = self._source.metadata
        self.timestamps = self._source.timestamps
        self.timestamps.flags.writeable = False  # shared with the source; a caller edit would desync it
        if self.metadata.num_frames < min_frames:
            have = _plural(self.metadata.num_frames, "frame")
            raise VideoError(
                f"this video has {have}; at least {min_frames} are needed (min_frames={min_frames}); "
                f"use a longer video"
            )

    def __len__(self) -> int:
        return self.metadata.num_frames

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"VideoReader(source={m.source!r}, num_frames={m.num_frames}, size={m.width}x{m.height}, "
            f"fps={m.fps:.3f}{', closed' if self._closed else ''})"
        )

    def iter_frames(self, indices: Sequence[int] | np.ndarray | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` for the requested frames, in increasing order.

        Frames are decoded sequentially in one pass from the start of the video, keeping one frame in
        memory at a time; decoding stops after the last requested frame. The method may be called
        several times (each call re-opens the source). For a file object source only one pass may be
        open at a time, because the file has a single read position.

        Args:
            indices: Strictly increasing frame indices in ``[0, len(self))`` (e.g. from
                :func:`select_frames`); ``None`` for every frame.

        Yields:
            ``(index, frame)`` with ``frame`` a ``(H, W, 3)`` ``uint8`` RGB array, upright (rotation
            applied), of size ``(metadata.height, metadata.width)``.

        Raises:
            VideoError: Immediately (before anything is decoded) for negative, out-of-range or
                non-increasing indices, or a closed reader. During iteration if a requested frame
                cannot be produced: a file that fails to decode part way ("only decoded K of N
                frames: the file is truncated or corrupt"), or an in-memory frame with invalid values
                (NaN, float outside [0, 1]); the frames before it have been yielded.
        """
        if self._closed:
            raise VideoError("this VideoReader is closed; open the video again with open_video()")
        checked = _check_indices(indices, self.metadata.num_frames)
        return self._source.iter_frames(checked)

    def read(self, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """All requested frames as one array (convenient for short videos and selected frames).

        Args:
            indices: As for :meth:`iter_frames`; ``None`` for every frame.

        Returns:
            ``(n, H, W, 3)`` ``uint8`` RGB frames.
        """
        checked = _check_indices(indices, self.metadata.num_frames)
        video = np.empty((checked.size, self.metadata.height, self.metadata.width, 3), dtype=np.uint8)
        for position, (_, frame) in enumerate(self.iter_frames(checked)):
            video[position] = frame
        return video

    def close(self) -> None:
        """Release open decoders; the reader cannot be used afterwards. Idempotent."""
        if not self._closed:
            self._closed = True
            self._source.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _make_source(source: Any, fps: float | None, max_frame_pixels: int) -> _FrameSource:
    images = _image_sequence(source) if isinstance(source, (str, os.PathLike)) else None
    if images is not None:
        return _ImageFrames(images, os.fspath(source), fps, max_frame_pixels)
    in_memory = isinstance(source, (np.ndarray, torch.Tensor, list, tuple))
    if fps is not None and not in_memory:
        raise VideoError(
            "fps= is only for in-memory frames and image sequences (a directory or glob of frames); "
            "video files carry their own rate"
        )
    if isinstance(source, np.ndarray):
        return _ArrayFrames(source, fps, max_frame_pixels)
    if isinstance(source, torch.Tensor):
        return _TensorFrames(source, fps, max_frame_pixels)
    if isinstance(source, (list, tuple)):
        return _PILFrames(source, fps, max_frame_pixels)
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)) or callable(getattr(source, "read", None)):
        return _FileFrames(source, max_frame_pixels)
    if isinstance(source, Image.Image):
        raise TypeError("a single PIL image is not a video: pass a list of PIL images, e.g. [image]")
    raise TypeError(
        f"unsupported video source of type {type(source).__name__}: pass a file path, a directory or glob "
        f"pattern of frame images, the bytes of an encoded video, a binary file object, a numpy array, a torch "
        f"tensor or a list of PIL images"
    )


def open_video(
    source: VideoSource,
    *,
    fps: float | None = None,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    min_frames: int = 1,
) -> VideoReader:
    """Open a video for lazy, sequential frame access.

    Args:
        source: A path (``str`` / ``os.PathLike``) of a video file; a directory of frame images, or
            a glob pattern of them (``"frames/*.jpg"``), read in natural order (see "Image
            sequences" in the module docstring); ``bytes`` / ``bytearray`` / ``memoryview`` holding
            an encoded video file; a binary file object (non-seekable ones are read into memory
            first); a numpy array or torch tensor of frames, ``(T, H, W, 3)`` / ``(T, H, W, 4)``
            (alpha dropped) / ``(T, H, W, 1)`` / ``(T, H, W)`` (greyscale), ``uint8`` or float in
            ``[0, 1]`` (tensors may also be ``(T, C, H, W)`` when unambiguous); or a list/tuple of
            PIL images of one size.
        fps: Frame rate of in-memory frames and image sequences (default :data:`DEFAULT_FPS`,
            30.0). An error for video files, which carry their own.
        max_frame_pixels: Refuse frames with more pixels than this (checked before decoding or
            copying anything). The default refuses e.g. 10000x10000.
        min_frames: Refuse videos with fewer frames.

    Returns:
        A :class:`VideoReader`; use it as a context manager or call ``close()``.

    Raises:
        FileNotFoundError: The path does not exist, or a glob pattern matches no file.
        TypeError: The source is of an unsupported type.
        VideoError: The source is not a readable video (see the messages), is too large, or too short;
            a directory holds no image files; an image of a sequence is unreadable or of another
            size than the first.
    """
    return VideoReader(source, fps=fps, max_frame_pixels=max_frame_pixels, min_frames=min_frames)


def load_video(
    source: VideoSource,
    *,
    num_frames: int | None = None,
    stride: int | None = None,
    fps: float | None = None,
    start: int = 0,
    end: int | None = None,
    source_fps: float | None = None,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    min_frames: int = 1,
) -> tuple[np.ndarray, VideoMetadata]:
    """Read (a selection of) a video into memory: :func:`open_video` + :func:`select_frames` + read.

    Args:
        source: Anything :func:`open_video` accepts.
        num_frames: Select this many evenly spaced frames (see :func:`select_frames`).
        stride: Select every ``stride``-th frame.
        fps: Resample to this frame rate (the *selection* rate, as in :func:`select_frames`).
        start: First frame of the range to select from.
        end: One past the last frame of the range (default: the end of the video).
        source_fps: Frame rate of in-memory frames and image sequences (``open_video(fps=...)``);
            an error for video files.
        max_frame_pixels: See :func:`open_video`.
        min_frames: See :func:`open_video` (applies to the whole source, not the selection).

    Returns:
        ``(frames, metadata)``: ``(n, H, W, 3)`` ``uint8`` RGB frames and the metadata of the whole
        source (its ``num_frames``/``fps`` describe the source, not the selection).
    """
    with open_video(source, fps=source_fps, max_frame_pixels=max_frame_pixels, min_frames=min_frames) as reader:
        indices = select_frames(
            len(reader), reader.timestamps, num_frames=num_frames, stride=stride, fps=fps, start=start, end=end
        )
        return reader.read(indices), reader.metadata


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def _check_output_frame(frame: Any, index: int, what: str) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise VideoError(f"{what}: frame {index} is a {type(frame).__name__}; expected a numpy uint8 (H, W, 3) array")
    if frame.dtype != np.uint8:
        hint = " (convert floats in [0, 1] with (frame * 255).round().astype(np.uint8))" if np.issubdtype(frame.dtype, np.floating) else ""
        raise VideoError(f"{what}: frame {index} has dtype {frame.dtype}; expected uint8 RGB{hint}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise VideoError(f"{what}: frame {index} has shape {frame.shape}; expected (H, W, 3) RGB")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise VideoError(f"{what}: frame {index} is empty (shape {frame.shape})")
    return frame


def _check_output_path(path: str | os.PathLike, suffix: str | None) -> Path:
    target = Path(path)
    if suffix is not None and target.suffix.lower() != suffix:
        raise VideoError(f"cannot write {target}: the file name must end in {suffix} (an {suffix[1:]} video is written)")
    if not target.parent.is_dir():
        raise VideoError(f"cannot write {target}: the directory {target.parent} does not exist; create it first")
    if target.is_dir():
        raise VideoError(f"cannot write {target}: it is an existing directory")
    return target


def _remove_quietly(path: Path | None) -> None:
    if path is not None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


class VideoWriter:
    """Streamed, atomic mp4 writer.

    Frames are encoded as they are written to a hidden temporary file beside ``path`` (same directory,
    hence same file system), which a successful :meth:`close` renames onto ``path``. On an exception
    inside ``with``, or if :meth:`close` fails, the temporary file is removed and ``path`` is untouched
    (an existing file there stays as it was). A writer dropped without ``close()`` discards its output.

    Frames with an odd width or height are padded to even sizes by edge replication when the pixel
    format subsamples chroma (``yuv420p``, the default, needs even sizes), so such a file reads back
    one row/column larger.

    Args:
        path: Output file, ending in ``.mp4``; its directory must exist.
        fps: Frame rate; fractional rates are exact (29.97 is stored as 30000/1001).
        codec: FFmpeg encoder name (default ``"libx264"``, H.264).
        crf: Constant rate factor for ``libx264`` / ``libx265`` (0 lossless .. 51 worst; 18 is visually
            lossless). Other encoders use their default rate control.
        pixel_format: Pixel format stored in the file; ``yuv420p`` plays everywhere.

    Example:
        >>> with VideoWriter("out.mp4", fps=24) as writer:  # doctest: +SKIP
        ...     for frame in frames:
        ...         writer.write(frame)  # (H, W, 3) uint8
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        *,
        codec: str = "libx264",
        crf: int = 18,
        pixel_format: str = "yuv420p",
    ) -> None:
        self.path = _check_output_path(path, ".mp4")
        self.fps = _check_positive_rate(fps, "VideoWriter fps")
        self._rate = _rate_fraction(self.fps)
        try:
            encoder = av.codec.Codec(codec, "w")
        except ValueError:  # av.codec.codec.UnknownCodecError
            raise VideoError(f"unknown video encoder {codec!r} in this FFmpeg build; use codec='libx264'") from None
        if encoder.type != "video":
            raise VideoError(f"{codec!r} is an {encoder.type} encoder, not a video encoder; use codec='libx264'")
        try:
            pix = av.VideoFormat(pixel_format)
        except ValueError:
            raise VideoError(f"unknown pixel format {pixel_format!r}; use pixel_format='yuv420p'") from None
        if codec in _CRF_ENCODERS and (not _is_int(crf) or not 0 <= crf <= 51):
            raise VideoError(f"crf must be an integer in [0, 51] (lower is better quality), got {crf!r}")
        self.codec = codec
        self.crf = int(crf)
        self.pixel_format = pixel_format
        # Chroma-subsampled formats (4:2:0, 4:2:2) need the subsampled dimension(s) to be even.
        self._even_width = pix.chroma_width(2) == 1
        self._even_height = pix.chroma_height(2) == 1
        self._temp: Path | None = None
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None  # (height, width) of the frames given
        self._count = 0
        self._state = "open"  # "open" -> "closed" (renamed onto path) or "failed" (nothing written)

    def __repr__(self) -> str:
        return f"VideoWriter(path={str(self.path)!r}, fps={self.fps:g}, frames={self._count}, {self._state})"

    @property
    def frames_written(self) -> int:
        """Number of frames written so far."""
        return self._count

    def _start(self, height: int, width: int) -> None:
        # Hidden, unique, same directory: os.replace() onto the target is then atomic.
        self._temp = self.path.with_name(f".{self.path.stem}.{secrets.token_hex(6)}.partial.mp4")
        self._container = av.open(str(self._temp), mode="w", format="mp4", options={"movflags": "+faststart"})
        stream = self._container.add_stream(self.codec, rate=self._rate)
        stream.width = width + (width % 2 if self._even_width else 0)
        stream.height = height + (height % 2 if self._even_height else 0)
        stream.pix_fmt = self.pixel_format
        stream.codec_context.time_base = 1 / self._rate  # pts counts frames
        if self.codec in _CRF_ENCODERS:
            stream.options = {"crf": str(self.crf)}
        self._stream = stream
        # Open the encoder and write the header now rather than at the first muxed packet (which the
        # encoder's lookahead delays): unsupported settings fail on the first write(), and the
        # temporary file exists from then on.
        self._container.start_encoding()

    def write(self, frame: np.ndarray) -> None:
        """Encode one frame.

        Args:
            frame: ``(H, W, 3)`` ``uint8`` RGB; every frame must have the size of the first.

        Raises:
            VideoError: For a wrong dtype/shape/size, a closed writer, or an encoder failure (the
                writer is then aborted: nothing is written to ``path``).
        """
        if self._state != "open":
            raise VideoError(f"cannot write to {self.path}: this VideoWriter is already {self._state}")
        frame = _check_output_frame(frame, self._count, f"VideoWriter({self.path.name})")
        height, width = frame.shape[:2]
        if self._size is None:
            self._size = (height, width)
        elif self._size != (height, width):
            raise VideoError(
                f"frame {self._count} is {width}x{height} but the first frame was {self._size[1]}x{self._size[0]}: "
                f"all frames of a video must have the same size"
            )
        pad_h = height % 2 if self._even_height else 0
        pad_w = width % 2 if self._even_width else 0
        if pad_h or pad_w:
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        try:
            if self._container is None:
                self._start(height, width)
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            video_frame.pts = self._count
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)
        except av.FFmpegError as error:
            self._abort()
            hint = (
                f" (check that {self.codec} supports pixel_format={self.pixel_format!r} and "
                f"{frame.shape[1]}x{frame.shape[0]} frames; codec='libx264' with 'yuv420p' always works)"
                if self._count == 0
                else ""
            )
            raise VideoError(
                f"encoding frame {self._count} of {self.path} with {self.codec} failed: "
                f"{_av_message(error)}{hint}; nothing was written"
            ) from None
        self._count += 1

    def close(self) -> Path:
        """Finish encoding and atomically move the video onto ``path``.

        Returns:
            The output path.

        Raises:
            VideoError: No frame was written ("no frames to write"; nothing is created), or finishing
                the file failed (the temporary file is removed, ``path`` is untouched).
        """
        if self._state == "closed":
            return self.path
        if self._state == "failed":
            raise VideoError(f"this VideoWriter for {self.path} failed or was aborted; nothing was written")
        if self._count == 0:
            self._state = "failed"
            raise VideoError(f"no frames to write to {self.path}: call write(frame) at least once before close()")
        try:
            for packet in self._stream.encode(None):  # flush the encoder's delayed frames
                self._container.mux(packet)
            self._container.close()
            self._container = None
            os.replace(self._temp, self.path)
        except (av.FFmpegError, OSError) as error:
            self._abort()
            message = _av_message(error) if isinstance(error, av.FFmpegError) else str(error)
            raise VideoError(f"finishing {self.path} failed: {message}; the file was not written") from None
        self._state = "closed"
        return self.path

    def _abort(self) -> None:
        """Drop everything: close the container quietly and delete the temporary file."""
        self._state = "failed"
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - cleanup after a failure; the original error matters
                pass
            self._container = None
        _remove_quietly(self._temp)
        self._temp = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if exc_type is not None:
            self._abort()
        else:
            self.close()

    def __del__(self) -> None:
        # Not closed: a partial video must never appear at `path`; just clean up the temporary file.
        if getattr(self, "_state", None) == "open":
            try:
                self._abort()
            except Exception:  # noqa: BLE001 - never raise from a finalizer (e.g. at interpreter exit)
                pass


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    codec: str = "libx264",
    crf: int = 18,
    pixel_format: str = "yuv420p",
) -> Path:
    """Write frames to an mp4 file atomically (a :class:`VideoWriter` over an iterable).

    Args:
        path: Output path, ending in ``.mp4``.
        frames: ``(H, W, 3)`` ``uint8`` RGB frames of one size (an array ``(T, H, W, 3)`` works too);
            consumed lazily, so a generator streams.
        fps: Frame rate.
        codec: See :class:`VideoWriter`.
        crf: See :class:`VideoWriter`.
        pixel_format: See :class:`VideoWriter`.

    Returns:
        The output path.
    """
    with VideoWriter(path, fps, codec=codec, crf=crf, pixel_format=pixel_format) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.path


def write_png_frames(
    directory: str | os.PathLike,
    frames: Iterable[np.ndarray],
    *,
    prefix: str = "frame_",
    overwrite: bool = False,
    palette: np.ndarray | None = None,
) -> Path:
    """Write one lossless PNG per frame, atomically.

    The PNGs, named ``f"{prefix}{i:05d}.png"``, are written into a hidden temporary sibling directory
    that is renamed onto ``directory`` at the end; on any error it is removed and nothing appears
    (an existing directory stays as it was).

    Args:
        directory: Output directory; it may exist only if empty, or, with ``overwrite``, if it holds
            nothing but PNG frames of this prefix (an earlier output, replaced as a whole). Its
            parent must exist.
        frames: ``(H, W, 3)`` ``uint8`` RGB frames of one size; with ``palette``, ``(H, W)``
            ``uint8`` label maps.
        prefix: File name prefix (no path separators).
        overwrite: Replace an existing directory of PNG frames.
        palette: ``(N <= 256, 3)`` ``uint8`` colours: write palette ("P" mode) PNGs whose pixel
            values are the labels (segmentation masks, as DAVIS stores them).

    Returns:
        The output directory.

    Raises:
        VideoError: For a file or a symbolic link at ``directory``, an existing non-empty directory
            (without ``overwrite``, or holding other files), a missing parent, a bad prefix,
            invalid frames, or no frames at all (nothing is created or changed).
    """
    target = Path(directory)
    if os.sep in prefix or (os.altsep and os.altsep in prefix):
        raise VideoError(f"prefix {prefix!r} must be a file name prefix without path separators")
    colours = None
    if palette is not None:
        colours = np.asarray(palette)
        if colours.dtype != np.uint8 or colours.ndim != 2 or colours.shape[1] != 3 or not 1 <= len(colours) <= 256:
            raise VideoError(f"palette must be (N <= 256, 3) uint8 colours, got {colours.dtype} {colours.shape}")
        colours = colours.reshape(-1).tolist()
    replace = _check_png_directory(target, prefix, overwrite)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
    temp.mkdir()
    try:
        size: tuple[int, ...] | None = None
        count = 0
        for count, frame in enumerate(frames, start=1):
            if colours is None:
                frame = _check_output_frame(frame, count - 1, "write_png_frames")
            else:
                frame = np.asarray(frame)
                if frame.dtype != np.uint8 or frame.ndim != 2 or 0 in frame.shape:
                    raise VideoError(f"write_png_frames: label map {count - 1} must be (H, W) uint8, got {frame.dtype} {frame.shape}")
            if size is None:
                size = frame.shape
            elif frame.shape != size:
                raise VideoError(
                    f"write_png_frames: frame {count - 1} has shape {frame.shape} but the first frame has {size}; "
                    f"all frames of a video must have the same size"
                )
            if colours is None:
                image = Image.fromarray(np.ascontiguousarray(frame))
            else:  # the bytes are the labels, as they are (no colour conversion)
                image = Image.frombytes("P", (frame.shape[1], frame.shape[0]), np.ascontiguousarray(frame).tobytes())
                image.putpalette(colours)
            image.save(temp / f"{prefix}{count - 1:05d}.png")
        if count == 0:
            raise VideoError(f"no frames to write to {target}: the frame iterable is empty")
        if replace:
            # rename() cannot replace a non-empty directory: move the old one aside, put the new one
            # in place, then delete the old one (restored if the second rename fails).
            old = target.with_name(f".{target.name}.{secrets.token_hex(6)}.old")
            os.replace(target, old)
            try:
                os.replace(temp, target)
            except BaseException:
                os.replace(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            if target.exists():
                target.rmdir()  # empty (checked above); rename() cannot replace a directory portably
            os.replace(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return target


def _check_png_directory(target: Path, prefix: str, overwrite: bool) -> bool:
    """Whether ``target`` is an existing directory of PNG frames to replace; refuse what cannot be written.

    Checked before any frame is rendered, so a refused output costs nothing. ``overwrite`` only
    ever replaces a directory that holds nothing but ``{prefix}NNNNN.png`` files: it never deletes
    a directory of other files (``--overwrite -o ~`` must not remove a home directory).
    """
    if target.is_symlink():
        raise VideoError(
            f"cannot write PNG frames to {target}: it is a symbolic link (to {os.readlink(target)}); "
            "replacing it would delete the link, not write into its target; pass the real directory"
        )
    if not target.parent.is_dir():
        raise VideoError(f"cannot write {target}: the directory {target.parent} does not exist; create it first")
    if not target.exists():
        return False
    if not target.is_dir():
        raise VideoError(f"cannot write PNG frames to {target}: a file with that name exists; remove it or choose another name")
    entries = list(target.iterdir())
    if not entries:
        return False
    if not overwrite:
        raise VideoError(
            f"refusing to write PNG frames into {target}: the directory is not empty; remove it, choose another, "
            "or pass overwrite=True (CLI: --overwrite) to replace earlier PNG frames"
        )
    frame_name = re.compile(re.escape(prefix) + r"\d+\.png")
    others = sorted(entry.name for entry in entries if not (frame_name.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink()))
    if others:
        shown = ", ".join(others[:5]) + (f", ... ({len(others) - 5} more)" if len(others) > 5 else "")
        raise VideoError(
            f"refusing to replace {target}: it holds files that are not PNG frames ({shown}); overwrite only "
            "replaces an earlier PNG-frame output; remove the directory or choose another"
        )
    return True
