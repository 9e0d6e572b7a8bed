"""Tests of fourd_hub.visualization: colour maps, depth colouring and streamed track/box/pose renderers.

Expected pixels are derived by hand from the documented conventions: (x, y) pixel coordinates
with (0, 0) the top-left corner of the top-left pixel, so a point at (x, y) lies in the pixel at
row floor(y), column floor(x), and a box (x1, y1, x2, y2) covers the pixels whose centres
(j + 0.5, i + 0.5) lie inside it.
"""

from __future__ import annotations

import numpy as np
import pytest

from fourd_hub import visualization as vis
from fourd_hub.visualization import (
    colorize_depth,
    colormap,
    depth_range,
    render_boxes,
    render_camera_trajectory,
    render_depth_video,
    render_pose_video,
    render_tracks,
    side_by_side,
    track_colors,
)

RED = (255, 0, 0)
GREEN = (0, 255, 0)


def black(height: int = 32, width: int = 32) -> np.ndarray:
    return np.zeros((height, width, 3), dtype=np.uint8)


def counting(frames: list[np.ndarray], log: list[int]):
    """A generator over frames that records how many it has handed out."""
    for index, frame in enumerate(frames):
        log.append(index)
        yield frame


def camera_circle(count: int, radius: float = 3.0) -> np.ndarray:
    """(count, 4, 4) cameras on a circle in the x-z plane, each looking at the centre."""
    poses = np.tile(np.eye(4), (count, 1, 1))
    for k, angle in enumerate(np.linspace(0.0, 2.0 * np.pi, count, endpoint=False)):
        position = radius * np.array([np.cos(angle), 0.0, np.sin(angle)])
        forward = -position / radius
        up = np.array([0.0, 1.0, 0.0])
        poses[k, :3, :3] = np.stack([np.cross(up, forward), up, forward], axis=1)
        poses[k, :3, 3] = position
    return poses


# ------------------------------------------------------------------------------------ colormap


@pytest.mark.parametrize("name", ["turbo", "viridis", "gray"])
def test_colormap_shape_dtype(name):
    table = colormap(name)
    assert table.shape == (256, 3)
    assert table.dtype == np.uint8


def test_colormap_turbo_endpoints_in_rgb_order():
    table = colormap("turbo")
    low = table[0].astype(int)
    high = table[255].astype(int)
    # Turbo starts dark blue(-violet) (published first entry ~ (48, 18, 59)): blue dominates, dark.
    assert low[2] > low[0] > low[1]
    assert low.max() < 90
    # ... and ends dark red (~ (122, 4, 3)): red dominates by far.
    assert high[0] > 100 and high[1] < 20 and high[2] < 20
    # Its middle is the bright green-yellow part (~ (164, 252, 60)).
    assert table[128, 1] > 240 and table[128, 2] < 100


def test_colormap_gray_and_viridis_values():
    np.testing.assert_array_equal(colormap("gray"), np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1))
    viridis = colormap("viridis")
    np.testing.assert_array_equal(viridis[0], [0x44, 0x01, 0x54])
    np.testing.assert_array_equal(viridis[255], [0xFD, 0xE7, 0x25])


def test_colormap_returns_a_copy():
    table = colormap("turbo")
    table[:] = 0
    assert colormap("turbo").any()


def test_colormap_unknown_name_lists_supported():
    with pytest.raises(ValueError, match="'gray', 'turbo', 'viridis'"):
        colormap("jet")
    with pytest.raises(TypeError):
        colormap(3)


# --------------------------------------------------------------------------------- depth_range


def test_depth_range_percentiles_ignore_invalid_and_resist_outliers():
    # Valid values: 1e-3 (outlier), 2, 3, ..., 100, 1e6 (outlier): 101 values, so with numpy's
    # linear interpolation the p-th percentile is the value of rank p: rank 2 -> 3, rank 98 -> 99.
    values = np.arange(1, 102, dtype=np.float64)
    values[0], values[-1] = 1e-3, 1e6
    invalid = np.array([np.nan, np.inf, -np.inf, 0.0, -4.0])
    data = np.concatenate([values, invalid, np.full(4, np.nan)])  # 110 = 2 * 5 * 11
    np.random.default_rng(0).shuffle(data)
    video = data.reshape(2, 5, 11)
    near, far = depth_range(video)
    assert near == pytest.approx(3.0)
    assert far == pytest.approx(99.0)
    # The same from an iterable of (H, W) maps (a generator, consumed once), and other percentiles.
    assert depth_range(iter(list(video))) == pytest.approx((3.0, 99.0))
    assert depth_range(video, percentiles=(10.0, 50.0)) == pytest.approx((11.0, 51.0))


def test_depth_range_single_map_and_integer_dtype():
    assert depth_range(np.array([[1, 2], [3, 0]], dtype=np.uint16), percentiles=(0.0, 100.0)) == (1.0, 3.0)


def test_depth_range_no_valid_value_raises():
    with pytest.raises(ValueError, match="no finite positive"):
        depth_range(np.full((2, 3, 3), np.nan))
    with pytest.raises(ValueError, match="no finite positive"):
        depth_range(np.array([[0.0, -1.0], [np.inf, np.nan]]))
    with pytest.raises(ValueError, match="no finite positive"):
        depth_range(iter([]))


def test_depth_range_constant_depth_is_widened():
    near, far = depth_range(np.full((3, 4, 4), 2.0))
    assert (near, far) == pytest.approx((1.9, 2.1))


def test_depth_range_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        depth_range(np.ones((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="shape"):
        depth_range([np.ones((2, 3, 4))])
    with pytest.raises(TypeError, match="dtype"):
        depth_range(np.ones((3, 3), dtype=bool))
    with pytest.raises(ValueError, match="percentiles"):
        depth_range(np.ones((3, 3)), percentiles=(98.0, 2.0))
    with pytest.raises(TypeError):
        depth_range(5)


def test_depth_range_bounded_memory_sample(monkeypatch):
    # Past the cap only an evenly spaced sample is kept: with 1..100000 spread over 100 frames and
    # a cap of 1000, the percentiles must still be those of the uniform data (2000 and 98000) to 1%.
    monkeypatch.setattr(vis, "_RANGE_SAMPLE_CAP", 1000)
    frames = (np.arange(1, 1001, dtype=np.float64).reshape(25, 40) + 1000 * i for i in range(100))
    near, far = depth_range(frames)
    assert near == pytest.approx(2000.0, rel=0.01)
    assert far == pytest.approx(98000.0, rel=0.01)


# ------------------------------------------------------------------------------ colorize_depth


def test_colorize_depth_inverse_maps_near_warm_far_cold():
    turbo = colormap("turbo")
    depth = np.array([[1.0, 2.0], [4.0, 0.5], [10.0, 3.0]])
    rgb = colorize_depth(depth, near=1.0, far=4.0)
    assert rgb.shape == (3, 2, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], turbo[255])  # near -> warm (dark red) end
    np.testing.assert_array_equal(rgb[1, 0], turbo[0])  # far -> cold (dark blue) end
    # 1/d is linear: (1/2 - 1/4) / (1/1 - 1/4) = 1/3 -> index 85.
    np.testing.assert_array_equal(rgb[0, 1], turbo[85])
    # (1/3 - 1/4) / (3/4) = 1/9 -> 28.33 -> index 28.
    np.testing.assert_array_equal(rgb[2, 1], turbo[28])
    # Out of range values are clipped to the ends.
    np.testing.assert_array_equal(rgb[1, 1], turbo[255])
    np.testing.assert_array_equal(rgb[2, 0], turbo[0])


def test_colorize_depth_linear_maps_near_warm_far_cold():
    turbo = colormap("turbo")
    rgb = colorize_depth(np.array([[1.0, 2.0, 4.0]]), near=1.0, far=4.0, inverse=False)
    np.testing.assert_array_equal(rgb[0, 0], turbo[255])
    np.testing.assert_array_equal(rgb[0, 2], turbo[0])
    # (4 - 2) / (4 - 1) = 2/3 -> index 170.
    np.testing.assert_array_equal(rgb[0, 1], turbo[170])


def test_colorize_depth_invalid_pixels_get_invalid_color():
    depth = np.array([[np.nan, 0.0, -1.0], [np.inf, -np.inf, 2.0]])
    rgb = colorize_depth(depth, near=1.0, far=4.0, invalid_color=(1, 2, 3))
    for row, column in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]:
        np.testing.assert_array_equal(rgb[row, column], [1, 2, 3])
    np.testing.assert_array_equal(rgb[1, 2], colormap("turbo")[85])


def test_colorize_depth_video_shape_and_consistent_colours():
    # Frame 0 is mostly near, frame 1 mostly far: the shared 2.0 pixel must get one colour.
    video = np.stack([np.full((4, 5), 1.0), np.full((4, 5), 8.0)])
    video[:, 2, 3] = 2.0
    rgb = colorize_depth(video)
    assert rgb.shape == (2, 4, 5, 3)
    np.testing.assert_array_equal(rgb[0, 2, 3], rgb[1, 2, 3])
    # Default range over the whole video: 1 is the near end, 8 the far end.
    np.testing.assert_array_equal(rgb[0, 0, 0], colormap("turbo")[255])
    np.testing.assert_array_equal(rgb[1, 0, 0], colormap("turbo")[0])


def test_colorize_depth_other_maps_and_dtypes():
    gray = colorize_depth(np.array([[1.0, 4.0]], dtype=np.float32), near=1.0, far=4.0, cmap="gray")
    np.testing.assert_array_equal(gray, [[[255, 255, 255], [0, 0, 0]]])
    # Integer depth is accepted (same values as float).
    ints = colorize_depth(np.array([[1, 2, 4]], dtype=np.int32), near=1.0, far=4.0)
    np.testing.assert_array_equal(ints, colorize_depth(np.array([[1.0, 2.0, 4.0]]), near=1.0, far=4.0))


def test_colorize_depth_bad_inputs():
    with pytest.raises(TypeError, match="dtype"):
        colorize_depth(np.ones((3, 3), dtype=bool), 1.0, 2.0)
    with pytest.raises(TypeError, match="dtype"):
        colorize_depth(np.ones((3, 3), dtype=np.complex64), 1.0, 2.0)
    with pytest.raises(TypeError, match="numpy array"):
        colorize_depth([[1.0, 2.0]], 1.0, 2.0)
    with pytest.raises(ValueError, match="shape"):
        colorize_depth(np.ones((3,)), 1.0, 2.0)
    with pytest.raises(ValueError, match="shape"):
        colorize_depth(np.ones((2, 3, 3, 1)), 1.0, 2.0)
    with pytest.raises(ValueError, match="greater than near"):
        colorize_depth(np.ones((3, 3)), 2.0, 1.0)
    with pytest.raises(ValueError, match="near must be > 0"):
        colorize_depth(np.ones((3, 3)), 0.0, 1.0)
    with pytest.raises(ValueError, match="finite"):
        colorize_depth(np.ones((3, 3)), 1.0, float("nan"))
    with pytest.raises(ValueError, match="unknown colour map"):
        colorize_depth(np.ones((3, 3)), 1.0, 2.0, cmap="jet")
    with pytest.raises(ValueError, match="invalid_color"):
        colorize_depth(np.ones((3, 3)), 1.0, 2.0, invalid_color=(0, 0, 256))
    with pytest.raises(ValueError, match="no finite positive"):
        colorize_depth(np.zeros((3, 3)))
    # Linear depth may start at the camera.
    assert colorize_depth(np.ones((3, 3)), 0.0, 2.0, inverse=False).shape == (3, 3, 3)


# -------------------------------------------------------------------------------- side_by_side


def test_side_by_side_layout():
    left = np.full((4, 3, 3), 10, dtype=np.uint8)
    right = np.full((4, 5, 3), 20, dtype=np.uint8)
    out = side_by_side(left, right, gap=2)
    assert out.shape == (4, 10, 3) and out.dtype == np.uint8
    assert (out[:, :3] == 10).all() and (out[:, 3:5] == 0).all() and (out[:, 5:] == 20).all()
    with pytest.raises(ValueError, match="same height"):
        side_by_side(left, np.zeros((5, 5, 3), dtype=np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        side_by_side(left, right.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        side_by_side(left, np.zeros((4, 5), dtype=np.uint8))


# -------------------------------------------------------------------------- render_depth_video


def test_render_depth_video_is_lazy_and_side_by_side():
    frames = [np.full((6, 8, 3), 7 * i, dtype=np.uint8) for i in range(3)]
    depth = np.stack([np.full((6, 8), 1.0 + i) for i in range(3)])
    log: list[int] = []
    out = render_depth_video(counting(frames, log), iter(depth), near=1.0, far=3.0)
    assert log == []  # nothing read before the first frame is asked for
    first = next(out)
    assert log == [0]
    assert first.shape == (6, 16, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first[:, :8], frames[0])
    np.testing.assert_array_equal(first[0, 8], colormap("turbo")[255])
    rest = list(out)
    assert len(rest) == 2 and log == [0, 1, 2]
    np.testing.assert_array_equal(rest[1][0, 8], colormap("turbo")[0])


def test_render_depth_video_errors():
    frames = [black(6, 8)] * 2
    with pytest.raises(ValueError, match="same length"):
        list(render_depth_video(frames, [np.ones((6, 8))], 1.0, 2.0))
    with pytest.raises(ValueError, match="same length"):
        list(render_depth_video(frames[:1], [np.ones((6, 8))] * 2, 1.0, 2.0))
    with pytest.raises(ValueError, match="shape"):
        list(render_depth_video(frames, [np.ones((8, 6))] * 2, 1.0, 2.0))
    # Argument errors surface at the call, not at the first next().
    with pytest.raises(TypeError, match="unexpected keyword"):
        render_depth_video(frames, [np.ones((6, 8))] * 2, 1.0, 2.0, colour="turbo")
    with pytest.raises(ValueError, match="greater than near"):
        render_depth_video(frames, [np.ones((6, 8))] * 2, 2.0, 1.0)


def colorbar_strip(height=200, width=40, near=1.0, far=4.0, frames=1, **kwargs) -> list[np.ndarray]:
    """The colour bar strips (the columns right of the 2 * width panels) of a rendered depth video."""
    depth = np.full((frames, height, width), 2.0)
    outs = list(render_depth_video([black(height, width)] * frames, depth, near, far, colorbar=True, **kwargs))
    return [out[:, 2 * width :] for out in outs]


def bar_column(strip: np.ndarray) -> tuple[int, np.ndarray]:
    """(first row, colours (N, 3)) of the gradient, read down the strip's middle-of-bar column."""
    background = strip[0, 0]
    column = int(np.flatnonzero((strip != background).any(axis=-1).any(axis=0))[0]) + 2
    rows = np.flatnonzero((strip[:, column] != background).any(axis=-1))
    return int(rows[0]), strip[rows[0] : rows[-1] + 1, column]


@pytest.mark.parametrize("cmap", ["turbo", "gray"])
def test_colorbar_shows_the_colour_map_far_at_top_near_at_bottom(cmap):
    (strip,) = colorbar_strip(cmap=cmap)
    _, colours = bar_column(strip)
    table = colormap(cmap)
    # Every bar row is a colour of the map, and the indices run 0 (far) .. 255 (near) downwards.
    indices = np.array([int(np.flatnonzero((table == colour).all(axis=1))[0]) for colour in colours])
    assert indices[0] == 0 and indices[-1] == 255
    assert (np.diff(indices) >= 0).all()
    assert len(colours) > 150  # most of the 200-pixel height


def test_colorbar_ticks_sit_at_the_rows_of_their_colours():
    near, far = 1.0, 4.0
    (strip,) = colorbar_strip(near=near, far=far)
    top, colours = bar_column(strip)
    ticks = vis._depth_ticks(near, far, True, len(colours) - 1, 2.0 * 10)
    values = [value for value, _ in ticks]
    assert values[0] == far and values[-1] == near and 2.0 in values  # ends, and a round value between
    table = colormap("turbo")
    for value, position in ticks:
        expected = int(np.flatnonzero((table == colorize_depth(np.array([[value]]), near, far)[0, 0]).all(axis=1))[0])
        shown = int(np.flatnonzero((table == colours[round(position)]).all(axis=1))[0])
        # One bar row spans 255 / (rows - 1) colour indices: the tick is within a row of its colour.
        assert abs(shown - expected) <= 255 / (len(colours) - 1) + 1, (value, shown, expected)
    # Label text (light on the dark strip) right of the bar, beside each tick.
    light = (strip.astype(int).min(axis=-1) > 150)
    text_columns = np.flatnonzero(light.any(axis=0))
    assert text_columns.min() > 8 and light.sum() > 50
    for _, position in ticks:
        row = top + round(position)
        assert light[max(row - 6, 0) : row + 7].sum() > 5, row


def test_depth_ticks_are_nice_and_apart():
    for near, far, inverse in [(0.6, 20.6, True), (0.6, 20.6, False), (2.0, 3.1, True), (0.05, 0.4, False)]:
        ticks = vis._depth_ticks(near, far, inverse, 200, 20.0)
        positions = [position for _, position in ticks]
        assert positions == sorted(positions) and np.min(np.diff(positions)) >= 20.0
        assert ticks[0][0] == far and ticks[-1][0] == near and len(ticks) >= 3
        for value, _ in ticks[1:-1]:
            # Round values: at most two significant digits.
            assert float(f"{value:.2g}") == pytest.approx(value), (near, far, value)


def test_colorbar_width_is_even_fixed_and_small_frames_work():
    strips = colorbar_strip(height=120, width=30, frames=3)
    widths = {strip.shape[1] for strip in strips}
    assert len(widths) == 1 and widths.pop() % 2 == 0
    np.testing.assert_array_equal(strips[0], strips[2])
    # Without the option the output stays (H, 2W).
    (plain,) = render_depth_video([black(120, 30)], np.full((1, 120, 30), 2.0), 1.0, 4.0)
    assert plain.shape == (120, 60, 3)
    # A frame too short for labels still gets the bar (no text).
    (tiny,) = colorbar_strip(height=6, width=8)
    assert tiny.shape[0] == 6 and tiny.shape[1] % 2 == 0
    with pytest.raises(TypeError, match="colorbar"):
        render_depth_video([black()], [np.ones((32, 32))], 1.0, 2.0, colorbar="yes")


# -------------------------------------------------------------------------------- track_colors


def test_track_colors_are_distinct_saturated_and_deterministic():
    three = track_colors(3)
    assert three.shape == (3, 3) and three.dtype == np.uint8
    # Hues 0, 1/3, 2/3 at full saturation and value: pure red, green and blue, in some order.
    assert sorted(map(tuple, three.tolist())) == [(0, 0, 255), (0, 255, 0), (255, 0, 0)]
    many = track_colors(50, seed=3)
    assert len({tuple(c) for c in many.tolist()}) == 50
    assert (many.max(axis=1) == 255).all() and (many.min(axis=1) == 0).all()
    np.testing.assert_array_equal(many, track_colors(50, seed=3))
    assert not np.array_equal(many, track_colors(50, seed=4))
    assert track_colors(0).shape == (0, 3)
    with pytest.raises(ValueError):
        track_colors(-1)


# ------------------------------------------------------------------------------- render_tracks


def one_track(points, visible=True, **kwargs) -> list[np.ndarray]:
    """Render a single red track (T, 2) on black 32x32 frames, one per track frame."""
    tracks = np.asarray(points, dtype=np.float64).reshape(-1, 1, 2)
    vis_mask = np.broadcast_to(np.asarray(visible, dtype=bool).reshape(-1, 1), tracks.shape[:2]).copy()
    kwargs.setdefault("colors", np.array([RED], dtype=np.uint8))
    kwargs.setdefault("radius", 3.0)
    frames = [black() for _ in range(kwargs.pop("num_frames", len(tracks)))]
    return list(render_tracks(frames, tracks, vis_mask, **kwargs))


@pytest.mark.parametrize("x, y", [(20.7, 10.2), (20.0, 10.0), (5.99, 25.5)])
def test_visible_point_colours_its_pixel(x, y):
    (out,) = one_track([(x, y)])
    np.testing.assert_array_equal(out[int(np.floor(y)), int(np.floor(x))], RED)
    # Nothing beyond the radius (3) plus a pixel of rounding.
    rows, columns = np.nonzero(out.any(axis=-1))
    assert np.all(np.hypot(columns + 0.5 - x, rows + 0.5 - y) <= 3.0 + 1.0)
    assert len(rows) >= 9  # a filled disc, not a single dot


def test_default_radius_follows_frame_size():
    tracks = np.array([[[100.5, 100.5]]])
    (out,) = render_tracks([black(200, 300)], tracks, np.array([[True]]), colors=np.array([RED], dtype=np.uint8))
    rows, columns = np.nonzero(out.any(axis=-1))
    # max(2, round(200 / 100)) = 2: the disc spans about 2 * 2 pixels across.
    assert 3 <= columns.max() - columns.min() + 1 <= 5
    (big,) = render_tracks([black(1000, 1000)], tracks, np.array([[True]]), colors=np.array([RED], dtype=np.uint8))
    rows, columns = np.nonzero(big.any(axis=-1))
    # round(1000 / 100) = 10: about 20 pixels across.
    assert 19 <= columns.max() - columns.min() + 1 <= 21


def test_occluded_point_is_a_hollow_circle():
    (out,) = one_track([(15.5, 15.5)], visible=False, radius=5.0)
    np.testing.assert_array_equal(out[15, 15], [0, 0, 0])  # centre untouched
    rows, columns = np.nonzero(out.any(axis=-1))
    assert len(rows) > 0
    # Every coloured pixel is on the ring: its centre at distance ~ radius (outline width 2).
    distances = np.hypot(columns + 0.5 - 15.5, rows + 0.5 - 15.5)
    assert distances.min() >= 5.0 - 2.0 - 1.0 and distances.max() <= 5.0 + 1.0
    # Both the left and right sides of the ring are drawn.
    assert out[15, 10:13].any() and out[15, 18:21].any()


def test_point_outside_frame_changes_nothing():
    for point in [(-3.0, 10.0), (40.0, 10.0), (10.0, 32.0), (10.0, -0.5), (1e9, -1e9)]:
        (out,) = one_track([point])
        assert not out.any(), point
    # A whole track outside (trail too), including wild coordinates.
    outs = one_track([(-10.0, 5.0), (-5.0, 50.0), (1e12, 1e12)])
    assert not any(out.any() for out in outs)


def test_input_frames_are_not_modified():
    frame = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    before = frame.copy()
    (out,) = render_tracks([frame], np.array([[[10.0, 10.0]]]), np.array([[True]]), radius=3.0)
    np.testing.assert_array_equal(frame, before)
    assert not np.array_equal(out, before)


def test_trail_joins_consecutive_positions():
    outs = one_track([(5.5, 20.5), (25.5, 20.5)], radius=2.0, trail_length=4)
    # Frame 0 has no trail: only the disc around x = 5.5.
    assert not outs[0][20, 10:21].any()
    # Frame 1: the segment from column 5 to 25 along row 20 is red (newest segment: opaque).
    segment = outs[1][20, 8:23]
    assert (segment[:, 0] == 255).all() and not segment[:, 1:].any()


def test_trail_fades_with_age_and_skips_occlusions():
    # Positions at x = 2.5, 12.5, 22.5 (y = 16.5); frame 2 is rendered with trail_length = 4.
    outs = one_track([(2.5, 16.5), (12.5, 16.5), (22.5, 16.5)], radius=1.0, trail_length=4)
    older = int(outs[2][16, 7, 0])  # on segment 0 -> 1, age 1: alpha 255 * (1 - 1/4) = 191
    newer = int(outs[2][16, 17, 0])  # on segment 1 -> 2, age 0: opaque
    assert newer == 255
    assert abs(older - 191) <= 1
    # With the middle position occluded the trail goes straight from the first to the last one
    # (age 0, opaque), and the occluded frame shows no point of its own.
    outs = one_track([(2.5, 16.5), (12.5, 5.5), (22.5, 16.5)], visible=[True, False, True], radius=1.0, trail_length=4)
    assert (outs[2][16, 5:20, 0] == 255).all()
    assert not outs[2][5].any()  # nothing on the occluded position's row


def test_trail_length_limits_history():
    points = [(2.5 + 5 * i, 16.5) for i in range(6)]
    outs = one_track(points, radius=1.0, trail_length=2)
    # Frame 5 (x = 27.5): trail covers frames 3..5, i.e. x from 17.5 to 27.5, not before.
    assert outs[5][16, 18:27, 0].all()
    assert not outs[5][16, :16].any()


def test_first_frame_offset_selects_track_frames():
    points = [(5.5, 5.5), (15.5, 15.5), (25.5, 25.5)]
    outs = one_track(points, num_frames=2, first_frame=1, trail_length=0)
    assert len(outs) == 2
    np.testing.assert_array_equal(outs[0][15, 15], RED)  # input frame 0 shows track frame 1
    assert not outs[0][5, 5].any() and not outs[0][25, 25].any()
    np.testing.assert_array_equal(outs[1][25, 25], RED)
    # More frames than the tracks have from first_frame on is an error.
    with pytest.raises(ValueError, match="more frames than tracks"):
        one_track(points, num_frames=3, first_frame=1)


def test_tracks_are_drawn_before_their_query_frame():
    # Track 0 queried on frame 2, tracked backwards to frames 0 and 1 (as the pipelines do).
    tracks = np.array([[[5.5, 5.5]], [[12.5, 5.5]], [[20.5, 5.5]]])
    outs = one_track(tracks[:, 0], radius=2.0, trail_length=4, query_frames=np.array([2]))
    # Frame 0, before the query frame: the point is drawn at its tracked position (a filled disc).
    assert (outs[0][4:7, 4:7] == RED).all()
    # Frame 1: point at x = 12.5 and the trail back to frame 0's position (crossing no query frame).
    assert (outs[1][4:7, 11:14] == RED).all()
    assert (outs[1][5, 6:12, 0] == 255).all()
    # No white query ring before the query frame ...
    assert not (outs[0] == 255).all(axis=-1).any() and not (outs[1] == 255).all(axis=-1).any()


def test_query_frame_gets_a_white_ring_around_the_point():
    outs = one_track([(5.5, 5.5), (16.5, 16.5), (26.5, 26.5)], radius=2.0, trail_length=0, query_frames=np.array([1]))
    white = [(out == 255).all(axis=-1) for out in outs]
    assert not white[0].any() and not white[2].any()
    rows, columns = np.nonzero(white[1])
    assert len(rows) > 8
    # The ring lies outside the disc (radius 2) and close to it, around the point.
    distances = np.hypot(columns + 0.5 - 16.5, rows + 0.5 - 16.5)
    assert distances.min() > 2.0 and distances.max() < 6.0
    np.testing.assert_array_equal(outs[1][16, 16], RED)  # the point stays on top
    # Without query_frames nothing is marked.
    assert not any((out == 255).all(axis=-1).any() for out in one_track([(5.5, 5.5), (16.5, 16.5)], trail_length=0))


def test_invisible_points_before_the_query_frame():
    points = [(8.5, 8.5), (np.nan, np.nan), (24.5, 24.5)]
    visible = [False, False, True]
    # Occluded with a position: hollow by default (centre untouched), absent with show_occluded=False.
    outs = one_track(points, visible=visible, radius=4.0, query_frames=np.array([2]))
    assert outs[0].any() and not outs[0][8, 8].any()
    hidden = one_track(points, visible=visible, radius=4.0, query_frames=np.array([2]), show_occluded=False)
    assert not hidden[0].any()
    # Untracked (NaN, invisible): nothing, and no trail from or to it.
    assert not outs[1].any() and not hidden[1].any()
    np.testing.assert_array_equal(hidden[2][24, 24], RED)
    # No trail: the earlier positions were never visible (the query ring reaches up to row 18).
    assert not hidden[2][:17].any()


def test_nan_where_occluded_is_skipped():
    tracks = np.array([[[np.nan, np.nan]], [[10.5, 10.5]]])
    visible = np.array([[False], [True]])
    outs = list(render_tracks([black(), black()], tracks, visible, colors=np.array([RED], dtype=np.uint8)))
    assert not outs[0].any()
    np.testing.assert_array_equal(outs[1][10, 10], RED)


def test_render_tracks_is_lazy():
    log: list[int] = []
    frames = [black() for _ in range(3)]
    out = render_tracks(counting(frames, log), np.full((3, 1, 2), 5.0), np.ones((3, 1), dtype=bool))
    assert log == []
    next(out)
    assert log == [0]
    assert len(list(out)) == 2


def test_render_tracks_shape_and_dtype_errors():
    frames = [black()]
    tracks = np.zeros((1, 2, 2))
    visible = np.ones((1, 2), dtype=bool)
    with pytest.raises(ValueError, match=r"\(T, Q, 2\)"):
        render_tracks(frames, np.zeros((1, 2, 3)), visible)
    with pytest.raises(ValueError, match=r"\(T, Q, 2\)"):
        render_tracks(frames, np.zeros((2, 2)), visible)
    with pytest.raises(ValueError, match="visible must have shape"):
        render_tracks(frames, tracks, np.ones((1, 3), dtype=bool))
    with pytest.raises(ValueError, match="visible must have shape"):
        render_tracks(frames, tracks, np.ones((2, 2), dtype=bool))
    with pytest.raises(TypeError, match="bool"):
        render_tracks(frames, tracks, np.ones((1, 2), dtype=np.float32))
    with pytest.raises(TypeError, match="dtype"):
        render_tracks(frames, tracks.astype(bool), visible)
    with pytest.raises(ValueError, match="finite where visible"):
        render_tracks(frames, np.array([[[0.0, 0.0], [np.nan, 1.0]]]), visible)
    with pytest.raises(ValueError, match="colors must have shape"):
        render_tracks(frames, tracks, visible, colors=np.zeros((3, 3), dtype=np.uint8))
    with pytest.raises(TypeError, match="colors must be integer"):
        render_tracks(frames, tracks, visible, colors=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="query_frames must have shape"):
        render_tracks(frames, tracks, visible, query_frames=np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="query_frames must be >= 0"):
        render_tracks(frames, tracks, visible, query_frames=np.array([0, -1]))
    with pytest.raises(TypeError, match="show_occluded"):
        render_tracks(frames, tracks, visible, show_occluded=1)
    with pytest.raises(ValueError, match="radius"):
        render_tracks(frames, tracks, visible, radius=0.0)
    with pytest.raises(ValueError, match="trail_length"):
        render_tracks(frames, tracks, visible, trail_length=-1)
    # Frame problems surface when the frame is reached.
    with pytest.raises(ValueError, match="more frames than tracks"):
        list(render_tracks([black(), black()], tracks, visible))
    with pytest.raises(TypeError, match="uint8"):
        list(render_tracks([np.zeros((32, 32, 3))], tracks, visible))


# -------------------------------------------------------------------------------- render_boxes


def boxes_on_black(box, size=(64, 64), **kwargs) -> np.ndarray:
    kwargs.setdefault("colors", np.array([RED], dtype=np.uint8))
    kwargs.setdefault("line_width", 1)
    kwargs.setdefault("labels", None)
    (out,) = render_boxes([black(*size)], np.array([[box]], dtype=np.float64), **kwargs)
    return out


def test_box_border_coloured_interior_unchanged():
    out = boxes_on_black((10.0, 20.0, 30.0, 40.0))
    # Covered pixels: columns 10..29, rows 20..39; a 1-pixel outline on their border.
    for border in (out[20, 10:30], out[39, 10:30], out[20:40, 10], out[20:40, 29]):
        assert (border == RED).all()
    assert not out[21:39, 11:29].any()
    # Nothing outside the box.
    mask = np.zeros((64, 64), dtype=bool)
    mask[20:40, 10:30] = True
    assert not out[~mask].any()


def test_box_line_width_grows_inwards():
    out = boxes_on_black((10.0, 20.0, 30.0, 40.0), line_width=3)
    assert (out[20:23, 10:30] == RED).all() and (out[20:40, 27:30] == RED).all()
    assert not out[23:37, 13:27].any()
    assert not out[19].any() and not out[:, 30].any()


def test_nan_degenerate_and_outside_boxes_are_skipped():
    nan = (np.nan, 1.0, 5.0, 5.0)
    degenerate = [(10.0, 10.0, 5.0, 20.0), (10.0, 10.0, 20.0, 10.0)]
    outside = [(70.0, 5.0, 90.0, 20.0), (-20.0, -20.0, -1.0, -1.0)]
    for box in [nan, *degenerate, *outside]:
        assert not boxes_on_black(box).any(), box


def test_box_partly_outside_is_clipped():
    out = boxes_on_black((-10.0, 5.0, 20.0, 15.0), size=(32, 32))
    # Clipped to (0, 5, 20, 15): columns 0..19, rows 5..14; the left side runs along column 0.
    assert (out[5:15, 0] == RED).all()
    assert (out[5, 0:20] == RED).all() and (out[14, 0:20] == RED).all()
    assert (out[5:15, 19] == RED).all()
    assert not out[5, 20:].any() and not out[6:14, 1:19].any()
    # Past the bottom-right corner too.
    out = boxes_on_black((20.0, 20.0, 50.0, 50.0), size=(32, 32))
    assert (out[20:32, 31] == RED).all() and (out[31, 20:32] == RED).all()


def test_boxes_colours_first_frame_and_custom_labels():
    boxes = np.array([[[2, 2, 10, 10], [20, 20, 30, 30]], [[4, 4, 12, 12], [22, 22, 31, 31]]], dtype=np.float64)
    colors = np.array([RED, GREEN], dtype=np.uint8)
    (out,) = render_boxes([black()], boxes, colors=colors, first_frame=1, line_width=1, labels=None)
    np.testing.assert_array_equal(out[4, 4], RED)  # frame 1 box of track 0
    np.testing.assert_array_equal(out[22, 22], GREEN)
    assert not out[2, 2].any()  # frame 0 box is not drawn
    plain = boxes_on_black((10.0, 30.0, 40.0, 50.0))
    labelled = boxes_on_black((10.0, 30.0, 40.0, 50.0), labels=["car"])
    # The label patch (box colour) and its text sit above the top-left corner.
    above = labelled[:30, 10:40]
    assert (above == RED).all(axis=-1).sum() > 20 and (above != plain[:30, 10:40]).any()
    np.testing.assert_array_equal(labelled[30:, :], plain[30:, :])


def test_boxes_are_labelled_with_their_query_index_by_default():
    boxes = np.array([[[10, 40, 40, 60], [10, 2, 40, 20]]], dtype=np.float64)
    colors = np.array([RED, GREEN], dtype=np.uint8)
    (out,) = render_boxes([black(64, 64)], boxes, colors=colors, line_width=1)
    (bare,) = render_boxes([black(64, 64)], boxes, colors=colors, line_width=1, labels=None)
    # Box 0: a red patch with white text (red is dark by luma) just above its top-left corner (10, 40).
    patch = out[26:40, 10:30].astype(int)
    assert (patch == RED).all(axis=-1).sum() > 20
    zero = (patch[..., 1] > 128) & (patch[..., 2] > 128)  # whitish (antialiased) text pixels
    assert zero.sum() >= 5 and not bare[26:40, 10:30].any()
    # Box 1 touches the top: its label goes just inside the box (the interior is black when bare).
    assert (out[3:12, 11:16] == GREEN).all(axis=-1).sum() > 15 and not bare[3:12, 11:16].any()
    # The labels are the query indices, in order.
    (explicit,) = render_boxes([black(64, 64)], boxes, colors=colors, line_width=1, labels=["0", "1"])
    (swapped,) = render_boxes([black(64, 64)], boxes, colors=colors, line_width=1, labels=["1", "0"])
    np.testing.assert_array_equal(out, explicit)
    assert not np.array_equal(out, swapped)
    with pytest.raises(TypeError, match="'index'"):
        render_boxes([black()], boxes, labels="idx")


def test_boxes_are_drawn_before_their_query_frame_and_marked_on_it():
    boxes = np.array([[[2, 2, 10, 10]], [[12, 12, 20, 20]], [[20, 2, 28, 10]]], dtype=np.float64)
    outs = list(render_boxes([black()] * 3, boxes, colors=np.array([RED], np.uint8), line_width=1, labels=None,
                             query_frames=np.array([2])))
    assert (outs[0][2, 2:10] == RED).all() and (outs[1][12, 12:20] == RED).all()  # before the query frame
    white = [(out == 255).all(axis=-1) for out in outs]
    assert not white[0].any() and not white[1].any()
    # On the query frame: a white frame one pixel outside the box (columns 19..28, rows 1..10).
    assert white[2][1, 19:29].all() and white[2][1:11, 28].all()
    assert (outs[2][2, 20:28] == RED).all()


def test_render_boxes_errors_and_laziness():
    boxes = np.zeros((2, 1, 4))
    with pytest.raises(ValueError, match=r"\(T, Q, 4\)"):
        render_boxes([black()], np.zeros((2, 1, 2)))
    with pytest.raises(ValueError, match="labels"):
        render_boxes([black()], boxes, labels=["a", "b"])
    with pytest.raises(TypeError, match="labels"):
        render_boxes([black()], boxes, labels="a")
    with pytest.raises(ValueError, match="line_width"):
        render_boxes([black()], boxes, line_width=0)
    with pytest.raises(ValueError, match="query_frames must be >= 0"):
        render_boxes([black()], boxes, query_frames=np.array([-2]))
    with pytest.raises(ValueError, match="more frames than boxes"):
        list(render_boxes([black()] * 3, boxes))
    log: list[int] = []
    out = render_boxes(counting([black(), black()], log), boxes)
    assert log == []
    next(out)
    assert log == [0]


# ---------------------------------------------------------------------------- camera trajectory


def test_camera_trajectory_circle_size_and_content():
    image = render_camera_trajectory(camera_circle(12), size=(120, 200), current=3, axes=False)
    assert image.shape == (120, 200, 3) and image.dtype == np.uint8
    background = image[0, 0]
    drawn = (image != background).any(axis=-1)
    assert drawn.sum() > 200
    rows, columns = np.nonzero(drawn)
    # Auto-scaled to the height (the smaller side) with a margin, centred horizontally.
    assert rows.min() > 0 and rows.max() < 119 and rows.max() - rows.min() > 60
    assert abs((columns.min() + columns.max()) / 2 - 100) < 10
    # The centre of the circle is empty, and `current` changes the picture.
    assert not drawn[55:65, 95:105].any()
    assert not np.array_equal(image, render_camera_trajectory(camera_circle(12), size=(120, 200), axes=False))


def test_camera_triangle_points_along_viewing_direction():
    # A single camera sits in the plot's centre (150.5, 150.5); its triangle's tip (1.4 marker
    # sizes ahead) reaches about twice as far as its base (0.6 behind).
    looking_x = np.eye(4)[None].copy()
    looking_x[0, :3, :3] = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]  # third column: +x
    image = render_camera_trajectory(looking_x, size=(301, 301), axes=False)
    rows, columns = np.nonzero((image != image[0, 0]).any(axis=-1))
    assert columns.max() - 150.5 > 1.5 * (150.5 - columns.min())  # points right
    assert abs((rows.min() + rows.max()) / 2 - 150.5) <= 1
    # Looking along +z (identity rotation): +z is up in the image, so the tip points up.
    image = render_camera_trajectory(np.eye(4)[None], size=(301, 301), axes=False)
    rows, columns = np.nonzero((image != image[0, 0]).any(axis=-1))
    assert 150.5 - rows.min() > 1.5 * (rows.max() - 150.5)
    assert abs((columns.min() + columns.max()) / 2 - 150.5) <= 1


def test_camera_trajectory_axes_x_right_z_up():
    # Camera 1 is 2 units along +z from camera 0, camera 2 along +x; camera 1 is highlighted (red).
    poses = np.tile(np.eye(4), (3, 1, 1))
    poses[1, 2, 3] = 2.0
    poses[2, 0, 3] = 2.0
    image = render_camera_trajectory(poses, size=(200, 200), current=1, axes=False).astype(int)
    red_rows, red_columns = np.nonzero((image[..., 0] > 200) & (image[..., 1] < 100) & (image[..., 2] < 100))
    assert len(red_rows) > 10
    # +z is up: the highlighted camera sits above the other two; +x is right: camera 2 (right half).
    drawn_rows, drawn_columns = np.nonzero((image != image[0, 0]).any(axis=-1))
    assert red_rows.mean() < 100 < drawn_rows.max()
    assert red_columns.mean() < 100 < drawn_columns.max()


def test_camera_trajectory_errors():
    poses = camera_circle(4)
    poses[2, 0, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        render_camera_trajectory(poses)
    with pytest.raises(ValueError, match=r"\(K, 4, 4\)"):
        render_camera_trajectory(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="current"):
        render_camera_trajectory(camera_circle(4), current=4)
    with pytest.raises(ValueError, match="size"):
        render_camera_trajectory(camera_circle(4), size=(0, 10))
    # No pose at all is an empty plot.
    empty = render_camera_trajectory(np.zeros((0, 4, 4)), size=(8, 9))
    assert empty.shape == (8, 9, 3) and (empty == empty[0, 0]).all()


# ---------------------------------------------------------------------------- render_pose_video


def test_render_pose_video_layout_laziness_and_progress():
    frames = [np.full((40, 60, 3), 9, dtype=np.uint8) for _ in range(5)]
    log: list[int] = []
    out = render_pose_video(counting(frames, log), camera_circle(3), np.array([1, 2, 4]))
    assert log == []
    first = next(out)
    assert log == [0]
    assert first.shape == (40, 100, 3)
    np.testing.assert_array_equal(first[:, :60], frames[0])
    # Frame 0 is before the first pose: an empty (uniform) plot.
    plot = first[:, 60:]
    assert (plot == plot[0, 0]).all()
    rest = list(out)
    assert len(rest) == 4 and log == [0, 1, 2, 3, 4]
    drawn = [int((f[:, 60:] != f[0, 60]).any(axis=-1).sum()) for f in rest]
    # One, two, two and three cameras known: the plot grows as poses arrive.
    assert 0 < drawn[0] < drawn[1] == drawn[2] < drawn[3]


def test_render_pose_video_errors():
    with pytest.raises(ValueError, match="strictly increasing"):
        render_pose_video([black()], camera_circle(3), np.array([0, 2, 2]))
    with pytest.raises(ValueError, match="pose_frames must have shape"):
        render_pose_video([black()], camera_circle(3), np.array([0, 1]))
    with pytest.raises(TypeError, match="integer"):
        render_pose_video([black()], camera_circle(3), np.array([0.0, 1.0, 2.0]))


def moving_cameras(count: int) -> np.ndarray:
    """(count, 4, 4) cameras walking forward (+z) while drifting right (+x), looking forward."""
    poses = np.tile(np.eye(4), (count, 1, 1))
    poses[:, 0, 3] = np.linspace(0.0, 1.0, count)
    poses[:, 2, 3] = np.linspace(0.0, 3.0, count)
    return poses


def test_pose_video_axes_stay_fixed_while_the_path_grows():
    frames = [np.full((160, 100, 3), 9, dtype=np.uint8) for _ in range(6)]
    plots = [out[:, 100:] for out in render_pose_video(frames, moving_cameras(3), np.array([1, 3, 5]), unit="m")]
    frame_colour = np.array(vis._FRAME_COLOR)
    masks = [(plot == frame_colour).all(axis=-1) for plot in plots]
    assert masks[0].sum() > 4 * 100  # the frame around the plot area
    for mask in masks[1:]:
        np.testing.assert_array_equal(mask, masks[0])  # never moves nor rescales
    # Frame 0 is before the first pose: axes only. Later frames add cameras, never change the rest.
    changed = [(plot != plots[0]).any(axis=-1) for plot in plots]
    assert not changed[0].any() and changed[1].any()
    assert changed[1].sum() < changed[3].sum() < changed[5].sum()
    # The scale bar row (below the frame) is the same in every frame.
    frame_bottom = int(np.flatnonzero(masks[0].any(axis=1))[-1])
    for plot in plots:
        np.testing.assert_array_equal(plot[frame_bottom + 1 :], plots[0][frame_bottom + 1 :])


def test_trajectory_scale_bar_is_one_grid_step_with_its_unit():
    # Without cameras (the extent alone), so that no camera hides a grid line.
    image = render_camera_trajectory(moving_cameras(0), size=(200, 200), extent=(0.0, 1.0, 0.0, 3.0), unit="m")
    frame = (image == np.array(vis._FRAME_COLOR)).all(axis=-1)
    frame_rows = np.flatnonzero(frame.any(axis=1))
    bottom = int(frame_rows[-1])
    # Grid lines (and the z axis) cross a row near the top of the plot area: their spacing is one step.
    row = image[int(frame_rows[0]) + 2]
    grid = (row == np.array(vis._GRID_COLOR)).all(axis=-1) | (row == np.array(vis._AXIS_COLOR)).all(axis=-1)
    spacing = np.diff(np.flatnonzero(grid))
    assert len(spacing) >= 2 and spacing.max() - spacing.min() <= 1
    # The scale bar: the longest run of text-coloured pixels below the frame.
    below = (image[bottom + 1 :] == np.array(vis._TEXT_COLOR)).all(axis=-1)
    bar_row = below[int(np.argmax(below.sum(axis=1)))]
    columns = np.flatnonzero(bar_row)
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    assert abs(max(len(run) for run in runs) - spacing.mean()) <= 1.5
    # Its label says the unit: a different unit changes only the area below the frame.
    other = render_camera_trajectory(moving_cameras(0), size=(200, 200), extent=(0.0, 1.0, 0.0, 3.0), unit="units")
    np.testing.assert_array_equal(image[: bottom + 1], other[: bottom + 1])
    assert not np.array_equal(image[bottom + 1 :], other[bottom + 1 :])


def test_trajectory_extent_fixes_the_view():
    poses = moving_cameras(5)
    extent = (0.0, 1.0, 0.0, 3.0)
    frame_colour = np.array(vis._FRAME_COLOR)

    def render(count, **kwargs):
        # Camera 1 highlighted (red, drawn last, so on top of everything).
        image = render_camera_trajectory(poses[:count], size=(150, 150), current=1, **kwargs)
        return (image == np.array(vis._CURRENT_COLOR)).all(axis=-1), (image == frame_colour).all(axis=-1)

    full_camera, full_frame = render(5, extent=extent)
    part_camera, part_frame = render(2, extent=extent)
    own_camera, _ = render(2)
    # Same extent: camera 1 lands on the same pixels and the frame is the same, however many poses.
    assert full_camera.sum() > 10
    np.testing.assert_array_equal(full_camera, part_camera)
    np.testing.assert_array_equal(full_frame, part_frame)
    # Fitted to the two cameras alone, the view zooms in: camera 1 moves.
    assert not np.array_equal(own_camera, part_camera)
    # No pose and an extent: the axes alone; a small plot is drawn bare (no frame).
    assert (render_camera_trajectory(poses[:0], size=(150, 150), extent=extent) == frame_colour).all(axis=-1).any()
    small = render_camera_trajectory(poses, size=(40, 40))
    assert not (small == frame_colour).all(axis=-1).any()


def test_trajectory_option_errors():
    with pytest.raises(ValueError, match="extent"):
        render_camera_trajectory(camera_circle(3), extent=(0.0, 1.0, 2.0))
    with pytest.raises(ValueError, match="extent"):
        render_camera_trajectory(camera_circle(3), extent=(1.0, 0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="extent must be finite"):
        render_camera_trajectory(camera_circle(3), extent=(0.0, float("nan"), 0.0, 1.0))
    with pytest.raises(ValueError, match="unit"):
        render_camera_trajectory(camera_circle(3), unit="")
    with pytest.raises(ValueError, match="unit"):
        render_pose_video([black()], camera_circle(3), np.array([0, 1, 2]), unit=None)
