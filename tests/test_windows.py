"""Window planning and track chaining (fourd_hub/windows.py), on positions only (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from fourd_hub.windows import chain_tracks, plan_windows


@pytest.mark.parametrize("overlap", [0, 1])
@pytest.mark.parametrize("count", [2, 7, 16, 17, 31, 32, 33, 50])
@pytest.mark.parametrize("start", [0, 1])
def test_every_position_is_kept_exactly_once(count, overlap, start):
    windows = plan_windows(count, 16, overlap=overlap, start=start)
    kept = np.concatenate([np.arange(w.keep_from, w.end) for w in windows])
    np.testing.assert_array_equal(kept, np.arange(start, count))
    for window in windows:
        assert len(window.positions) == 16  # padded to the model's length
        real = window.positions[: window.num_valid]
        np.testing.assert_array_equal(real, np.arange(window.start, window.start + window.num_valid))
        assert (window.positions[window.num_valid :] == count - 1).all()  # padding repeats the last frame
        assert window.start <= window.keep_from < window.end


def test_last_window_shifts_back_instead_of_padding():
    windows = plan_windows(40, 16)
    assert [(w.start, w.keep_from, w.end) for w in windows] == [(0, 0, 16), (16, 16, 32), (24, 32, 40)]
    assert all(w.num_valid == 16 for w in windows)


def test_short_video_is_padded():
    (window,) = plan_windows(10, 16)
    assert window.num_valid == 10 and window.positions.tolist() == list(range(10)) + [9] * 6


def test_chained_windows_start_on_the_previous_last_frame():
    windows = plan_windows(46, 16, overlap=1)
    assert [(w.start, w.end) for w in windows] == [(0, 16), (15, 31), (30, 46)]
    windows = plan_windows(40, 16, overlap=1)
    assert [(w.start, w.keep_from, w.end) for w in windows] == [(0, 0, 16), (15, 16, 31), (24, 31, 40)]


def test_unpadded_windows_for_models_of_any_length():
    windows = plan_windows(40, 16, shift_last=False, pad=False)
    assert [(w.start, w.end, len(w.positions)) for w in windows] == [(0, 16, 16), (16, 32, 16), (32, 40, 8)]


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(num_positions=10, window=0), "window"), (dict(num_positions=10, window=4, overlap=4), "overlap"),
     (dict(num_positions=10, window=4, start=10), "start"), (dict(num_positions=10, window=4, start=-1), "start")],
)
def test_plan_windows_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_windows(**kwargs)


def _moving_runner(velocity: float, calls: list, hidden_frames: set[int] = frozenset()):
    """A fake head: every query moves by ``velocity`` per frame from its seed; hidden at some frames."""

    def run(positions, seeds, state):
        calls.append((positions.copy(), seeds.copy(), state))
        steps = np.arange(len(positions))[:, None, None]
        values = seeds[None] + velocity * steps
        visible = np.array([[p not in hidden_frames] * len(seeds) for p in positions])
        states = [f"after {p}" for p in positions]
        return values, visible, states

    return run


def test_chain_reseeds_from_the_previous_window_and_carries_state():
    calls = []
    queries = np.array([[0.1, 0.2], [0.5, 0.5]])
    values, visible = chain_tracks(np.arange(40), queries, 16, _moving_runner(0.01, calls))
    # Consistent chaining: the motion continues exactly across window boundaries.
    expected = queries[None] + 0.01 * np.arange(40)[:, None, None]
    np.testing.assert_allclose(values, expected, atol=1e-12)
    assert visible.all()
    # Window 2 starts on frame 15 with the state after frame 14; the last (shifted) one on 24 with the state after 23.
    assert [c[0][0] for c in calls] == [0, 15, 24]
    assert [c[2] for c in calls] == [None, "after 14", "after 23"]
    np.testing.assert_allclose(calls[1][1], expected[15])


def test_chain_reseeds_occluded_points_from_their_last_visible_position():
    calls = []
    queries = np.array([[0.0, 0.0]])
    values, visible = chain_tracks(np.arange(31), queries, 16, _moving_runner(1.0, calls, hidden_frames={14, 15}))
    assert not visible[14, 0] and not visible[15, 0] and visible[13, 0]
    # Frame 15 starts window 2, but the point was last seen at frame 13 (value 13): that is the new seed.
    np.testing.assert_allclose(calls[1][1], [[13.0, 13.0]])
    np.testing.assert_allclose(values[16], [[14.0, 14.0]])  # seed 13 + one step


def test_chain_follows_the_given_sequence_order():
    calls = []
    sequence = np.arange(20, -1, -1)  # backwards from frame 20
    values, _ = chain_tracks(sequence, np.array([[1.0, 1.0]]), 16, _moving_runner(-0.01, calls))
    assert calls[0][0][0] == 20 and calls[0][0][1] == 19
    np.testing.assert_allclose(values[:, 0, 0], 1.0 - 0.01 * np.arange(21), atol=1e-12)


def test_chain_of_one_frame_is_the_query():
    values, visible = chain_tracks(np.array([7]), np.array([[0.3, 0.4]]), 16, _moving_runner(1.0, []))
    np.testing.assert_array_equal(values, [[[0.3, 0.4]]])
    assert visible.all()
