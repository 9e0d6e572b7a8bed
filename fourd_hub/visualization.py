"""Render pipeline results (depth, point tracks, boxes, camera poses, reconstructions, object masks, keypoints) as video frames.

Every frame here is an ``(H, W, 3)`` ``uint8`` RGB numpy array. The ``render_*`` functions take
iterables of frames and return iterators of frames, so a long video is processed one frame at a
time and never held in memory: feed them a decoder, hand their output to an encoder. Their
arguments (tracks, boxes, poses, options) are validated when they are called, so a mistake fails at
the call site; the frames themselves are read, checked and drawn lazily, one per ``next()``.

Pixel coordinates follow the models' public API: (x, y) with (0, 0) the top-left corner of the
top-left pixel, so the pixel in row ``i`` and column ``j`` covers ``[j, j + 1) x [i, i + 1)`` and
its centre is ``(j + 0.5, i + 0.5)``. ``PIL.ImageDraw`` puts integer coordinates at pixel centres
and truncates fractional ones, so every coordinate handed to it is converted and rounded here first
(:func:`_pil_coordinate`).

Only numpy and Pillow are used (no OpenCV, no matplotlib): colour mapping goes through (256, 3)
lookup tables indexed with numpy, drawing through ``PIL.ImageDraw``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "colormap",
    "colorize_depth",
    "davis_palette",
    "depth_range",
    "render_boxes",
    "render_camera_trajectory",
    "render_depth_video",
    "render_pose_video",
    "render_keypoints",
    "render_reconstruction",
    "render_segmentation",
    "render_tracks",
    "side_by_side",
    "track_colors",
]

# --------------------------------------------------------------------------------- colour maps

# Turbo (Google AI, 2019) as 17 evenly spaced key colours. They are a least-squares fit of the
# piecewise-linear curve through them to the published 256-entry table, so interpolating them
# back to 256 entries stays within 5/255 of Turbo in every channel. Turbo's published polynomial
# approximation is not used: it is too loose at the ends (at 0 its red exceeds its blue), which
# would turn the far end of a depth map from dark blue into dark brown.
_TURBO_KEYS = (
    (49, 19, 62), (65, 64, 164), (71, 107, 230), (68, 147, 255), (40, 188, 238), (20, 221, 195),
    (46, 242, 154), (108, 254, 98), (164, 254, 57), (204, 238, 51), (239, 209, 59), (255, 175, 54),
    (252, 128, 34), (237, 81, 14), (211, 48, 4), (173, 22, 1), (123, 3, 2),
)

# Viridis (matplotlib's default map) at the 10 evenly spaced positions 0, 1/9, ..., 1. Viridis is
# smooth enough that linear interpolation between them is visually indistinguishable from it.
_VIRIDIS_KEYS = (
    (0x44, 0x01, 0x54), (0x48, 0x28, 0x78), (0x3E, 0x49, 0x89), (0x31, 0x68, 0x8E), (0x26, 0x82, 0x8E),
    (0x1F, 0x9E, 0x89), (0x35, 0xB7, 0x79), (0x6E, 0xCE, 0x58), (0xB5, 0xDE, 0x2B), (0xFD, 0xE7, 0x25),
)

_COLORMAP_KEYS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "turbo": _TURBO_KEYS,
    "viridis": _VIRIDIS_KEYS,
    "gray": ((0, 0, 0), (255, 255, 255)),
}
SUPPORTED_COLORMAPS = tuple(sorted(_COLORMAP_KEYS))


def _interpolate_keys(keys: Sequence[Sequence[int]]) -> np.ndarray:
    """Linearly interpolate evenly spaced key colours (N, 3) to a (256, 3) uint8 table."""
    key_array = np.asarray(keys, dtype=np.float64)
    key_positions = np.linspace(0.0, 1.0, len(key_array))
    samples = np.arange(256, dtype=np.float64) / 255.0
    table = np.stack([np.interp(samples, key_positions, key_array[:, c]) for c in range(3)], axis=-1)
    return np.clip(np.rint(table), 0, 255).astype(np.uint8)


@lru_cache(maxsize=None)
def _lookup_table(name: str) -> np.ndarray:
    """The cached, read-only (256, 3) uint8 table of a colour map (see :func:`colormap`)."""
    if not isinstance(name, str):
        raise TypeError(f"colour map name must be a str; got {type(name).__name__}")
    if name not in _COLORMAP_KEYS:
        raise ValueError(f"unknown colour map {name!r}; supported: {', '.join(map(repr, SUPPORTED_COLORMAPS))}")
    table = _interpolate_keys(_COLORMAP_KEYS[name])
    # Read-only because the same array is shared by every later call.
    table.flags.writeable = False
    return table


def colormap(name: str = "turbo") -> np.ndarray:
    """A colour map as a lookup table.

    Index ``0`` is the low end of the map and ``255`` the high end: for ``"turbo"`` dark blue to
    dark red, for ``"viridis"`` dark purple to yellow, for ``"gray"`` black to white.

    Args:
        name: ``"turbo"``, ``"viridis"`` or ``"gray"``.

    Returns:
        (256, 3) uint8 RGB table (a fresh copy, safe to modify).

    Raises:
        ValueError: unknown name (the message lists the supported ones).
        TypeError: ``name`` is not a str.
    """
    return _lookup_table(name).copy()


# ---------------------------------------------------------------------------------- validation


def _check_int(value: Any, name: str, minimum: int | None = None) -> int:
    # bool is an int subclass, but True as a frame index or width is always a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return value


def _check_real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    return value


def _check_real_array(array: Any, name: str) -> np.ndarray:
    """A numpy array of a real (integer or floating, not bool) dtype."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy array; got {type(array).__name__} (use .cpu().numpy() for tensors)")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name} must have a real (floating or integer) dtype; got {array.dtype}")
    return array


def _check_frame(frame: Any, name: str) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"{name} must be a numpy array; got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise TypeError(f"{name} must be uint8 RGB; got dtype {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"{name} must have shape (H, W, 3) with H, W > 0; got {frame.shape}")
    return frame


def _check_color(color: Any, name: str) -> tuple[int, int, int]:
    values = np.asarray(color)
    if values.shape != (3,) or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{name} must be three integers (R, G, B); got {color!r}")
    if values.min() < 0 or values.max() > 255:
        raise ValueError(f"{name} must be in [0, 255]; got {color!r}")
    return (int(values[0]), int(values[1]), int(values[2]))


def _check_colors(colors: Any, count: int) -> np.ndarray:
    """(count, 3) uint8 colours; ``None`` -> :func:`track_colors`."""
    if colors is None:
        return track_colors(count)
    values = np.asarray(colors)
    if not np.issubdtype(values.dtype, np.integer):
        # Float colours are ambiguous ([0, 1] or [0, 255]?), so they are refused instead of guessed.
        raise TypeError(f"colors must be integer RGB in [0, 255] (e.g. uint8); got dtype {values.dtype}")
    if values.shape != (count, 3):
        raise ValueError(f"colors must have shape ({count}, 3), one per track; got {values.shape}")
    if values.size and (values.min() < 0 or values.max() > 255):
        raise ValueError("colors must be in [0, 255]")
    return values.astype(np.uint8)


def _check_query_frames(query_frames: Any, count: int) -> np.ndarray:
    """(count,) int64 query frame of each track; ``None`` -> -1 (no track has a query frame to mark)."""
    if query_frames is None:
        return np.full(count, -1, dtype=np.int64)
    values = np.asarray(query_frames)
    if not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f"query_frames must be integer frame indices; got dtype {values.dtype}")
    if values.shape != (count,):
        raise ValueError(f"query_frames must have shape ({count},), one per track; got {values.shape}")
    if values.size and values.min() < 0:
        raise ValueError(f"query_frames must be >= 0; got {int(values.min())}")
    return values.astype(np.int64)


def _iterate(items: Any, name: str) -> Iterator[Any]:
    try:
        return iter(items)
    except TypeError:
        raise TypeError(f"{name} must be an iterable; got {type(items).__name__}") from None


def _paired(
    first: Iterator[Any], second: Iterator[Any], first_name: str, second_name: str
) -> Iterator[tuple[int, Any, Any]]:
    """``enumerate(zip(first, second))`` that reads one item of each per step and raises on unequal lengths."""
    count = 0
    for item in first:
        try:
            other = next(second)
        except StopIteration:
            raise ValueError(
                f"{second_name} has {count} items but {first_name} has more; they must have the same length"
            ) from None
        yield count, item, other
        count += 1
    if next(second, _EXHAUSTED) is not _EXHAUSTED:
        raise ValueError(f"{second_name} has more items than {first_name} ({count}); they must have the same length")


_EXHAUSTED = object()


# ---------------------------------------------------------------------------------------- text

# Text (tick labels, box labels, scale bars) follows the frame size so that it stays readable on
# large videos, but never goes below 10 px, the size of PIL's default font.
_MIN_FONT_SIZE = 10
_TEXT_COLOR = (225, 225, 225)
# Background of the panels drawn here (colour bar strip, trajectory plot): dark, not black,
# so that they read as panels next to a video frame.
_PLOT_BACKGROUND = (24, 24, 28)


def _font_size(side: int) -> int:
    """Font size in pixels for a frame or panel whose shorter side is ``side`` pixels."""
    return max(_MIN_FONT_SIZE, round(side / 40))


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """PIL's default font at ``size`` pixels, built once per size (decoding it is not free)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        # Pillow < 10.1 has only the fixed-size bitmap font.
        return ImageFont.load_default()


def _text_extent(font: Any, text: str) -> tuple[int, int, int, int]:
    """Ink box (left, top, right, bottom) of ``text`` drawn at (0, 0), right/bottom exclusive."""
    return tuple(int(v) for v in font.getbbox(text))  # type: ignore[return-value]


def _text_height(font: Any) -> int:
    """Ink height of the digits in ``font``: the height that tick and scale labels take."""
    _, top, _, bottom = _text_extent(font, "0123456789")
    return bottom - top


def _draw_text(draw: ImageDraw.ImageDraw, left: int, top: int, text: str, font: Any, fill: tuple[int, ...]) -> None:
    """Draw ``text`` so that its ink box starts exactly at pixel (left, top)."""
    ink_left, ink_top, _, _ = _text_extent(font, text)
    draw.text((left - ink_left, top - ink_top), text, fill=fill, font=font)


def _format_number(value: float) -> str:
    """``value`` to three significant digits (all of its integer digits), no trailing zeros: 0.5, 2, 19.7, 1234."""
    if value == 0:
        return "0"
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _nice_steps(largest: float, smallest: float) -> Iterator[float]:
    """Steps 10^e, 5 * 10^(e-1), 2 * 10^(e-1), 10^(e-1), ... from about ``largest`` down to ``smallest``."""
    exponent = math.floor(math.log10(largest)) + 1
    while True:
        for mantissa in (10.0, 5.0, 2.0):
            step = mantissa * 10.0 ** (exponent - 1)
            if step < smallest:
                return
            if step <= largest:
                yield step
        exponent -= 1


def _nice_step(raw: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is >= ``raw`` (> 0)."""
    base = 10.0 ** math.floor(math.log10(raw))
    return next(m * base for m in (1.0, 2.0, 5.0, 10.0) if m * base >= raw * (1 - 1e-9))


# --------------------------------------------------------------------------------------- depth

# depth_range keeps at most this many values (a systematic sample beyond it), so the memory it
# needs is bounded however long the video is; below it the percentiles are exact.
_RANGE_SAMPLE_CAP = 1 << 22
# A (near, far) range narrower than this fraction of far is widened to +-_RANGE_WIDENING around
# its centre: a constant depth map would otherwise divide by zero when normalised.
_MIN_RELATIVE_SPAN = 1e-6
_RANGE_WIDENING = 0.05


class _SystematicSample:
    """Every ``stride``-th value of a stream, with ``stride`` doubled whenever more than ``cap`` are kept.

    Halving the kept values (every other one) keeps exactly the stream positions that are multiples
    of the doubled stride, so the result is always an evenly spaced sample of the whole stream.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.stride = 1
        self.seen = 0
        self.chunks: list[np.ndarray] = []
        self.kept = 0

    def add(self, values: np.ndarray) -> None:
        # First position in this chunk whose stream index is a multiple of the stride.
        start = (-self.seen) % self.stride
        chunk = values[start :: self.stride].astype(np.float64)
        self.seen += values.size
        self.chunks.append(chunk)
        self.kept += chunk.size
        while self.kept > self.cap:
            pooled = np.concatenate(self.chunks)[::2]
            self.chunks = [pooled]
            self.kept = pooled.size
            self.stride *= 2

    def values(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0)


def _check_depth(depth: Any, name: str, ndims: tuple[int, ...]) -> np.ndarray:
    depth = _check_real_array(depth, name)
    if depth.ndim not in ndims:
        expected = " or ".join({2: "(H, W)", 3: "(T, H, W)"}[n] for n in ndims)
        raise ValueError(f"{name} must have shape {expected}; got {depth.shape}")
    return depth


def _valid_depth(depth: np.ndarray) -> np.ndarray:
    """Mask of usable depth values: finite and positive (0 is the usual 'no measurement' marker)."""
    return np.isfinite(depth) & (depth > 0)


def depth_range(
    depth_frames: Iterable[np.ndarray] | np.ndarray, percentiles: tuple[float, float] = (2.0, 98.0)
) -> tuple[float, float]:
    """Robust (near, far) depth range of a whole video, for colours that are consistent across frames.

    Percentiles instead of min/max keep a few outliers (sky, sensor noise) from squashing the
    colour range. Only finite, positive values count: NaN, +-inf and ``<= 0`` are the invalid pixels
    that :func:`colorize_depth` paints with ``invalid_color``. An iterable is consumed once, one map at
    a time; beyond ``2**22`` valid values an evenly spaced sample of them is used, so memory stays
    bounded (the percentiles are then approximate, to well within a colour step).

    Args:
        depth_frames: (T, H, W) or (H, W) real array, or an iterable of (H, W) real arrays.
        percentiles: (low, high) with ``0 <= low < high <= 100``.

    Returns:
        (near, far) as Python floats, ``0 < near < far``. When every valid value is (nearly) the
        same ``d``, the range is widened to ``(0.95 * d, 1.05 * d)``.

    Raises:
        ValueError: no finite positive value; bad shape; bad percentiles.
        TypeError: not an array / iterable of arrays, or a non-real dtype.
    """
    if not isinstance(percentiles, (tuple, list)) or len(percentiles) != 2:
        raise ValueError(f"percentiles must be a pair (low, high); got {percentiles!r}")
    low, high = (_check_real(p, "percentiles") for p in percentiles)
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100; got {percentiles!r}")

    if isinstance(depth_frames, np.ndarray):
        _check_depth(depth_frames, "depth_frames", ndims=(2, 3))
        maps: Iterable[Any] = depth_frames[None] if depth_frames.ndim == 2 else depth_frames
    else:
        maps = _iterate(depth_frames, "depth_frames")

    sample = _SystematicSample(_RANGE_SAMPLE_CAP)
    for index, depth in enumerate(maps):
        depth = _check_depth(depth, f"depth_frames[{index}]", ndims=(2,))
        sample.add(depth[_valid_depth(depth)])
    values = sample.values()
    if values.size == 0:
        raise ValueError("depth_frames has no finite positive depth value (all NaN, inf, <= 0 or empty)")

    near, far = (float(v) for v in np.percentile(values, [low, high]))
    if far - near <= _MIN_RELATIVE_SPAN * far:
        centre = 0.5 * (near + far)
        near, far = centre * (1.0 - _RANGE_WIDENING), centre * (1.0 + _RANGE_WIDENING)
    return near, far


def _check_near_far(near: Any, far: Any, inverse: bool) -> tuple[float, float]:
    near = _check_real(near, "near")
    far = _check_real(far, "far")
    # Inverse depth needs 1 / near; linear depth can start at the camera.
    if (near <= 0.0) if inverse else (near < 0.0):
        raise ValueError(f"near must be {'> 0 with inverse=True' if inverse else '>= 0'}; got {near}")
    if not far > near:
        raise ValueError(f"far must be greater than near; got near={near}, far={far}")
    return near, far


def colorize_depth(
    depth: np.ndarray,
    near: float | None = None,
    far: float | None = None,
    cmap: str = "turbo",
    invalid_color: tuple[int, int, int] = (0, 0, 0),
    inverse: bool = True,
) -> np.ndarray:
    """Colour a depth map (or a depth video) with a colour map.

    ``near`` maps to the high end of the colour map (warm dark red for turbo) and ``far`` to the
    low end (cold dark blue), values outside ``[near, far]`` are clipped. With ``inverse=True`` the
    position in the map is linear in inverse depth ``1 / d``, which spends most colours on nearby
    structure, where depth maps have their detail (the usual depth-video look); with
    ``inverse=False`` it is linear in ``d``.

    For consistent colours across the frames of a video, pass one (near, far) for all of them, e.g.
    from :func:`depth_range` over the video (that is what happens when a whole (T, H, W) array is
    given without near/far).

    Args:
        depth: (H, W) or (T, H, W) real depth (metres). NaN, +-inf and ``<= 0`` are invalid.
        near: nearest depth of the colour range; default from :func:`depth_range` of ``depth``.
        far: farthest depth of the colour range; default from :func:`depth_range` of ``depth``.
        cmap: colour map name (see :func:`colormap`).
        invalid_color: RGB painted on invalid pixels.
        inverse: map inverse depth (True) or depth (False) linearly.

    Returns:
        (H, W, 3) or (T, H, W, 3) uint8 RGB.

    Raises:
        TypeError: ``depth`` is not a numpy array of a real dtype; non-numeric near/far.
        ValueError: wrong shape; ``near >= far``, ``near <= 0`` with inverse (``< 0`` without),
            non-finite near/far; unknown cmap; bad invalid_color; near/far left to default but no
            valid depth.
    """
    depth = _check_depth(depth, "depth", ndims=(2, 3))
    table = _lookup_table(cmap)
    fill = _check_color(invalid_color, "invalid_color")
    if near is None or far is None:
        auto_near, auto_far = depth_range(depth)
        near = auto_near if near is None else near
        far = auto_far if far is None else far
    near, far = _check_near_far(near, far, bool(inverse))

    valid = _valid_depth(depth)
    # float32 is plenty for 256 colours; float64 input (and int64) keeps float64.
    dtype = np.result_type(depth.dtype, np.float32)
    # Invalid pixels get `far` so the arithmetic below never sees NaN, inf or 0 (no warnings).
    d = np.clip(np.where(valid, depth, far).astype(dtype, copy=False), dtype.type(near), dtype.type(far))
    if inverse:
        position = (1.0 / d - dtype.type(1.0 / far)) / dtype.type(1.0 / near - 1.0 / far)
    else:
        position = (dtype.type(far) - d) / dtype.type(far - near)
    index = np.rint(position * 255).astype(np.intp)
    # Rounding of 1 / d can overshoot [0, 1] by an ulp.
    np.clip(index, 0, 255, out=index)
    rgb = table[index]
    rgb[~valid] = fill
    return rgb


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 0) -> np.ndarray:
    """Concatenate two frames horizontally.

    Args:
        left: (H, W1, 3) uint8.
        right: (H, W2, 3) uint8, same height.
        gap: width of a black column between them.

    Returns:
        (H, W1 + gap + W2, 3) uint8 (a new array).

    Raises:
        TypeError / ValueError: not uint8 (H, W, 3) frames, different heights, negative gap.
    """
    left = _check_frame(left, "left")
    right = _check_frame(right, "right")
    gap = _check_int(gap, "gap", minimum=0)
    if left.shape[0] != right.shape[0]:
        raise ValueError(f"left and right must have the same height; got {left.shape[0]} and {right.shape[0]}")
    height, left_width = left.shape[:2]
    out = np.zeros((height, left_width + gap + right.shape[1], 3), dtype=np.uint8)
    out[:, :left_width] = left
    out[:, left_width + gap :] = right
    return out


# ---------------------------------------------------------------------------- reconstructions

#: Where a masked frame hides a pixel from the model: mid grey.
MASK_FILL = (128, 128, 128)


def render_reconstruction(
    frames: Iterable[np.ndarray],
    reconstructions: Iterable[np.ndarray],
    visibility: Iterable[np.ndarray] | None = None,
    *,
    paste_visible: bool = True,
    fill: Sequence[int] = MASK_FILL,
) -> Iterator[np.ndarray]:
    """Each input frame beside what a model reconstructed of it, one output frame per input frame (lazily).

    Without ``visibility`` (a model that saw every pixel, such as MooG's next-frame prediction):
    input | reconstruction. With it (a masking model, such as RVM): input | masked input (the
    input where the model saw it, ``fill`` where it was hidden) | reconstruction, the panels of the
    original RVM demo; with ``paste_visible`` the reconstruction panel shows the input where the
    model saw it and the reconstruction elsewhere (the demo's ``target * (1 - mask) +
    reconstructed * mask``).

    Args:
        frames: iterable of (H, W, 3) uint8 input frames.
        reconstructions: iterable of (H, W, 3) uint8 reconstructions, one per frame, at its size.
        visibility: ``None``, or an iterable of (H, W) maps, one per frame: float in [0, 1] (1 =
            seen by the model; fractions blend, e.g. at patch edges resampled to the frame) or bool.
        paste_visible: see above (with ``visibility`` only).
        fill: RGB colour of the hidden pixels in the masked-input panel.

    Returns:
        Iterator of (H, 2 * W, 3) uint8 frames, or (H, 3 * W, 3) with ``visibility``.

    Raises:
        TypeError: non-iterable inputs, a non-bool ``paste_visible`` (at call); bad dtypes (at iteration).
        ValueError: a bad ``fill`` (at call); at iteration: a reconstruction or visibility map not
            of its frame's size, visibility outside [0, 1], or inputs of different lengths.
    """
    if not isinstance(paste_visible, bool):
        raise TypeError(f"paste_visible must be a bool; got {type(paste_visible).__name__}")
    fill = _check_color(fill, "fill")
    frames, reconstructions = _iterate(frames, "frames"), _iterate(reconstructions, "reconstructions")
    if visibility is None:
        return (side_by_side(_check_frame(frame, f"frames[{index}]"), _check_reconstruction(other, frame, index))
                for index, frame, other in _paired(frames, reconstructions, "frames", "reconstructions"))
    return _render_masked_reconstruction(frames, reconstructions, _iterate(visibility, "visibility"), paste_visible, fill)


def _check_reconstruction(reconstruction: Any, frame: np.ndarray, index: int) -> np.ndarray:
    reconstruction = _check_frame(reconstruction, f"reconstructions[{index}]")
    if reconstruction.shape != frame.shape:
        raise ValueError(
            f"reconstructions[{index}] has shape {reconstruction.shape} but frames[{index}] is {frame.shape}; resize one first"
        )
    return reconstruction


def _check_visibility(visibility: Any, frame: np.ndarray, index: int) -> np.ndarray:
    """(H, W, 1) float32 in [0, 1]."""
    if not isinstance(visibility, np.ndarray):
        raise TypeError(f"visibility[{index}] must be a numpy array; got {type(visibility).__name__}")
    if visibility.dtype != np.bool_ and not np.issubdtype(visibility.dtype, np.floating):
        raise TypeError(f"visibility[{index}] must be bool or float in [0, 1]; got dtype {visibility.dtype}")
    if visibility.shape != frame.shape[:2]:
        raise ValueError(f"visibility[{index}] has shape {visibility.shape} but frames[{index}] is {frame.shape[:2]}; resize one first")
    values = visibility.astype(np.float32)
    if not (np.isfinite(values).all() and values.min(initial=0.0) >= 0.0 and values.max(initial=0.0) <= 1.0):
        raise ValueError(f"visibility[{index}] must be in [0, 1] (1 = seen by the model)")
    return values[..., None]


def _blend(seen: np.ndarray, hidden: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """``seen`` where visibility is 1, ``hidden`` where it is 0, linear in between; uint8."""
    return np.round(seen.astype(np.float32) * visibility + hidden.astype(np.float32) * (1.0 - visibility)).astype(np.uint8)


def _render_masked_reconstruction(
    frames: Iterator[Any], reconstructions: Iterator[Any], visibility: Iterator[Any], paste_visible: bool, fill: tuple[int, int, int]
) -> Iterator[np.ndarray]:
    for index, frame, (reconstruction, seen) in _paired(frames, _zip_checked(reconstructions, visibility), "frames", "reconstructions"):
        frame = _check_frame(frame, f"frames[{index}]")
        reconstruction = _check_reconstruction(reconstruction, frame, index)
        seen = _check_visibility(seen, frame, index)
        masked = _blend(frame, np.broadcast_to(np.array(fill, dtype=np.uint8), frame.shape), seen)
        shown = _blend(frame, reconstruction, seen) if paste_visible else reconstruction
        yield side_by_side(side_by_side(frame, masked), shown)


def _zip_checked(reconstructions: Iterator[Any], visibility: Iterator[Any]) -> Iterator[tuple[Any, Any]]:
    for _, reconstruction, seen in _paired(reconstructions, visibility, "reconstructions", "visibility"):
        yield reconstruction, seen


_COLORIZE_OPTIONS = frozenset({"cmap", "invalid_color", "inverse"})


def render_depth_video(
    frames: Iterable[np.ndarray],
    depth: Iterable[np.ndarray],
    near: float,
    far: float,
    *,
    colorbar: bool = False,
    **colorize_kwargs: Any,
) -> Iterator[np.ndarray]:
    """Each input frame beside its coloured depth map, one output frame per input frame (lazily).

    ``near`` and ``far`` are required (not estimated per frame) so every frame uses the same colours;
    :func:`depth_range` computes them from a whole video.

    With ``colorbar=True`` a strip of width B is appended on the right: a vertical bar of the colour
    map, ``far`` at the top and ``near`` at the bottom (depth grows upwards, as in most scenes, whose
    top is far away), with tick labels in metres (PIL's default font) at the depth each colour
    stands for. The ends are always labelled; nice values (1, 2, 5 times a power of ten) fill the
    space between them. With ``inverse=True`` the bar's colours are evenly spaced in inverse depth,
    so its metre ticks crowd towards the far end, exactly as the colours do in the depth map.

    Args:
        frames: iterable of (H, W, 3) uint8 frames.
        depth: iterable (or (T, H, W) array) of (H, W) depth maps, one per frame, at the frame's size.
        near: nearest depth of the colour range.
        far: farthest depth of the colour range.
        colorbar: append the colour bar strip.
        **colorize_kwargs: ``cmap``, ``invalid_color``, ``inverse`` of :func:`colorize_depth`.

    Returns:
        Iterator of (H, 2 * W, 3) uint8 frames, or (H, 2 * W + B, 3) with ``colorbar=True``. B is even
        (video encoders want even widths), depends only on H and the labels, so it is the same for
        every frame of a video, and is about ``H / 5`` plus the widest label. Reads one frame and
        one depth map per output frame.

    Raises:
        TypeError: unknown keyword, non-iterable inputs, bad dtypes (at iteration for frame data).
        ValueError: bad near/far/options (at call); at iteration: a depth map not (H, W) of its
            frame, or frames and depth of different lengths.
    """
    unknown = set(colorize_kwargs) - _COLORIZE_OPTIONS
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {sorted(unknown)}; accepted: {sorted(_COLORIZE_OPTIONS | {'colorbar'})}"
        )
    if not isinstance(colorbar, bool):
        raise TypeError(f"colorbar must be a bool; got {type(colorbar).__name__}")
    _lookup_table(colorize_kwargs.get("cmap", "turbo"))
    _check_color(colorize_kwargs.get("invalid_color", (0, 0, 0)), "invalid_color")
    near, far = _check_near_far(near, far, bool(colorize_kwargs.get("inverse", True)))
    return _render_depth_video(
        _iterate(frames, "frames"), _iterate(depth, "depth"), near, far, colorbar, colorize_kwargs
    )


def _render_depth_video(
    frames: Iterator[Any], depth: Iterator[Any], near: float, far: float, colorbar: bool, options: dict[str, Any]
) -> Iterator[np.ndarray]:
    strips: dict[int, np.ndarray] = {}  # colour bar per frame height: drawn once per video
    for index, frame, depth_map in _paired(frames, depth, "frames", "depth"):
        frame = _check_frame(frame, f"frames[{index}]")
        depth_map = _check_depth(depth_map, f"depth[{index}]", ndims=(2,))
        if depth_map.shape != frame.shape[:2]:
            raise ValueError(
                f"depth[{index}] has shape {depth_map.shape} but frames[{index}] is {frame.shape[:2]}; resize one first"
            )
        out = side_by_side(frame, colorize_depth(depth_map, near, far, **options))
        if colorbar:
            height = frame.shape[0]
            if height not in strips:
                strips[height] = _colorbar_strip(
                    height, near, far, options.get("cmap", "turbo"), bool(options.get("inverse", True))
                )
            out = side_by_side(out, strips[height])
        yield out


def _colormap_position(depth: float, near: float, far: float, inverse: bool) -> float:
    """Position in [0, 1] of ``depth`` in the colour map (0 = far, 1 = near), as in :func:`colorize_depth`."""
    if inverse:
        return (1.0 / depth - 1.0 / far) / (1.0 / near - 1.0 / far)
    return (far - depth) / (far - near)


def _depth_ticks(near: float, far: float, inverse: bool, length: int, min_gap: float) -> list[tuple[float, float]]:
    """(depth, position along the bar in pixels from its top) of the labelled depths, top first.

    The ends are always labelled. Between them, linear depth gets the multiples of one nice step
    (1, 2 or 5 times a power of ten) aiming at a label every ``2 * min_gap`` pixels; inverse depth,
    whose scale stretches near the camera and crowds far away, gets the values 1, 2 and 5 times a
    power of ten (then 3, 4, 6, 7, 8, 9 times, then the linear ticks, while fewer than four labels
    fit), each kept only when it is at least ``min_gap`` pixels from every label already kept.
    """
    def position(value: float) -> float:
        return _colormap_position(value, near, far, inverse) * length

    step = _nice_step((far - near) / max(1.0, length / (2 * min_gap)))
    levels = [[k * step for k in range(math.floor(near / step) + 1, math.ceil(far / step))]]
    if inverse:
        exponents = range(math.floor(math.log10(near)), math.floor(math.log10(far)) + 1)
        round_values = [
            [m * 10.0**e for e in exponents for m in mantissas] for mantissas in ((1, 2, 5), (3, 4, 6, 7, 8, 9))
        ]
        # The even steps last: only ranges too narrow for the round values need them.
        levels = round_values + levels
    chosen = [(far, 0.0), (near, float(length))]
    for level, values in enumerate(levels):
        if level > 0 and len(chosen) >= 4:
            break
        for value in sorted(values):
            where = position(value)
            if near < value < far and all(abs(where - other) >= min_gap for _, other in chosen):
                chosen.append((value, where))
    return sorted(chosen, key=lambda item: item[1])


def _colorbar_strip(height: int, near: float, far: float, cmap: str, inverse: bool) -> np.ndarray:
    """The (height, B, 3) colour bar of :func:`render_depth_video`: gradient, ticks, metre labels."""
    font = _font(_font_size(height))
    text_height = _text_height(font)
    pad = max(2, round(height / 100))
    bar_width = max(6, round(height / 25))
    tick_length = max(2, round(bar_width / 3))
    # Half a label above the top end and below the bottom end, so the end labels fit.
    top = pad + math.ceil(text_height / 2)
    length = height - 1 - 2 * top  # rows top .. top + length, inclusive
    labelled = length >= 2 * text_height
    if not labelled:
        # Too short for text: the bar alone, over the whole height.
        top, length = 0, height - 1
    ticks = _depth_ticks(near, far, inverse, length, 2.0 * text_height) if labelled else []
    labels = [f"{_format_number(value)} m" for value, _ in ticks]
    label_left = 2 * pad + bar_width + tick_length + pad
    label_width = max((_text_extent(font, text)[2] - _text_extent(font, text)[0] for text in labels), default=0)
    width = label_left + label_width + 2 * pad if labels else 2 * pad + bar_width
    width += width % 2

    image = Image.new("RGB", (width, height), _PLOT_BACKGROUND)
    # Row top + i * length / 255 shows colour index i: index 0 (far) at the top, 255 (near) at the bottom.
    rows = np.arange(top, top + length + 1)
    indices = np.rint((rows - top) / max(length, 1) * 255).astype(np.intp)
    pixels = np.array(image)
    pixels[top : top + length + 1, 2 * pad : 2 * pad + bar_width] = _lookup_table(cmap)[indices][:, None]
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for (_, position), text in zip(ticks, labels):
        row = top + round(position)
        draw.line([(2 * pad + bar_width, row), (2 * pad + bar_width + tick_length - 1, row)], fill=_TEXT_COLOR)
        ink = _text_extent(font, text)
        _draw_text(draw, label_left, row - (ink[3] - ink[1]) // 2, text, font, _TEXT_COLOR)
    return np.array(image)


# -------------------------------------------------------------------------------------- tracks


def track_colors(num_tracks: int, seed: int = 0) -> np.ndarray:
    """Distinct, fully saturated colours, one per track.

    Hues are evenly spaced around the colour wheel (so any two differ by at least ``1 / Q`` of it)
    and then shuffled with a seeded generator: trackers often number neighbouring query points
    consecutively, and consecutive hues would make neighbours look alike.

    Args:
        num_tracks: Q >= 0.
        seed: seed of the shuffle; the same (Q, seed) always gives the same colours.

    Returns:
        (Q, 3) uint8 RGB with saturation and value 1 (max channel 255, min channel 0).
    """
    num_tracks = _check_int(num_tracks, "num_tracks", minimum=0)
    seed = _check_int(seed, "seed", minimum=0)
    hues = np.arange(num_tracks, dtype=np.float64) / max(num_tracks, 1)
    hues = hues[np.random.default_rng(seed).permutation(num_tracks)]
    # HSV -> RGB with S = V = 1: channel n is 1 - clip(min(k, 4 - k), 0, 1), k = (n + 6 h) mod 6.
    k = (np.array([5.0, 3.0, 1.0]) + 6.0 * hues[:, None]) % 6.0
    rgb = 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return np.rint(rgb * 255).astype(np.uint8)


def _check_track_array(array: Any, name: str, last: int) -> np.ndarray:
    array = _check_real_array(array, name)
    if array.ndim != 3 or array.shape[2] != last:
        raise ValueError(f"{name} must have shape (T, Q, {last}); got {array.shape}")
    return array.astype(np.float64)


def _default_radius(height: int, width: int) -> float:
    return float(max(2, round(min(height, width) / 100)))


def _pil_coordinate(value: float) -> int:
    """PIL's integer coordinate (pixel index) of the pixel containing continuous coordinate ``value``.

    PIL puts pixel ``j`` at integer coordinate ``j`` where we put its centre at ``j + 0.5``, so the
    PIL coordinate is ``value - 0.5``, rounded half up here rather than truncated by PIL:
    ``floor(value - 0.5 + 0.5) = floor(value)``.
    """
    return math.floor(value)


def _clip_segments(
    start: np.ndarray, end: np.ndarray, lower: tuple[float, float], upper: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clip segments (N, 2) -> (N, 2) to a rectangle (Liang-Barsky), vectorised.

    Needed because PIL rasterises a line over its whole length: a tracker's wild coordinate (1e9)
    would take seconds or overflow its integer coordinates.

    Returns:
        (clipped start, clipped end, keep mask) where ``keep`` is False for segments entirely outside.
    """
    delta = end - start
    enter = np.zeros(len(start))
    leave = np.ones(len(start))
    keep = np.ones(len(start), dtype=bool)
    for axis in (0, 1):
        for p, q in ((-delta[:, axis], start[:, axis] - lower[axis]), (delta[:, axis], upper[axis] - start[:, axis])):
            keep &= ~((p == 0) & (q < 0))  # parallel to this edge and outside it
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = q / p
            enter = np.where(p < 0, np.maximum(enter, ratio), enter)
            leave = np.where(p > 0, np.minimum(leave, ratio), leave)
    keep &= enter <= leave
    return start + enter[:, None] * delta, start + leave[:, None] * delta, keep


def _circle_box(x: float, y: float, radius: float) -> tuple[int, int, int, int]:
    """Inclusive PIL pixel box of the pixels whose centres lie within ``radius`` of (x, y) on each axis."""
    column = math.floor(x)
    row = math.floor(y)
    # Pixel j is inside when j + 0.5 is in [x - r, x + r]; the pixel holding the point always is.
    x0 = min(math.ceil(x - radius - 0.5), column)
    x1 = max(math.floor(x + radius - 0.5), column)
    y0 = min(math.ceil(y - radius - 0.5), row)
    y1 = max(math.floor(y + radius - 0.5), row)
    return x0, y0, x1, y1


def _draw_circle(
    draw: ImageDraw.ImageDraw, x: float, y: float, radius: float, color: tuple[int, ...], filled: bool
) -> None:
    box = _circle_box(x, y, radius)
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:
        # PIL draws nothing for an ellipse box narrower than 2 pixels: a tiny radius becomes a square.
        draw.rectangle(box, fill=color)
    elif filled:
        draw.ellipse(box, fill=color)
    else:
        draw.ellipse(box, outline=color, width=max(1, round(radius / 3)))


def render_tracks(
    frames: Iterable[np.ndarray],
    tracks: np.ndarray,
    visible: np.ndarray,
    *,
    trail_length: int = 12,
    radius: float | None = None,
    colors: np.ndarray | None = None,
    first_frame: int = 0,
    query_frames: np.ndarray | None = None,
    show_occluded: bool = True,
) -> Iterator[np.ndarray]:
    """Draw point tracks on frames, lazily.

    Each track is a filled circle where visible and a hollow circle where occluded (or nothing,
    with ``show_occluded=False``), with a trail through its visible positions over the last
    ``trail_length`` frames: segments fade (thinner and more transparent, alpha-blended through an
    RGBA overlay) with age, the newest one opaque. Every frame is drawn, before a track's query
    frame as well as after it, as CoTracker's visualiser does: a tracker run backwards from the
    query frame fills the frames before it, and one that was not leaves them NaN (not drawn). On
    its query frame a track gets a white ring around its point. Points whose centre is outside the
    frame or not finite are skipped; trails are clipped.

    Args:
        frames: iterable of (H, W, 3) uint8 frames; frame ``i`` shows track frame ``first_frame + i``.
            It may stop before the tracks do (chunked rendering) but not run past them.
        tracks: (T, Q, 2) pixel (x, y), (0, 0) the top-left corner of the top-left pixel (pixel
            centres at +0.5). Must be finite where visible; NaN elsewhere is skipped.
        visible: (T, Q) bool.
        trail_length: frames of trail behind each point (0: no trail).
        radius: point radius in pixels; default ``max(2, round(min(H, W) / 100))``.
        colors: (Q, 3) integer RGB in [0, 255]; default :func:`track_colors`.
        first_frame: track frame shown by the first input frame.
        query_frames: (Q,) int >= 0, the track frame each track was queried on, marked with a ring;
            default None (no ring).
        show_occluded: draw occluded points as hollow circles (True) or not at all (False).

    Returns:
        Iterator of (H, W, 3) uint8 frames (new arrays; the inputs are not modified).

    Raises:
        TypeError: non-array inputs, ``visible`` not bool, non-integer colors/query_frames/options.
        ValueError: (at call) shapes of tracks, visible, colors, query_frames that do not match,
            non-finite visible coordinates, negative trail_length/first_frame/query_frames,
            radius <= 0;
            (at iteration) more frames than tracks, a frame not (H, W, 3).
    """
    tracks = _check_track_array(tracks, "tracks", last=2)
    num_frames, num_tracks = tracks.shape[:2]
    if not isinstance(visible, np.ndarray):
        raise TypeError(f"visible must be a numpy array; got {type(visible).__name__}")
    if visible.dtype != np.bool_:
        raise TypeError(
            f"visible must be a bool array; got dtype {visible.dtype} (threshold it first, e.g. probs > 0.5)"
        )
    if visible.shape != (num_frames, num_tracks):
        raise ValueError(
            f"visible must have shape (T, Q) = {(num_frames, num_tracks)} to match tracks {tracks.shape}; "
            f"got {visible.shape}"
        )
    bad = visible & ~np.isfinite(tracks).all(axis=-1)
    if bad.any():
        t, q = np.argwhere(bad)[0]
        raise ValueError(f"tracks must be finite where visible; track {q} at frame {t} is {tracks[t, q].tolist()}")
    trail_length = _check_int(trail_length, "trail_length", minimum=0)
    if radius is not None:
        radius = _check_real(radius, "radius")
        if radius <= 0:
            raise ValueError(f"radius must be > 0; got {radius}")
    colors = _check_colors(colors, num_tracks)
    first_frame = _check_int(first_frame, "first_frame", minimum=0)
    marked = _check_query_frames(query_frames, num_tracks)
    if not isinstance(show_occluded, bool):
        raise TypeError(f"show_occluded must be a bool; got {type(show_occluded).__name__}")
    style = _TrackStyle(trail_length, radius, [tuple(int(c) for c in color) for color in colors], marked, show_occluded)
    return _render_tracks(_iterate(frames, "frames"), tracks, visible.copy(), first_frame, style)


def _numbered_frames(
    frames: Iterable[Any], first_frame: int, num_frames: int, what: str
) -> Iterator[tuple[int, np.ndarray]]:
    """(t, checked frame) with t = first_frame + i: frame i of a chunk is frame t of the annotations."""
    for index, frame in enumerate(frames):
        t = first_frame + index
        if t >= num_frames:
            raise ValueError(
                f"frames has more frames than {what}: frame {index} is frame {t} of {what} with T={num_frames}"
            )
        yield t, _check_frame(frame, f"frames[{index}]")


@dataclass(frozen=True)
class _TrackStyle:
    """The validated drawing options of :func:`render_tracks`."""

    trail_length: int
    radius: float | None  # None: from the frame size
    colors: list[tuple[int, ...]]
    query_frames: np.ndarray  # (Q,) int64; -1: no ring
    show_occluded: bool


_QUERY_RING_COLOR = (255, 255, 255)


def _render_tracks(
    frames: Iterator[Any], tracks: np.ndarray, visible: np.ndarray, first_frame: int, style: _TrackStyle
) -> Iterator[np.ndarray]:
    for t, frame in _numbered_frames(frames, first_frame, tracks.shape[0], "tracks"):
        height, width = frame.shape[:2]
        point_radius = style.radius if style.radius is not None else _default_radius(height, width)
        # fromarray copies an RGB array (PIL stores RGB pixels in 4 bytes), so the input is untouched.
        image = Image.fromarray(frame)
        if style.trail_length > 0:
            image = _draw_trails(image, tracks, visible, t, style.trail_length, point_radius, style.colors)
        draw = ImageDraw.Draw(image)
        points = tracks[t]
        xs, ys = points[:, 0], points[:, 1]
        # NaN (occluded, untracked) compares False, so it is skipped here too.
        inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
        for q in np.flatnonzero(inside & (style.query_frames == t)):
            # Under the point, so the point's own colour stays on top.
            _draw_ring(draw, float(xs[q]), float(ys[q]), point_radius)
        # Occluded (hollow) first so visible points, the reliable ones, are drawn on top.
        for filled in (False, True) if style.show_occluded else (True,):
            for q in np.flatnonzero(inside & (visible[t] == filled)):
                _draw_circle(draw, float(xs[q]), float(ys[q]), point_radius, style.colors[q], filled)
        yield np.array(image)


def _draw_ring(draw: ImageDraw.ImageDraw, x: float, y: float, radius: float) -> None:
    """The query-frame mark: a white ring a gap outside a point of ``radius`` at (x, y)."""
    ring = radius + max(2.0, radius / 2)
    draw.ellipse(_circle_box(x, y, ring), outline=_QUERY_RING_COLOR, width=max(1, round(radius / 2)))


def _draw_trails(
    image: Image.Image,
    tracks: np.ndarray,
    visible: np.ndarray,
    t: int,
    trail_length: int,
    radius: float,
    colors: list[tuple[int, ...]],
) -> Image.Image:
    """Alpha-blend the trails ending at track frame ``t`` onto ``image`` (RGB); returns a new image."""
    first = max(0, t - trail_length)
    frame_ids = np.arange(first, t + 1)
    # (L, Q): the visible positions take part in the trail (the query frame does not cut it).
    usable = visible[first : t + 1]
    if not usable.any():
        return image
    # Each usable position is joined to the previous usable one of the same track (skipping occlusions).
    rows = np.where(usable, np.arange(len(frame_ids))[:, None], -1)
    last_usable = np.maximum.accumulate(rows, axis=0)
    previous = np.vstack([np.full((1, usable.shape[1]), -1), last_usable[:-1]])
    end_rows, track_ids = np.nonzero(usable & (previous >= 0))
    if end_rows.size == 0:
        return image
    start_points = tracks[first + previous[end_rows, track_ids], track_ids]
    end_points = tracks[first + end_rows, track_ids]

    width, height = image.size
    max_width = max(1, round(radius / 2))
    margin = float(max_width + 2)
    start_points, end_points, keep = _clip_segments(
        start_points, end_points, (-margin, -margin), (width + margin, height + margin)
    )
    # Age 0 is the segment ending at frame t; the oldest has age trail_length - 1.
    ages = t - (first + end_rows)
    strengths = 1.0 - ages / trail_length
    order = [i for i in np.argsort(-ages, kind="stable") if keep[i]]  # oldest first: newer on top
    if not order:
        return image

    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for i in order:
        strength = float(strengths[i])
        line = [
            (_pil_coordinate(start_points[i, 0]), _pil_coordinate(start_points[i, 1])),
            (_pil_coordinate(end_points[i, 0]), _pil_coordinate(end_points[i, 1])),
        ]
        draw.line(line, fill=(*colors[track_ids[i]], round(255 * strength)), width=max(1, round(max_width * strength)))
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")


# --------------------------------------------------------------------------------------- boxes


def render_boxes(
    frames: Iterable[np.ndarray],
    boxes: np.ndarray,
    *,
    colors: np.ndarray | None = None,
    labels: Sequence[str] | str | None = "index",
    first_frame: int = 0,
    line_width: int | None = None,
    query_frames: np.ndarray | None = None,
) -> Iterator[np.ndarray]:
    """Draw box tracks on frames, lazily: one rectangle outline per box, one colour per track.

    A box (x1, y1, x2, y2) covers the pixels whose centres lie in [x1, x2] x [y1, y2]; its outline
    is drawn inside that area (``line_width`` pixels thick), so the interior is left untouched.
    Boxes partly outside the frame are clipped to it (the outline then runs along the frame edge),
    boxes entirely outside, with a non-finite coordinate or with ``x2 <= x1`` or ``y2 <= y1`` are
    skipped. Every frame is drawn, before a box's query frame as well as after it (tracked
    backwards); on its query frame a box gets a white frame just outside its outline. Labels (PIL's
    default font, sized to the frame, on a patch of the box colour) sit above the box's top-left
    corner, or just inside it at the top of the frame; by default they are the query index.

    Args:
        frames: iterable of (H, W, 3) uint8 frames; frame ``i`` shows box frame ``first_frame + i``.
            It may stop before the boxes do (chunked rendering) but not run past them.
        boxes: (T, Q, 4) pixel (x1, y1, x2, y2), (0, 0) the top-left corner of the top-left pixel.
        colors: (Q, 3) integer RGB in [0, 255]; default :func:`track_colors`.
        labels: ``"index"`` (default): each box's query index ``"0"``, ``"1"``, ...; or Q strings
            (empty string: no label); or None: no labels.
        first_frame: box frame shown by the first input frame.
        line_width: outline width in pixels; default ``max(2, round(min(H, W) / 200))``.
        query_frames: (Q,) int >= 0, the box frame each box was queried on, marked with a white
            frame; default None (no mark).

    Returns:
        Iterator of (H, W, 3) uint8 frames (new arrays; the inputs are not modified).

    Raises:
        TypeError: non-array boxes, non-str labels, non-integer colors/query_frames/options.
        ValueError: (at call) shapes of boxes, colors, labels, query_frames that do not match,
            line_width < 1, negative query_frames; (at iteration) more frames than boxes, a frame
            not (H, W, 3).
    """
    boxes = _check_track_array(boxes, "boxes", last=4)
    num_tracks = boxes.shape[1]
    colors = _check_colors(colors, num_tracks)
    labels = _check_labels(labels, num_tracks)
    first_frame = _check_int(first_frame, "first_frame", minimum=0)
    if line_width is not None:
        line_width = _check_int(line_width, "line_width", minimum=1)
    marked = _check_query_frames(query_frames, num_tracks)
    return _render_boxes(_iterate(frames, "frames"), boxes, colors, labels, first_frame, line_width, marked)


def _check_labels(labels: Any, count: int) -> list[str] | None:
    """``count`` label strings, or None for no labels; ``"index"`` -> "0", "1", ..."""
    if labels is None:
        return None
    if isinstance(labels, str):
        if labels != "index":
            raise TypeError(f"labels must be 'index', None or a sequence of str, one per box; got the str {labels!r}")
        return [str(q) for q in range(count)]
    if not isinstance(labels, Sequence):
        raise TypeError(f"labels must be 'index', None or a sequence of str, one per box; got {type(labels).__name__}")
    if len(labels) != count:
        raise ValueError(f"labels must have one entry per box ({count}); got {len(labels)}")
    for label in labels:
        if not isinstance(label, str):
            raise TypeError(f"labels must be str; got {type(label).__name__}")
    return list(labels)


def _box_pixels(current: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(Q, 4) inclusive PIL pixel boxes of (Q, 4) boxes clipped to the frame, and the (Q,) drawable mask."""
    x1, y1, x2, y2 = current.T
    drawn = np.isfinite(current).all(axis=1) & (x2 > x1) & (y2 > y1)
    # Entirely outside: clipping would collapse it onto an edge, past the last pixel or before the first.
    drawn &= (x2 > 0) & (x1 < width) & (y2 > 0) & (y1 < height)
    with np.errstate(invalid="ignore"):  # NaN boxes are computed, then never drawn
        # Clip to the frame, then to the pixels whose centres are inside (inclusive PIL indices).
        columns0 = np.minimum(np.ceil(np.clip(x1, 0, width) - 0.5), width - 1)
        columns1 = np.floor(np.clip(x2, 0, width) - 0.5)
        rows0 = np.minimum(np.ceil(np.clip(y1, 0, height) - 0.5), height - 1)
        rows1 = np.floor(np.clip(y2, 0, height) - 0.5)
        # A box that contains no pixel centre still gets the pixel(s) it touches.
        pixels = np.stack([columns0, rows0, np.maximum(columns1, columns0), np.maximum(rows1, rows0)], axis=1)
    return np.where(drawn[:, None], pixels, 0).astype(np.int64), drawn


def _render_boxes(
    frames: Iterator[Any],
    boxes: np.ndarray,
    colors: np.ndarray,
    labels: list[str] | None,
    first_frame: int,
    line_width: int | None,
    marked: np.ndarray,
) -> Iterator[np.ndarray]:
    color_tuples = [tuple(int(c) for c in color) for color in colors]
    for t, frame in _numbered_frames(frames, first_frame, boxes.shape[0], "boxes"):
        height, width = frame.shape[:2]
        thickness = line_width if line_width is not None else max(2, round(min(height, width) / 200))
        image = Image.fromarray(frame)  # a copy: the input frame is not modified
        draw = ImageDraw.Draw(image)
        pixels, drawn = _box_pixels(boxes[t], height, width)
        for q in np.flatnonzero(drawn & (marked == t)):
            left, top, right, bottom = (int(v) for v in pixels[q])
            draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), outline=_QUERY_RING_COLOR, width=1)
        for q in np.flatnonzero(drawn):
            draw.rectangle(tuple(int(v) for v in pixels[q]), outline=color_tuples[q], width=thickness)
        if labels is not None:
            font = _font(_font_size(min(height, width)))
            # Labels after all outlines so no outline crosses a label.
            for q in np.flatnonzero(drawn):
                if labels[q]:
                    _draw_label(draw, labels[q], int(pixels[q, 0]), int(pixels[q, 1]), color_tuples[q], font)
        yield np.array(image)


def _draw_label(
    draw: ImageDraw.ImageDraw, text: str, left: int, top: int, color: tuple[int, ...], font: Any
) -> None:
    text_left, text_top, text_right, text_bottom = _text_extent(font, text)
    pad = max(1, round((text_bottom - text_top) / 6))
    patch_width = text_right - text_left + 2 * pad
    patch_height = text_bottom - text_top + 2 * pad
    # Above the box when it fits in the frame, else just inside its top edge.
    patch_top = top - patch_height if top - patch_height >= 0 else top
    draw.rectangle((left, patch_top, left + patch_width - 1, patch_top + patch_height - 1), fill=color)
    # Black on light colours, white on dark ones (Rec. 601 luma).
    luma = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    text_color = (0, 0, 0) if luma > 140 else (255, 255, 255)
    _draw_text(draw, left + pad, patch_top + pad, text, font, text_color)


# -------------------------------------------------------------------------------- camera poses

_PATH_COLOR = (150, 150, 150)
_CURRENT_COLOR = (255, 60, 60)
_GRID_COLOR = (48, 48, 56)
_AXIS_COLOR = (110, 110, 125)
_FRAME_COLOR = (90, 90, 100)
# Below this plot side (pixels) text would not fit: the plot is drawn bare, without axes or scale.
_MIN_AXES_SIDE = 64


def _check_poses(poses: Any) -> np.ndarray:
    poses = _check_real_array(poses, "poses")
    if poses.ndim != 3 or poses.shape[1:] not in ((4, 4), (3, 4)):
        raise ValueError(f"poses must have shape (K, 4, 4) (or (K, 3, 4)); got {poses.shape}")
    finite = np.isfinite(poses).all(axis=(1, 2))
    if not finite.all():
        raise ValueError(f"poses must be finite; pose {int(np.flatnonzero(~finite)[0])} is not")
    return poses.astype(np.float64)


def _check_size(size: Any) -> tuple[int, int]:
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"size must be a pair (height, width); got {size!r}")
    return _check_int(size[0], "size[0] (height)", minimum=1), _check_int(size[1], "size[1] (width)", minimum=1)


def _check_extent(extent: Any) -> tuple[float, float, float, float]:
    if not isinstance(extent, (tuple, list)) or len(extent) != 4:
        raise ValueError(f"extent must be (x_min, x_max, z_min, z_max); got {extent!r}")
    x_min, x_max, z_min, z_max = (_check_real(v, "extent") for v in extent)
    if x_max < x_min or z_max < z_min:
        raise ValueError(f"extent must have x_min <= x_max and z_min <= z_max; got {tuple(extent)!r}")
    return x_min, x_max, z_min, z_max


def _check_unit(unit: Any) -> str:
    if not isinstance(unit, str) or not unit.strip():
        raise ValueError(f"unit must be a non-empty str such as 'm' or 'units'; got {unit!r}")
    return unit


def _plot_bounds(positions: np.ndarray) -> tuple[float, float, float, float] | None:
    """(x_min, x_max, z_min, z_max) of (K, 2) top-down positions, None when K == 0."""
    if len(positions) == 0:
        return None
    low = positions.min(axis=0)
    high = positions.max(axis=0)
    return float(low[0]), float(high[0]), float(low[1]), float(high[1])


@dataclass(frozen=True)
class _TrajectoryView:
    """A fixed top-down view: where x-z positions land in a plot image, and its static background.

    The background (grid, axes through the origin, frame, scale bar) depends only on the plot size,
    the extent and the unit, so a video draws it once and every frame shows the same axes.
    """

    background: np.ndarray  # (H, W, 3) uint8, read-only
    centre: tuple[float, float]  # data (x, z) at the plot area's centre
    pixel_centre: tuple[float, float]  # (u, v) of that centre, continuous pixel coordinates
    scale: float  # pixels per unit
    marker: float  # camera marker size in pixels

    def to_pixels(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(K,) u and (K,) v of (K, 2) x-z positions; +z is up in the image."""
        u = self.pixel_centre[0] + (positions[:, 0] - self.centre[0]) * self.scale
        v = self.pixel_centre[1] - (positions[:, 1] - self.centre[1]) * self.scale
        return u, v


# A few views: a video needs one; each holds an H x W background (3 MB at 1080p).
@lru_cache(maxsize=4)
def _trajectory_view(
    size: tuple[int, int], extent: tuple[float, float, float, float], unit: str, axes: bool
) -> _TrajectoryView:
    """The view that fits ``extent`` (x_min, x_max, z_min, z_max) into a plot of ``size`` (H, W)."""
    height, width = size
    side = min(height, width)
    marker = max(3.0, 0.035 * side)
    with_axes = axes and side >= _MIN_AXES_SIDE
    font = _font(_font_size(side))
    text_height = _text_height(font)
    pad = max(2, round(side / 64))
    if with_axes:
        # Plot area (inclusive PIL box) inside a frame, with a row below it for the scale bar.
        box = (pad, pad, width - 1 - pad, height - 1 - 2 * pad - text_height - pad)
        # Room for the highlighted camera's tip (1.4 times its 1.6-times-larger marker) inside the frame.
        margin = 2.3 * marker + 2.0
    else:
        box = (0, 0, width - 1, height - 1)
        margin = 0.06 * side + 1.5 * marker
    area_width, area_height = box[2] - box[0] + 1, box[3] - box[1] + 1
    x_min, x_max, z_min, z_max = extent
    span = max(x_max - x_min, z_max - z_min)
    # A single position (or a camera that never moved) gets a view one unit either side.
    span = span if span > 0 else 2.0
    scale = max(min(area_width, area_height) - 2.0 * margin, 1.0) / span
    centre = ((x_min + x_max) / 2, (z_min + z_max) / 2)
    pixel_centre = (box[0] + area_width / 2, box[1] + area_height / 2)

    image = Image.new("RGB", (width, height), _PLOT_BACKGROUND)
    view = _TrajectoryView(np.zeros(0, np.uint8), centre, pixel_centre, scale, marker)
    if with_axes:
        draw = ImageDraw.Draw(image)
        # One grid cell is about a quarter of the view: the scale bar's length.
        step = _nice_step(min(area_width, area_height) / scale / 4)
        _draw_grid_and_axes(draw, view, box, step, font)
        draw.rectangle(box, outline=_FRAME_COLOR, width=1)
        _draw_scale_bar(draw, step * scale, _length_label(step, unit), box, pad, font)
    background = np.array(image)
    background.flags.writeable = False
    return _TrajectoryView(background, centre, pixel_centre, scale, marker)


def _draw_grid_and_axes(
    draw: ImageDraw.ImageDraw, view: _TrajectoryView, box: tuple[int, int, int, int], step: float, font: Any
) -> None:
    """Grid lines every ``step`` units, the x and z axes through the origin (brighter), their names."""
    left, top, right, bottom = box
    # Data range covered by the plot area, from its pixel edges.
    x_low = view.centre[0] + (left - view.pixel_centre[0]) / view.scale
    x_high = view.centre[0] + (right + 1 - view.pixel_centre[0]) / view.scale
    z_low = view.centre[1] - (bottom + 1 - view.pixel_centre[1]) / view.scale
    z_high = view.centre[1] - (top - view.pixel_centre[1]) / view.scale
    for k in range(math.ceil(x_low / step), math.floor(x_high / step) + 1):
        column = _pil_coordinate(view.pixel_centre[0] + (k * step - view.centre[0]) * view.scale)
        draw.line([(column, top), (column, bottom)], fill=_AXIS_COLOR if k == 0 else _GRID_COLOR)
        if k == 0:
            _draw_text(draw, column + 3, top + 3, "z", font, _TEXT_COLOR)
    for k in range(math.ceil(z_low / step), math.floor(z_high / step) + 1):
        row = _pil_coordinate(view.pixel_centre[1] - (k * step - view.centre[1]) * view.scale)
        draw.line([(left, row), (right, row)], fill=_AXIS_COLOR if k == 0 else _GRID_COLOR)
        if k == 0:
            ink = _text_extent(font, "x")
            _draw_text(draw, right - 3 - (ink[2] - ink[0]), row - 3 - (ink[3] - ink[1]), "x", font, _TEXT_COLOR)


def _length_label(length: float, unit: str) -> str:
    """``"0.5 m"``, ``"2 units"``, ``"1 unit"``."""
    number = _format_number(length)
    return f"{number} {'unit' if unit == 'units' and number == '1' else unit}"


def _draw_scale_bar(
    draw: ImageDraw.ImageDraw, length: float, label: str, box: tuple[int, int, int, int], pad: int, font: Any
) -> None:
    """A bar of ``length`` pixels with end ticks and ``label`` to its left, below the plot area's right end."""
    ink = _text_extent(font, label)
    text_height = _text_height(font)
    row = box[3] + 2 * pad + text_height // 2
    right = box[2]
    left = right - max(1, round(length)) + 1
    draw.line([(left, row), (right, row)], fill=_TEXT_COLOR, width=max(1, round(text_height / 6)))
    for column in (left, right):
        draw.line([(column, row - text_height // 3), (column, row + text_height // 3)], fill=_TEXT_COLOR)
    _draw_text(draw, left - pad - (ink[2] - ink[0]), row - (ink[3] - ink[1]) // 2, label, font, _TEXT_COLOR)


def render_camera_trajectory(
    poses: np.ndarray,
    size: tuple[int, int] = (256, 256),
    current: int | None = None,
    *,
    extent: tuple[float, float, float, float] | None = None,
    unit: str = "units",
    axes: bool = True,
) -> np.ndarray:
    """A top-down plot of a camera trajectory.

    Looks down the reference frame's y axis: image right is +x and image up is +z (forward, for an
    OpenCV-style camera-to-reference pose), both with one isotropic scale that fits ``extent``
    (default: the positions) with a margin. The path is a grey polyline through the positions; each
    camera is a small triangle pointing along its viewing direction (the rotation's third column
    projected on x-z; a dot when it points straight up or down), coloured from dark to light along
    time (viridis), and the ``current`` camera is larger and red.

    With ``axes`` (and a plot side of at least 64 pixels) the plot area is framed, with faint grid
    lines every grid step, the x and z axes through the reference camera's position (the origin)
    brighter and named at their positive ends, and below the frame a scale bar one grid step long
    labelled with its length and ``unit``.

    Args:
        poses: (K, 4, 4) camera-to-reference matrices (only rows 0-2 are read, so (K, 3, 4) works
            too); translation ``poses[:, :3, 3]``. K may be 0 (empty plot).
        size: (height, width) of the plot in pixels.
        current: index of the camera to highlight, ``0 <= current < K``; None highlights none.
        extent: (x_min, x_max, z_min, z_max) that the view must show, for a view that stays fixed
            over a video (see :func:`render_pose_video`); default the positions' bounds.
        unit: the translations' unit for the scale bar: ``"m"`` when they are metric, ``"units"``
            (default) when their scale is unknown.
        axes: draw the frame, grid, axes and scale bar.

    Returns:
        (height, width, 3) uint8 RGB. With K == 0 and no extent: the background colour only.

    Raises:
        ValueError: non-finite poses, wrong shapes, bad size, current, extent or unit.
        TypeError: non-array poses or non-real dtype.
    """
    poses = _check_poses(poses)
    height, width = _check_size(size)
    if current is not None:
        current = _check_int(current, "current", minimum=0)
        if current >= len(poses):
            raise ValueError(f"current must be < K = {len(poses)}; got {current}")
    unit = _check_unit(unit)
    positions = poses[:, [0, 2], 3]
    bounds = _check_extent(extent) if extent is not None else _plot_bounds(positions)
    if bounds is None:
        return np.full((height, width, 3), _PLOT_BACKGROUND, dtype=np.uint8)
    view = _trajectory_view((height, width), bounds, unit, bool(axes))
    return _draw_trajectory(view, positions, poses[:, [0, 2], 2], current)


def _draw_trajectory(
    view: _TrajectoryView, positions: np.ndarray, directions: np.ndarray, current: int | None
) -> np.ndarray:
    """Cameras at (K, 2) x-z positions with (K, 2) viewing directions, on the view's background."""
    image = Image.fromarray(view.background)  # a copy: the cached background stays as it is
    if len(positions) == 0:
        return np.array(image)
    draw = ImageDraw.Draw(image)
    height, width = view.background.shape[:2]
    u, v = view.to_pixels(positions)
    if len(positions) > 1:
        path = [(_pil_coordinate(a), _pil_coordinate(b)) for a, b in zip(u, v)]
        draw.line(path, fill=_PATH_COLOR, width=max(1, round(min(height, width) / 200)), joint="curve")

    palette = _lookup_table("viridis")
    count = len(positions)
    for k in range(count):
        if k == current:
            continue
        # Old cameras dark, recent ones light (skipping viridis' darkest, invisible on the background).
        shade = palette[64 + round(191 * k / max(count - 1, 1))]
        _draw_camera(draw, u[k], v[k], directions[k], view.marker, tuple(int(c) for c in shade), None)
    if current is not None:
        _draw_camera(
            draw, u[current], v[current], directions[current], 1.6 * view.marker, _CURRENT_COLOR, (255, 255, 255)
        )
    return np.array(image)


def _draw_camera(
    draw: ImageDraw.ImageDraw,
    u: float,
    v: float,
    direction: np.ndarray,
    size: float,
    color: tuple[int, ...],
    outline: tuple[int, ...] | None,
) -> None:
    # Image axes: right = +x, up = +z, so a world direction (dx, dz) is (dx, -dz) in the image.
    forward = np.array([direction[0], -direction[1]])
    norm = float(np.hypot(*forward))
    if norm < 1e-6:
        # Looking straight along y: no direction to show on the x-z plane.
        _draw_circle(draw, u, v, 0.6 * size, color, filled=True)
        return
    forward /= norm
    normal = np.array([-forward[1], forward[0]])
    centre = np.array([u, v])
    tip = centre + 1.4 * size * forward
    back = centre - 0.6 * size * forward
    # Twice as long as wide, so that the tip (the viewing direction) is unmistakable.
    corners = [tip, back + 0.5 * size * normal, back - 0.5 * size * normal]
    draw.polygon([(_pil_coordinate(x), _pil_coordinate(y)) for x, y in corners], fill=color, outline=outline)


def render_pose_video(
    frames: Iterable[np.ndarray],
    poses: np.ndarray,
    pose_frames: np.ndarray,
    *,
    unit: str = "units",
    axes: bool = True,
) -> Iterator[np.ndarray]:
    """Each input frame beside a square top-down plot of the camera trajectory known up to it, lazily.

    The plot (see :func:`render_camera_trajectory`) shows the poses whose frame index is ``<=`` the
    frame's, the latest highlighted. Its extent is fitted to the whole trajectory once, so the view,
    its axes, grid and scale bar stay fixed while the path grows. Frames before the first pose get
    the axes without cameras.

    Args:
        frames: iterable of (H, W, 3) uint8 frames; frame ``i`` is frame index ``i``.
        poses: (K, 4, 4) camera-to-reference matrices (or (K, 3, 4)).
        pose_frames: (K,) int, strictly increasing frame index of each pose.
        unit: the translations' unit for the scale bar (``"m"``, or ``"units"`` when unknown).
        axes: draw the frame, grid, axes and scale bar.

    Returns:
        Iterator of (H, W + H, 3) uint8 frames.

    Raises:
        TypeError / ValueError: (at call) bad poses, pose_frames of the wrong dtype, shape or order,
            bad unit; (at iteration) a frame not (H, W, 3) uint8.
    """
    poses = _check_poses(poses)
    if not isinstance(pose_frames, np.ndarray):
        raise TypeError(f"pose_frames must be a numpy array; got {type(pose_frames).__name__}")
    if not np.issubdtype(pose_frames.dtype, np.integer):
        raise TypeError(f"pose_frames must be integer frame indices; got dtype {pose_frames.dtype}")
    if pose_frames.shape != (len(poses),):
        raise ValueError(f"pose_frames must have shape (K,) = ({len(poses)},), one per pose; got {pose_frames.shape}")
    if np.any(np.diff(pose_frames) <= 0):
        raise ValueError("pose_frames must be strictly increasing")
    unit = _check_unit(unit)
    return _render_pose_video(_iterate(frames, "frames"), poses, pose_frames.astype(np.int64), unit, bool(axes))


def _render_pose_video(
    frames: Iterator[Any], poses: np.ndarray, pose_frames: np.ndarray, unit: str, axes: bool
) -> Iterator[np.ndarray]:
    positions = poses[:, [0, 2], 3]
    directions = poses[:, [0, 2], 2]
    # The whole trajectory's bounds, once: a per-frame fit would make the view jump.
    bounds = _plot_bounds(positions)
    cached_key: tuple[int, int] | None = None
    plot = np.zeros((0, 0, 3), dtype=np.uint8)
    for index, frame in enumerate(frames):
        frame = _check_frame(frame, f"frames[{index}]")
        height = frame.shape[0]
        known = int(np.searchsorted(pose_frames, index, side="right"))
        # The plot only changes when a pose arrives (or the frame height changes).
        if (known, height) != cached_key:
            if bounds is None:
                plot = np.full((height, height, 3), _PLOT_BACKGROUND, dtype=np.uint8)
            else:
                view = _trajectory_view((height, height), bounds, unit, axes)
                current = known - 1 if known > 0 else None
                plot = _draw_trajectory(view, positions[:known], directions[:known], current)
            cached_key = (known, height)
        yield side_by_side(frame, plot)


# ----------------------------------------------------------------- label propagation (VOS, keypoints)


def davis_palette() -> np.ndarray:
    """The DAVIS (PASCAL VOC) palette: (256, 3) uint8, label 0 black, 1 (128, 0, 0), 2 (0, 128, 0), ...

    The bits of the label are spread over the channels from the most significant bit down
    (bit 0 -> red 128, bit 1 -> green 128, bit 2 -> blue 128, bit 3 -> red 64, ...), as the
    palette PNGs of DAVIS and PASCAL VOC store it.
    """
    palette = np.zeros((256, 3), dtype=np.uint8)
    for label in range(256):
        value, colour = label, [0, 0, 0]
        for bit in range(8):
            for channel in range(3):
                colour[channel] |= ((value >> channel) & 1) << (7 - bit)
            value >>= 3
        palette[label] = colour
    return palette


def _check_palette(palette: Any) -> np.ndarray:
    values = np.asarray(palette)
    if not np.issubdtype(values.dtype, np.integer) or values.ndim != 2 or values.shape[1] != 3 or not 1 <= len(values) <= 256:
        raise ValueError(f"palette must be an integer (N <= 256, 3) RGB table; got {values.dtype} {values.shape}")
    if values.min() < 0 or values.max() > 255:
        raise ValueError("palette colours must be in [0, 255]")
    full = np.zeros((256, 3), dtype=np.uint8)
    full[: len(values)] = values
    return full


def render_segmentation(
    frames: Iterable[np.ndarray], masks: Iterable[np.ndarray], palette: Any = None, *, alpha: float = 0.5
) -> Iterator[np.ndarray]:
    """Each frame with its label map blended in: ``(1 - alpha) * frame + alpha * palette[label]`` where
    the label is not 0 (the background stays as it is), lazily.

    Args:
        frames: iterable of (H, W, 3) uint8 frames.
        masks: iterable of (H, W) integer label maps in [0, 255], one per frame, at its size.
        palette: (N <= 256, 3) integer RGB colour per label (default :func:`davis_palette`).
        alpha: opacity of the colours, in [0, 1].

    Returns:
        Iterator of (H, W, 3) uint8 frames.

    Raises:
        TypeError / ValueError: a bad palette or alpha (at call); a mask not of its frame's size,
            not integer or outside [0, 255], or inputs of different lengths (at iteration).
    """
    palette = davis_palette() if palette is None else _check_palette(palette)
    alpha = _check_real(alpha, "alpha")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    frames, masks = _iterate(frames, "frames"), _iterate(masks, "masks")

    def draw() -> Iterator[np.ndarray]:
        for index, frame, mask in _paired(frames, masks, "frames", "masks"):
            frame = _check_frame(frame, f"frames[{index}]")
            mask = np.asarray(mask)
            if mask.shape != frame.shape[:2] or not np.issubdtype(mask.dtype, np.integer):
                raise ValueError(f"masks[{index}] must be an integer (H, W) = {frame.shape[:2]} label map; got {mask.dtype} {mask.shape}")
            if mask.size and (mask.min() < 0 or mask.max() > 255):
                raise ValueError(f"masks[{index}] has labels outside [0, 255]")
            colours = palette[mask.astype(np.intp)].astype(np.float32)
            blended = (1.0 - alpha) * frame.astype(np.float32) + alpha * colours
            out = frame.copy()
            objects = mask != 0
            out[objects] = np.clip(np.round(blended[objects]), 0, 255).astype(np.uint8)
            yield out

    return draw()


def render_keypoints(
    frames: Iterable[np.ndarray],
    keypoints: np.ndarray,
    visible: np.ndarray,
    *,
    trail_length: int = 4,
    radius: float | None = None,
    colors: np.ndarray | None = None,
) -> Iterator[np.ndarray]:
    """Propagated keypoints drawn on the frames, lazily: a filled dot per visible keypoint (one colour
    per keypoint), a short trail, a ring on the first frame (where they were given); invisible
    keypoints are not drawn (their coordinates, -1 in the pipeline's results, are ignored).

    Args:
        frames: iterable of (H, W, 3) uint8 frames, one per keypoint frame.
        keypoints: (T, K, 2) pixel (x, y).
        visible: (T, K) bool.
        trail_length, radius, colors: as :func:`render_tracks`.

    Returns:
        Iterator of (H, W, 3) uint8 frames.
    """
    keypoints = _check_track_array(keypoints, "keypoints", last=2).astype(np.float64)
    if not isinstance(visible, np.ndarray) or visible.dtype != np.bool_ or visible.shape != keypoints.shape[:2]:
        raise ValueError(
            f"visible must be a bool array of shape (T, K) = {keypoints.shape[:2]}; got "
            f"{getattr(visible, 'dtype', type(visible).__name__)} {getattr(visible, 'shape', '')}"
        )
    shown = np.where(visible[..., None], keypoints, np.nan)
    return render_tracks(
        frames, shown, visible, trail_length=trail_length, radius=radius, colors=colors,
        query_frames=np.zeros(keypoints.shape[1], dtype=np.int64), show_occluded=False,
    )
