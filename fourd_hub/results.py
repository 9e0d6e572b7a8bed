"""What the pipelines return: one result class per task, each able to save and render itself.

Every result covers the processed frames of one video (``frame_indices`` into the input video,
their ``fps``) at the input's ``image_size`` (H, W), in pixels with (x, y) order. ``save(path)``
picks the format from the extension (``.npz``, ``.json``, ``.mp4``, or a directory of PNG frames)
and writes atomically; ``render()`` yields visualisation frames, re-decoding the input lazily.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
import torch

from ._files import write_atomic
from .processing import FrameGeometry
from .video_io import _check_png_directory, open_video, write_png_frames, write_video

_SUFFIXES = (".npz", ".json", ".mp4", "")


def check_output_path(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse, before anything is computed, an output that :meth:`VideoTaskResult.save` could not write.

    ``path`` is a file (``.npz``, ``.json``, ``.mp4``) or, without a suffix, a directory of PNG
    frames. Refused with the path in the message: a symbolic link (replacing it would delete the
    link, not write through it), a directory where a file goes or a file where a directory goes
    (even with ``overwrite``), an existing output without ``overwrite``, and a directory holding
    anything but PNG frames.

    Args:
        path: the output path.
        overwrite: whether an existing output of the same kind may be replaced.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: an unknown suffix, or a PNG-frame directory that cannot be replaced
            (:class:`~fourd_hub.video_io.VideoError`).
        FileExistsError: an existing output without ``overwrite``, or a symbolic link.
        IsADirectoryError: a directory where a file is to be written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValueError(f"cannot save to {path.name}: use .npz (arrays), .json, .mp4 (visualisation) or a directory (PNG frames)")
    if path.is_symlink():
        raise FileExistsError(
            f"refusing to write to {path}: it is a symbolic link (to {os.readlink(path)}); replacing it would delete "
            "the link, not write into its target; pass the real path"
        )
    if suffix == "":
        _check_png_directory(path, "frame_", overwrite)
        return path
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is an existing directory; choose a file name")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    return path


@dataclass
class VideoTaskResult:
    """What every pipeline returns: predictions for the processed frames of one video.

    Attributes:
        task: the pipeline task.
        frame_indices: (T,) indices of the processed frames in the input video.
        fps: frame rate of the processed frames (the video's, divided by the stride).
        image_size: (H, W) of the input video; every coordinate refers to it.
    """

    task: str
    frame_indices: np.ndarray
    fps: float
    image_size: tuple[int, int]
    _source: Any = field(default=None, repr=False)

    def input_frames(self) -> Iterator[np.ndarray]:
        """The processed input frames again, uint8 (H, W, 3), decoded lazily (for rendering)."""
        if self._source is None:
            raise ValueError("this result does not know its input video; pass frames to render() yourself")
        with open_video(self._source) as reader:
            for _, frame in reader.iter_frames(self.frame_indices):
                yield frame

    # Subclasses name their fields: every array field goes to .npz; json_fields also to .json
    # (rounded to json_decimals), with json_notes (conventions) alongside.
    array_fields: ClassVar[tuple[str, ...]] = ()
    json_fields: ClassVar[tuple[str, ...]] = ()
    json_decimals: ClassVar[int] = 3
    json_notes: ClassVar[dict[str, str]] = {}

    def arrays(self) -> dict[str, np.ndarray]:
        """The result as named numpy arrays (what ``save('.npz')`` writes)."""
        common = {"frame_indices": self.frame_indices, "fps": np.float64(self.fps), "image_size": np.array(self.image_size)}
        return {**common, **{name: np.asarray(getattr(self, name)) for name in self.array_fields}}

    def to_json(self) -> dict[str, Any]:
        """The result as JSON-ready values (what ``save('.json')`` writes)."""
        if not self.json_fields:
            raise ValueError(f"{self.task} results are arrays: save them as .npz (or render an .mp4)")
        values = {
            "task": self.task,
            "frame_indices": self.frame_indices.tolist(),
            "fps": self.fps,
            "image_size": {"height": self.image_size[0], "width": self.image_size[1]},
            "coordinates": "pixels; (0, 0) is the top-left corner of the top-left pixel; (x, y) order",
        }
        for name in self.json_fields:
            value = np.asarray(getattr(self, name))
            values[name] = (np.round(value, self.json_decimals) if value.dtype.kind == "f" else value).tolist()
        return {**values, **self.json_notes}

    def render(self, frames: Iterator[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        raise ValueError(f"{self.task} results have no visualisation; save them as .npz")

    def save(self, path: str | os.PathLike, overwrite: bool = True) -> Path:
        """Write the result, by extension: ``.npz`` arrays, ``.json`` (tracks, boxes, poses), ``.mp4``
        visualisation, or a directory path ending in ``/`` (or without suffix) for PNG frames.

        Files are written atomically: a failure leaves no partial file. ``overwrite`` replaces an
        existing file, or a directory of PNG frames only (see :func:`check_output_path`).
        """
        path = check_output_path(path, overwrite)
        suffix = path.suffix.lower()
        if suffix == ".npz":
            return write_atomic(path, lambda handle: np.savez_compressed(handle, **self.arrays()))
        if suffix == ".json":
            text = json.dumps(self.to_json(), indent=1)
            return write_atomic(path, lambda handle: handle.write(text.encode()))
        if suffix == ".mp4":
            return write_video(path, self.render(), fps=self.fps)
        return write_png_frames(path, self.render(), overwrite=overwrite)


@dataclass
class DepthEstimationResult(VideoTaskResult):
    """Depth per processed frame.

    ``model_depth`` (T, h, w) is what the model predicted on its own grid; :attr:`depth` resamples
    it to the input's (T, H, W) on access (bilinear, pixel centres; NaN outside a centre crop), and
    :meth:`iter_depth` does it frame by frame for videos too long to hold at full resolution.
    """

    model_depth: np.ndarray | None = None
    geometry: FrameGeometry | None = field(default=None, repr=False)
    array_fields = ("depth",)

    def iter_depth(self) -> Iterator[np.ndarray]:
        """Depth maps (H, W) float32 metres, one per processed frame."""
        for start in range(0, len(self.model_depth), 16):
            chunk = self.geometry.dense_to_input(torch.from_numpy(self.model_depth[start : start + 16]))
            yield from chunk.numpy()

    @property
    def depth(self) -> np.ndarray:
        """(T, H, W) float32 depth in metres at the input resolution."""
        return np.stack(list(self.iter_depth())) if len(self.model_depth) else np.zeros((0, *self.image_size), np.float32)

    def render(self, frames: Iterator[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """The input frame beside its coloured depth (near = warm), one colour scale for the video."""
        from .visualization import depth_range, render_depth_video

        near, far = depth_range(self.model_depth)
        return render_depth_video(frames if frames is not None else self.input_frames(), self.iter_depth(), near, far)


@dataclass
class PointTrackingResult(VideoTaskResult):
    """Point tracks.

    Attributes:
        tracks: (T, Q, 2) pixel (x, y) of each query in each processed frame.
        visible: (T, Q) bool.
        query_points: (Q, 3) the queries as (t, x, y), t an index into the input video.
    """

    tracks: np.ndarray | None = None
    visible: np.ndarray | None = None
    query_points: np.ndarray | None = None
    array_fields = json_fields = ("query_points", "tracks", "visible")

    def render(self, frames: Iterator[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """Tracks drawn as fading trails (filled: visible; hollow: occluded)."""
        from .visualization import render_tracks

        query_positions = np.searchsorted(self.frame_indices, self.query_points[:, 0].astype(np.int64))
        return render_tracks(
            frames if frames is not None else self.input_frames(), self.tracks, self.visible, query_frames=query_positions
        )


@dataclass
class BoxTrackingResult(VideoTaskResult):
    """Box tracks: ``boxes`` (T, Q, 4) pixel (x1, y1, x2, y2); ``query_boxes`` (Q, 5) (t, x1, y1, x2, y2)."""

    boxes: np.ndarray | None = None
    query_boxes: np.ndarray | None = None
    array_fields = json_fields = ("query_boxes", "boxes")

    def render(self, frames: Iterator[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        from .visualization import render_boxes

        query_positions = np.searchsorted(self.frame_indices, self.query_boxes[:, 0].astype(np.int64))
        return render_boxes(frames if frames is not None else self.input_frames(), self.boxes, query_frames=query_positions)


@dataclass
class CameraPoseResult(VideoTaskResult):
    """Camera poses at key frames, chained window by window.

    Attributes:
        poses: (K, 4, 4) camera-to-reference transforms of the key frames, the reference being the
            first processed frame's camera (``poses[0]`` is the identity).
        pose_frames: (K,) indices into the input video of the key frames (each window's first and
            last frame).
        relative_poses: (K - 1, 4, 4) each window's prediction: its last frame's camera relative
            to its first's; ``poses[k + 1] = poses[k] @ relative_poses[k]``.
    """

    poses: np.ndarray | None = None
    pose_frames: np.ndarray | None = None
    relative_poses: np.ndarray | None = None
    array_fields = json_fields = ("pose_frames", "poses", "relative_poses")
    json_decimals = 6
    json_notes = {
        "convention": "4x4 camera-to-reference, reference = first processed frame; poses[k+1] = poses[k] @ relative_poses[k]"
    }

    def render(self, frames: Iterator[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        from .visualization import render_pose_video

        positions = np.searchsorted(self.frame_indices, self.pose_frames)
        return render_pose_video(frames if frames is not None else self.input_frames(), self.poses, positions)


@dataclass
class FeatureExtractionResult(VideoTaskResult):
    """Per-frame features.

    Attributes:
        features: 4DS: (T, h, w, D), the readout features (the block at ``readout_depth``, resized
            to one entry per frame, as the heads read them) on the model's patch grid of
            ``h = H_model / 16`` by ``w = W_model / 16``. MooG: (T, N, D), the N scene tokens after
            each frame (the recurrent state; tokens are not tied to positions).
        layout: ``"(T, h, w, D)"`` or ``"(T, N, D)"``.
    """

    features: np.ndarray | None = None
    layout: str = ""
    array_fields = ("features", "layout")


@dataclass
class VideoReconstructionResult(VideoTaskResult):
    """MooG's prediction of each frame from the state before it (frame 0 from the initial state).

    ``model_frames`` (T, h, w, 3) float in [0, 1] at the model's size; :attr:`frames` resamples
    them to the input size as uint8 (NaN-free: outside a crop the input is shown black).
    """

    model_frames: np.ndarray | None = None
    geometry: FrameGeometry | None = field(default=None, repr=False)
    array_fields = ("frames",)

    def iter_frames(self) -> Iterator[np.ndarray]:
        for frame in self.model_frames:
            channels = self.geometry.dense_to_input(torch.from_numpy(frame).permute(2, 0, 1)).nan_to_num(0.0)
            yield (channels.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()

    @property
    def frames(self) -> np.ndarray:
        """(T, H, W, 3) uint8 predicted frames at the input resolution."""
        return np.stack(list(self.iter_frames()))

    def render(self, frames: Iterator[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        from .visualization import side_by_side

        source = frames if frames is not None else self.input_frames()
        return (side_by_side(original, predicted) for original, predicted in zip(source, self.iter_frames()))
