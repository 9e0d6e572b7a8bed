"""How a long video is cut into model windows, and how tracks are chained across them.

Pure functions on frame positions (indices into the frames a pipeline processes), shared by every
pipeline and tested on their own.

- :func:`plan_windows` cuts positions ``[start, n)`` into windows of the model's length. Every
  position is *kept* from exactly one window (``Window.keep``). Independent windows (depth,
  features) do not overlap, except the last one, which is shifted back to end at ``n`` when the
  video is long enough (a model tied to T frames then still sees T real frames). Chained windows
  (tracking, camera pose) overlap by one frame: the next window starts on the previous window's
  last frame, where the tracks are known, so its queries can be re-seeded there.
- :func:`chain_tracks` runs a tracking head window after window along such a chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Window:
    """One model call.

    Attributes:
        start: first position of the window.
        positions: (T,) positions fed to the model: ``start, start + 1, ...``; when fewer than T
            frames remain and the window cannot shift back, the last position repeats (padding).
        keep_from: the first position whose output is taken from this window (earlier ones were
            kept from the previous window).
        num_valid: how many of ``positions`` are real frames (the rest is padding).
    """

    start: int
    positions: np.ndarray
    keep_from: int
    num_valid: int

    @property
    def end(self) -> int:
        """One past the last real position."""
        return self.start + self.num_valid

    @property
    def keep(self) -> slice:
        """Indices into the window's outputs that are kept: positions ``keep_from .. end - 1``."""
        return slice(self.keep_from - self.start, self.num_valid)


def plan_windows(
    num_positions: int,
    window: int,
    *,
    start: int = 0,
    overlap: int = 0,
    shift_last: bool = True,
    pad: bool = True,
) -> list[Window]:
    """Windows covering positions ``[start, num_positions)``, each position kept exactly once.

    Args:
        num_positions: number of frames (positions 0 .. n - 1).
        window: frames per model call (T).
        start: first position to cover.
        overlap: frames shared by consecutive windows (1 for chained tracking).
        shift_last: when the remaining frames do not fill a window, move the last window back so
            it ends at the last frame (its outputs before ``keep_from`` are not used). Otherwise
            (or when the whole range is shorter than one window) the window is padded.
        pad: pad short windows to ``window`` by repeating the last frame (models tied to T frames);
            ``False`` leaves them short (MooG backbones take any length).

    Returns:
        The windows, in order.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, {window}), got {overlap}")
    if not 0 <= start < num_positions:
        raise ValueError(f"start must be in [0, {num_positions}), got {start}")
    windows: list[Window] = []
    begin, kept_until = start, start
    while True:
        end = begin + window
        if end >= num_positions:
            if shift_last and windows and num_positions - window >= start:
                begin = num_positions - window
            valid = num_positions - begin
            positions = np.arange(begin, num_positions)
            if pad and valid < window:
                positions = np.concatenate([positions, np.full(window - valid, num_positions - 1)])
            windows.append(Window(begin, positions, kept_until, valid))
            return windows
        windows.append(Window(begin, np.arange(begin, end), kept_until, window))
        kept_until = end
        begin = end - overlap


# A window runner: (window positions (T,), seeds (Q, c), carry) -> (values (T, Q, c), visible (T, Q), states or None).
WindowRunner = Callable[[np.ndarray, np.ndarray, object], tuple[np.ndarray, np.ndarray, object]]


def chain_tracks(
    sequence: np.ndarray,
    queries: np.ndarray,
    window: int,
    run_window: WindowRunner,
    *,
    use_visibility: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Track ``queries`` along ``sequence`` (the frames to visit, first = the query frame).

    The first window starts on the query frame with the queries. Each following window starts on
    the previous window's last frame (or, for the final window, wherever it must start to end on the
    last frame) and its queries are re-seeded from the tracks already known there: the prediction
    at the window's first frame where the point is visible, else the point's last visible
    prediction before it (an occluded point is re-seeded where it was last seen). The model's
    recurrent state, if any, is carried: ``run_window`` returns per-frame states and the state
    before the next window's first frame is passed to the next call.

    Args:
        sequence: (n,) frame positions in visiting order (reversed for tracking backwards).
        queries: (Q, c) normalised query coordinates at ``sequence[0]``.
        window: frames per model call.
        run_window: the model on one window: ``(positions (T,), seeds (Q, c), initial_state)`` ->
            ``(values (T, Q, c), visible (T, Q) bool, states (T, ...) or None)``; ``states[i]`` is
            the recurrent state after window frame i.
        use_visibility: points re-seed from their last *visible* prediction; boxes (no
            visibility) from their latest one.

    Returns:
        values (n, Q, c) and visible (n, Q), in ``sequence`` order; entry 0 is the query itself
        (visible).
    """
    count = len(sequence)
    values = np.full((count, *queries.shape), np.nan, dtype=np.float64)
    visible = np.zeros((count, queries.shape[0]), dtype=bool)
    values[0], visible[0] = queries, True
    if count == 1:
        return values, visible
    state, previous, previous_states = None, None, None
    for current in plan_windows(count, window, overlap=1):
        if current.start == 0:
            seeds = queries
        else:
            seeds = _last_known(values[: current.start + 1], visible[: current.start + 1] if use_visibility else None)
        if previous is not None and previous_states is not None:  # carry the recurrent state
            state = previous_states[current.start - 1 - previous.start]
        window_values, window_visible, previous_states = run_window(sequence[current.positions], seeds, state)
        values[current.keep_from : current.end] = window_values[current.keep]
        visible[current.keep_from : current.end] = window_visible[current.keep]
        previous = current
    values[0], visible[0] = queries, True  # the query frame is known exactly
    return values, visible


def _last_known(values: np.ndarray, visible: np.ndarray | None) -> np.ndarray:
    """Per query, the latest row of ``values`` (t, Q, c) where it is visible (or just the latest)."""
    if visible is None:
        return values[-1]
    last = len(values) - 1 - np.argmax(visible[::-1], axis=0)  # latest visible row per query
    return values[last, np.arange(values.shape[1])]
