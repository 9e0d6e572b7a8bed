"""Synthetic test videos: deterministic frames and real encoded files, written with PyAV directly.

Imported by tests as ``from video_factory import ...`` (pytest's default "prepend" import mode puts
``tests/`` on ``sys.path``). The writers here deliberately do not use ``fourd_hub.video_io``, so the
reader is tested against files produced independently of its own writer.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

__all__ = [
    "moving_shapes_frames",
    "png_declaring_size",
    "write_image_frames",
    "write_test_video",
    "write_vfr_test_video",
    "write_y4m_declaring_size",
]

# Fine time base for explicit timestamps (the MPEG 90 kHz clock).
_VFR_TIME_BASE = Fraction(1, 90_000)
_AUDIO_RATE = 44_100


def moving_shapes_frames(num_frames: int = 24, height: int = 72, width: int = 96, seed: int = 0) -> np.ndarray:
    """Frames of textured shapes moving over a slowly panning textured background.

    Smooth textures (gradients and sinusoids rather than hard checkerboards) keep lossy H.264 error
    low, while the motion and texture make every frame distinct and orientation-sensitive (no
    symmetry), so flips, rotations and frame shifts are detectable.

    Args:
        num_frames: Number of frames T.
        height: Frame height H.
        width: Frame width W.
        seed: Seed for colours, positions and velocities (frames are deterministic per seed).

    Returns:
        ``(T, H, W, 3)`` ``uint8`` RGB frames.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames, dtype=np.float32)[:, None, None]
    y = np.arange(height, dtype=np.float32)[None, :, None]
    x = np.arange(width, dtype=np.float32)[None, None, :]

    # Background: a diagonal gradient plus a sinusoidal texture that pans like a moving camera.
    pan_x, pan_y = rng.uniform(0.5, 1.5), rng.uniform(-0.8, 0.8)
    bx, by = x + pan_x * t, y + pan_y * t
    texture = np.sin(bx * 0.35) * np.cos(by * 0.27) + 0.5 * np.sin((bx + by) * 0.11)
    gradient = x / max(width - 1, 1) * 0.6 + y / max(height - 1, 1) * 0.4
    base = rng.uniform(40, 90, size=3).astype(np.float32)
    frames = np.empty((num_frames, height, width, 3), dtype=np.float32)
    for c in range(3):
        frames[..., c] = base[c] + 90 * gradient + 25 * (c + 1) / 3 * texture

    # A disc with a radial texture and a striped rectangle, moving on linear paths.
    size = min(height, width)
    radius = size * rng.uniform(0.15, 0.22)
    start = rng.uniform([radius, radius], [height - radius, width - radius])
    velocity = rng.uniform(-1.5, 1.5, size=2)
    cy = start[0] + velocity[0] * t
    cx = start[1] + velocity[1] * t
    distance = np.sqrt((y - cy) ** 2 + (x - cx) ** 2)
    disc = distance < radius
    disc_colour = rng.uniform(150, 230, size=3)
    ring = 20 * np.cos(distance * 0.9)
    for c in range(3):
        frames[..., c] = np.where(disc, disc_colour[c] + ring, frames[..., c])

    rect_h, rect_w = size * 0.3, size * 0.45
    top0, left0 = rng.uniform(0, height - rect_h), rng.uniform(0, width - rect_w)
    rv = rng.uniform(-1.2, 1.2, size=2)
    top, left = top0 + rv[0] * t, left0 + rv[1] * t
    rect = (y >= top) & (y < top + rect_h) & (x >= left) & (x < left + rect_w)
    stripes = 30 * np.sin((x - left) * 0.6)
    rect_colour = rng.uniform(20, 110, size=3)
    for c in range(3):
        frames[..., c] = np.where(rect, rect_colour[c] + stripes, frames[..., c])

    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def _encode_frames(container: av.container.OutputContainer, stream: av.video.stream.VideoStream,
                   frames: np.ndarray, pts: Sequence[int]) -> None:
    for frame, frame_pts in zip(frames, pts):
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = int(frame_pts)
        for packet in stream.encode(video_frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def _add_video_stream(container: av.container.OutputContainer, frames: np.ndarray, codec: str, rate: Fraction,
                      pixel_format: str, keyframe_interval: int | None = None) -> av.video.stream.VideoStream:
    stream = container.add_stream(codec, rate=rate)
    stream.height, stream.width = frames.shape[1], frames.shape[2]
    stream.pix_fmt = pixel_format
    if codec == "libx264":
        stream.options = {"crf": "12"}  # high quality: tests compare pixels with a small tolerance
    if keyframe_interval is not None:
        stream.codec_context.gop_size = keyframe_interval
    return stream


def write_test_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float = 24,
    codec: str = "libx264",
    audio: bool = False,
    pixel_format: str = "yuv420p",
    rotation: int | None = None,
    faststart: bool = False,
    keyframe_interval: int | None = None,
) -> Path:
    """Encode frames into an mp4 file with PyAV.

    Args:
        path: Output file.
        frames: ``(T, H, W, 3)`` ``uint8`` RGB frames (even H and W for 4:2:0 formats).
        fps: Constant frame rate.
        codec: FFmpeg encoder (``"libx264"``, ``"mpeg4"``, ``"png"`` ...).
        audio: Also add an AAC stream with a 440 Hz tone lasting as long as the video.
        pixel_format: Pixel format stored in the file (``"gray"`` and ``"rgba"`` work with ``"png"``).
        rotation: Store a display matrix rotating the video by this many degrees counter-clockwise
            (what a reader must apply to decoded frames), as phones do for portrait videos.
        faststart: Put the mp4 index (moov) before the data, so a truncated copy still opens.
        keyframe_interval: frames between keyframes (GOP size; default: the encoder's, 250 for x264).

    Returns:
        The path written.

    Raises:
        NotImplementedError: ``rotation`` with a PyAV too old to write a display matrix (< 16).
    """
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        stream = _add_video_stream(container, frames, codec, rate, pixel_format, keyframe_interval)
        stream.codec_context.time_base = 1 / rate
        if rotation is not None:
            if not hasattr(stream, "set_display_rotation"):
                raise NotImplementedError(
                    f"PyAV {av.__version__} cannot write a display matrix (VideoStream.set_display_rotation "
                    f"arrived in PyAV 16)"
                )
            stream.set_display_rotation(rotation)
        audio_stream = container.add_stream("aac", rate=_AUDIO_RATE, layout="mono") if audio else None
        _encode_frames(container, stream, frames, range(len(frames)))
        if audio_stream is not None:
            num_samples = int(round(len(frames) / float(rate) * _AUDIO_RATE))
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(num_samples) / _AUDIO_RATE)).astype(np.float32)
            chunk = 1024  # AAC frame size
            for offset in range(0, num_samples, chunk):
                samples = np.ascontiguousarray(tone[None, offset : offset + chunk])
                audio_frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                audio_frame.sample_rate = _AUDIO_RATE
                audio_frame.pts = offset
                for packet in audio_stream.encode(audio_frame):
                    container.mux(packet)
            for packet in audio_stream.encode(None):
                container.mux(packet)
    return path


def write_vfr_test_video(path: str | os.PathLike, frames: np.ndarray, timestamps_seconds: Sequence[float]) -> Path:
    """Encode a variable frame rate mp4: each frame's pts is set explicitly on a 90 kHz time base.

    Args:
        path: Output file.
        frames: ``(T, H, W, 3)`` ``uint8`` RGB frames (even H and W).
        timestamps_seconds: ``(T,)`` strictly increasing presentation times in seconds.

    Returns:
        The path written.
    """
    times = np.asarray(timestamps_seconds, dtype=np.float64)
    if times.shape != (len(frames),) or np.any(np.diff(times) <= 0):
        raise ValueError("timestamps_seconds must be strictly increasing, one per frame")
    path = Path(path)
    pts = np.rint(times / float(_VFR_TIME_BASE)).astype(np.int64)
    # The nominal rate only seeds the encoder's rate control; the timestamps carry the timing.
    nominal = Fraction(max(len(times) - 1, 1) / max(float(times[-1] - times[0]), 1e-3)).limit_denominator(1001)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = _add_video_stream(container, frames, "libx264", nominal, "yuv420p")
        stream.codec_context.time_base = _VFR_TIME_BASE
        _encode_frames(container, stream, frames, pts)
    return path


def write_y4m_declaring_size(path: str | os.PathLike, frames: np.ndarray, width: int, height: int, fps: int = 24) -> Path:
    """A valid Y4M (raw YUV 4:2:0) file written by PyAV, then its header patched to claim ``width`` x ``height``.

    Only the ``W`` and ``H`` tokens of the text header change; the frame data stays the small
    frames', so the file is tiny however large the size it declares (a decompression bomb header).
    """
    path = Path(path)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    header, rest = buffer.getvalue().split(b"\n", 1)
    assert header.startswith(b"YUV4MPEG2 "), header
    header = re.sub(rb" W\d+", b" W%d" % width, header)
    header = re.sub(rb" H\d+", b" H%d" % height, header)
    path.write_bytes(header + b"\n" + rest)
    return path


def png_declaring_size(frame: np.ndarray, width: int, height: int) -> bytes:
    """A PNG of ``frame`` whose IHDR chunk claims ``width`` x ``height`` (its CRC recomputed, so it parses)."""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"IHDR")
    data[start + 4 : start + 12] = struct.pack(">II", width, height)
    data[start + 17 : start + 21] = struct.pack(">I", zlib.crc32(bytes(data[start : start + 17])))
    return bytes(data)


def write_image_frames(directory: str | os.PathLike, frames: np.ndarray, names: Sequence[str] | None = None) -> list[Path]:
    """Save each frame as an image file with Pillow (the format from each name's extension).

    Args:
        directory: Existing or new directory.
        frames: ``(T, H, W, 3)`` ``uint8`` RGB frames.
        names: One file name per frame (default ``frame_0.png``, ``frame_1.png``, ...).

    Returns:
        The paths written, in the order of ``frames``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = [f"frame_{i}.png" for i in range(len(frames))] if names is None else list(names)
    paths = [directory / name for name in names]
    for frame, path in zip(frames, paths):
        Image.fromarray(np.ascontiguousarray(frame)).save(path)
    return paths
