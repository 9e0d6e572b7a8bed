"""What the pipelines return: one result class per task, each able to save and render itself.

Every result covers the processed frames of one video (``frame_indices`` into the input video,
their ``fps``) at the input's ``image_size`` (H, W), in pixels with (x, y) order. ``save(path)``
picks the format from the extension (``.npz``, ``.json``, ``.mp4``, or a directory of PNG frames)
and writes atomically; ``render()`` yields visualisation frames, re-decoding the input lazily.

Results behave like transformers' ``ModelOutput`` for reading: ``result["tracks"] is result.tracks``,
``result.keys()``, ``"tracks" in result``, ``dict(result)``; an unknown name raises ``KeyError``
naming the available ones. ``repr()`` summarises arrays as ``dtype[shape]``, e.g.
``DepthEstimationResult(depth=float32[16, 480, 640], model_depth=float32[16, 224, 224],
frame_indices=int64[16], fps=24.0, image_size=(480, 640))``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
import torch
from PIL import Image

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


def _summary(value: Any) -> str:
    """``float32[16, 224, 224]`` for an array or tensor, ``repr`` for anything else."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype.name}[{', '.join(map(str, value.shape))}]"
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')}[{', '.join(map(str, value.shape))}]"
    return repr(value)


@dataclass(repr=False)
class VideoTaskResult:
    """What every pipeline returns: predictions for the processed frames of one video.

    Fields are read as attributes or by name, as transformers' ``ModelOutput``:
    ``result["fps"] is result.fps``; :meth:`keys` lists the names (the task's outputs, then the
    common fields below), ``name in result`` tests one, and ``dict(result)`` copies them all.

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
    # (rounded to json_decimals), with json_notes (conventions) alongside. computed_fields are
    # properties readable by name (keys()) too; aliases are keys left out of repr().
    array_fields: ClassVar[tuple[str, ...]] = ()
    json_fields: ClassVar[tuple[str, ...]] = ()
    json_decimals: ClassVar[int] = 3
    json_notes: ClassVar[dict[str, str]] = {}
    computed_fields: ClassVar[tuple[str, ...]] = ()
    aliases: ClassVar[tuple[str, ...]] = ()
    _common_fields: ClassVar[tuple[str, ...]] = ("task", "frame_indices", "fps", "image_size")

    # -- read by name, as transformers' ModelOutput -------------------------------------------------

    def keys(self) -> tuple[str, ...]:
        """The names readable with ``result[name]``: the task's outputs first, then the common fields.

        Internal fields (the frame geometry, the input source) are not keys.
        """
        own = [f.name for f in fields(self) if f.repr and not f.name.startswith("_") and f.name not in self._common_fields]
        return (*self.computed_fields, *own, *self._common_fields)

    def __getitem__(self, name: str) -> Any:
        """``result[name]`` is ``getattr(result, name)`` for every name of :meth:`keys`.

        Raises:
            KeyError: ``name`` is not one of :meth:`keys` (the message lists them).
        """
        if isinstance(name, str) and name in self.keys():
            return getattr(self, name)
        hint = " (results are read by field name, not by position)" if isinstance(name, (int, slice)) else ""
        raise KeyError(f"{name!r} is not a field of {type(self).__name__}{hint}; available: {', '.join(self.keys())}")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def get(self, name: str, default: Any = None) -> Any:
        """``result[name]``, or ``default`` for a name that is not a field."""
        return self[name] if name in self else default

    def items(self) -> list[tuple[str, Any]]:
        """``(name, value)`` for every name of :meth:`keys` (computed fields are computed)."""
        return [(name, self[name]) for name in self.keys()]

    def values(self) -> list[Any]:
        """The values of :meth:`items`."""
        return [value for _, value in self.items()]

    def _repr_summary(self, name: str) -> str:
        """How ``repr`` shows a field; computed fields override it to avoid computing anything."""
        return _summary(getattr(self, name))

    def __repr__(self) -> str:
        shown = [name for name in self.keys() if name not in self.aliases and name != "task"]
        return f"{type(self).__name__}({', '.join(f'{name}={self._repr_summary(name)}' for name in shown)})"

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
            if value.dtype.kind == "f":
                # NaN (a frame a track does not cover: backward_tracking=False) is JSON's null;
                # strict JSON has no NaN token.
                rounded = np.round(value, self.json_decimals).astype(object)
                rounded[~np.isfinite(value)] = None
                values[name] = rounded.tolist()
            else:
                values[name] = value.tolist()
        return {**values, **self.json_notes}

    def render(self, frames: Iterator[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        raise ValueError(f"{self.task} results have no visualisation; save them as .npz")

    def save(self, path: str | os.PathLike, overwrite: bool = True, **render_options: Any) -> Path:
        """Write the result, by extension: ``.npz`` arrays, ``.json`` (tracks, boxes, poses; ``null``
        where a value is NaN), ``.mp4`` visualisation, or a directory path ending in ``/`` (or
        without suffix) for PNG frames.

        Files are written atomically: a failure leaves no partial file. ``overwrite`` replaces an
        existing file, or a directory of PNG frames only (see :func:`check_output_path`).
        ``render_options`` go to :meth:`render` (e.g. ``colorbar=True`` for depth videos).
        """
        path = check_output_path(path, overwrite)
        suffix = path.suffix.lower()
        if render_options and suffix in (".npz", ".json"):
            raise TypeError(f"{', '.join(sorted(render_options))}: options of the visualisation, not of a {suffix} file")
        if suffix == ".npz":
            return write_atomic(path, lambda handle: np.savez_compressed(handle, **self.arrays()))
        if suffix == ".json":
            text = json.dumps(self.to_json(), indent=1, allow_nan=False)
            return write_atomic(path, lambda handle: handle.write(text.encode()))
        if suffix == ".mp4":
            return write_video(path, self.render(**render_options), fps=self.fps)
        return write_png_frames(path, self.render(**render_options), overwrite=overwrite)


@dataclass(repr=False)
class DepthEstimationResult(VideoTaskResult):
    """Depth per processed frame.

    ``model_depth`` (T, h, w) is what the model predicted on its own grid; :attr:`depth` resamples
    it to the input's (T, H, W) on first access (bilinear, pixel centres; NaN outside a centre
    crop) and keeps it, and :meth:`iter_depth` does it frame by frame, keeping nothing, for videos
    too long to hold at full resolution.

    What ``transformers.pipeline("depth-estimation")`` users know, without breaking our names:
    transformers returns ``{"predicted_depth": tensor, "depth": PIL image}`` per image, but our
    ``depth`` has always been the metric array, so it stays one. :attr:`predicted_depth` is the
    same data as a torch tensor (T, H, W) sharing its memory (no copy), and ``result["predicted_depth"]``
    works; transformers' PIL ``depth`` image is :meth:`depth_image` (one frame) or
    :attr:`depth_images` (all frames). ``result["depth"] is result.depth``.
    """

    model_depth: np.ndarray | None = None
    geometry: FrameGeometry | None = field(default=None, repr=False)
    array_fields = ("depth",)
    computed_fields = ("depth", "predicted_depth")
    aliases = ("predicted_depth",)

    def iter_depth(self) -> Iterator[np.ndarray]:
        """Depth maps (H, W) float32 metres, one per processed frame (the kept :attr:`depth` if computed)."""
        if "depth" in self.__dict__:
            yield from self.__dict__["depth"]
            return
        for start in range(0, len(self.model_depth), 16):
            chunk = self.geometry.dense_to_input(torch.from_numpy(self.model_depth[start : start + 16]))
            yield from chunk.numpy()

    @cached_property
    def depth(self) -> np.ndarray:
        """(T, H, W) float32 depth in metres at the input resolution (computed once, then kept)."""
        return np.stack(list(self.iter_depth())) if len(self.model_depth) else np.zeros((0, *self.image_size), np.float32)

    @cached_property
    def predicted_depth(self) -> torch.Tensor:
        """(T, H, W) float32 tensor of :attr:`depth` (transformers' name), sharing its memory: no copy."""
        return torch.from_numpy(self.depth)

    def depth_image(self, t: int, mode: str = "L") -> Image.Image:
        """Frame ``t``'s depth as a PIL image, normalised as transformers' depth-estimation pipeline does.

        Per frame, ``(depth - min) / (max - min)`` times 255 truncated to ``uint8`` (``mode="L"``, what
        transformers gives), or times 65535 to ``uint16`` (``mode="I;16"``, finer steps). Our depth
        is in metres, so bright is far (relative-depth models such as DPT output disparity, where
        bright is near). NaN (outside a centre crop) is 0; a constant frame is all 0. For a
        visualisation with one colour scale over the video, use :meth:`render`.

        Args:
            t: position in the processed frames, 0 to T - 1 (not an index into the input video:
                that is ``frame_indices[t]``).
            mode: ``"L"`` (8-bit) or ``"I;16"`` (16-bit).

        Returns:
            A PIL image of the input's size (W x H).
        """
        if mode not in ("L", "I;16"):
            raise ValueError(f"depth_image mode must be 'L' (8-bit, as transformers) or 'I;16' (16-bit), got {mode!r}")
        count = len(self.model_depth)
        if not isinstance(t, (int, np.integer)) or not -count <= t < count:
            raise IndexError(f"frame position {t!r} is out of range for {count} processed frames (0 to {count - 1})")
        if "depth" in self.__dict__:
            depth = self.__dict__["depth"][t]
        else:
            depth = self.geometry.dense_to_input(torch.from_numpy(self.model_depth[t][None]))[0].numpy()
        finite = np.isfinite(depth)
        low, high = (depth[finite].min(), depth[finite].max()) if finite.any() else (0.0, 0.0)
        scaled = (depth - low) / (high - low) if high > low else np.zeros_like(depth)
        scaled = np.where(finite, scaled, 0.0)
        if mode == "L":
            return Image.fromarray((scaled * 255).astype(np.uint8))
        return Image.fromarray((scaled * 65535).astype(np.uint16))

    @property
    def depth_images(self) -> list[Image.Image]:
        """Every frame's :meth:`depth_image` (mode ``"L"``): transformers' PIL ``depth``, one per frame."""
        return [self.depth_image(t) for t in range(len(self.model_depth))]

    def _repr_summary(self, name: str) -> str:
        if name == "depth" and "depth" not in self.__dict__ and self.model_depth is not None:
            return f"{self.model_depth.dtype.name}[{len(self.model_depth)}, {self.image_size[0]}, {self.image_size[1]}]"
        return super()._repr_summary(name)

    def render(self, frames: Iterator[np.ndarray] | None = None, colorbar: bool = False) -> Iterator[np.ndarray]:
        """The input frame beside its coloured depth (near = warm), one colour scale for the video.

        Args:
            frames: the frames to draw on (default: the input's processed frames).
            colorbar: add a bar of the colour scale with ticks in metres on the right (the frames
                get wider by the bar's even width).
        """
        from .visualization import depth_range, render_depth_video

        near, far = depth_range(self.model_depth)
        source = frames if frames is not None else self.input_frames()
        return render_depth_video(source, self.iter_depth(), near, far, colorbar=colorbar)


@dataclass(repr=False)
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


@dataclass(repr=False)
class BoxTrackingResult(VideoTaskResult):
    """Box tracks: ``boxes`` (T, Q, 4) pixel (x1, y1, x2, y2); ``query_boxes`` (Q, 5) (t, x1, y1, x2, y2)."""

    boxes: np.ndarray | None = None
    query_boxes: np.ndarray | None = None
    array_fields = json_fields = ("query_boxes", "boxes")

    def render(self, frames: Iterator[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        from .visualization import render_boxes

        query_positions = np.searchsorted(self.frame_indices, self.query_boxes[:, 0].astype(np.int64))
        return render_boxes(frames if frames is not None else self.input_frames(), self.boxes, query_frames=query_positions)


@dataclass(repr=False)
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


@dataclass(repr=False)
class FeatureExtractionResult(VideoTaskResult):
    """Per-frame features.

    Attributes:
        features: 4DS: (T, h, w, D), the readout features (the block at ``readout_depth``, resized
            to one entry per frame, as the heads read them) on the model's patch grid of
            ``h = H_model / 16`` by ``w = W_model / 16``. MooG: (T, N, D), the N scene tokens after
            each frame (the recurrent state; tokens are not tied to positions). RVM: (T, h, w, D),
            the patch slots of the state after each frame (the cls slot dropped).
        layout: ``"(T, h, w, D)"`` or ``"(T, N, D)"``.
    """

    features: np.ndarray | None = None
    layout: str = ""
    array_fields = ("features", "layout")


@dataclass(repr=False)
class VideoReconstructionResult(VideoTaskResult):
    """Each processed frame as the model reconstructed it.

    MooG: its prediction of each frame from the state before it (frame 0 from the initial state);
    RVM: each frame from 5% of its patches (``mask``) and the frames before it (the original
    demo's masked reconstruction, slid along the video).

    ``model_frames`` (T, h, w, 3) float in [0, 1] at the model's size; :attr:`frames` resamples
    them to the input size as uint8 (NaN-free: outside a crop the input is shown black).
    ``mask`` (T, gh, gw) bool on the model's patch grid, True where a patch was hidden from the
    model; ``None`` for a model that sees every pixel. :meth:`iter_visibility` maps it to the
    input's pixels. ``save(".npz")`` writes ``frames`` and, when there is one, ``mask``.
    """

    model_frames: np.ndarray | None = None
    mask: np.ndarray | None = None
    geometry: FrameGeometry | None = field(default=None, repr=False)
    array_fields = ("frames",)
    computed_fields = ("frames",)

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = super().arrays()
        if self.mask is not None:
            arrays["mask"] = np.asarray(self.mask, dtype=bool)
        return arrays

    def iter_frames(self) -> Iterator[np.ndarray]:
        """(H, W, 3) uint8 predicted frames at the input resolution, one at a time (the kept :attr:`frames` if computed)."""
        if "frames" in self.__dict__:
            yield from self.__dict__["frames"]
            return
        for frame in self.model_frames:
            channels = self.geometry.dense_to_input(torch.from_numpy(frame).permute(2, 0, 1)).nan_to_num(0.0)
            yield (channels.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()

    def iter_visibility(self) -> Iterator[np.ndarray]:
        """(H, W) float32 in [0, 1] per processed frame: how much of each input pixel the model saw.

        1 inside a visible patch, 0 inside a masked one or outside the part the model sees (a
        crop), in between where a patch edge falls inside an input pixel (the patch mask resampled
        like the frames, bilinear at pixel centres).

        Raises:
            ValueError: the result has no mask (the model saw every pixel).
        """
        if self.mask is None:
            raise ValueError(f"this {self.task} result has no mask: the model saw every pixel of every frame")
        height, width = self.model_frames.shape[1:3]
        rows, cols = self.mask.shape[1:]
        # Patch of each model pixel (the patch grid covers the model frame exactly for RVM).
        row_of, col_of = np.arange(height) * rows // height, np.arange(width) * cols // width
        for mask in self.mask:
            seen = (~mask.astype(bool))[np.ix_(row_of, col_of)].astype(np.float32)
            yield self.geometry.dense_to_input(torch.from_numpy(seen)).nan_to_num(0.0).clamp(0, 1).numpy()

    @cached_property
    def frames(self) -> np.ndarray:
        """(T, H, W, 3) uint8 predicted frames at the input resolution (computed once, then kept)."""
        return np.stack(list(self.iter_frames()))

    def _repr_summary(self, name: str) -> str:
        if name == "frames" and "frames" not in self.__dict__ and self.model_frames is not None:
            return f"uint8[{len(self.model_frames)}, {self.image_size[0]}, {self.image_size[1]}, 3]"
        return super()._repr_summary(name)

    def render(self, frames: Iterator[np.ndarray] | None = None, paste_visible: bool = True) -> Iterator[np.ndarray]:
        """input | reconstruction per frame; with a mask, input | masked input | reconstruction.

        Args:
            frames: the input frames (default: the input's processed frames, decoded again).
            paste_visible: with a mask: the reconstruction panel shows the input where the model
                saw it and the prediction where it did not (the original demo's ``target * (1 -
                mask) + reconstructed * mask``); False: the raw prediction everywhere.
        """
        from .visualization import render_reconstruction

        source = frames if frames is not None else self.input_frames()
        visibility = None if self.mask is None else self.iter_visibility()
        return render_reconstruction(source, self.iter_frames(), visibility, paste_visible=paste_visible)


@dataclass(repr=False)
class VideoObjectSegmentationResult(VideoTaskResult):
    """Object masks propagated from the first processed frame (label propagation, rvm.md 6.3).

    Attributes:
        masks: (T, H, W) uint8 label maps at the input video's resolution, one per processed
            frame; frame 0 is propagated too (as the protocol does), it is not the input mask.
        labels: (L,) uint8, the label values of the first-frame mask (``np.unique``), background
            (0) included when present; the propagated maps hold only these values.
        palette: (256, 3) uint8 colour of each label value: the input PNG's palette, else the
            DAVIS (PASCAL VOC) palette.

    ``save``: a directory (no suffix) of palette PNGs ``frame_00000.png``, ... (position in the
    processed frames, as every PNG-frame output; ``frame_indices`` maps them to the video; the
    pixel values are the labels, DAVIS-style), ``.mp4`` the input with the masks overlaid, ``.npz``
    the arrays.
    """

    masks: np.ndarray | None = None
    labels: np.ndarray | None = None
    palette: np.ndarray | None = None
    array_fields = ("masks", "labels", "palette")

    def mask_image(self, t: int) -> Image.Image:
        """Frame ``t``'s label map as a palette ("P" mode) PIL image, as DAVIS annotations are stored.

        Args:
            t: position in the processed frames (0 to T - 1; ``frame_indices[t]`` is the video frame).
        """
        count = len(self.masks)
        if not isinstance(t, (int, np.integer)) or not -count <= t < count:
            raise IndexError(f"frame position {t!r} is out of range for {count} processed frames (0 to {count - 1})")
        image = Image.fromarray(np.ascontiguousarray(self.masks[t], dtype=np.uint8), mode="P")
        image.putpalette(np.asarray(self.palette, dtype=np.uint8).reshape(-1).tolist())
        return image

    def render(self, frames: Iterator[np.ndarray] | None = None, alpha: float = 0.5) -> Iterator[np.ndarray]:
        """The input frames with each object's mask blended in its palette colour (background untouched).

        Args:
            frames: the frames to draw on (default: the input's processed frames).
            alpha: opacity of the mask colours, in [0, 1].
        """
        from .visualization import render_segmentation

        return render_segmentation(frames if frames is not None else self.input_frames(), self.masks, self.palette, alpha=alpha)

    def save(self, path: str | os.PathLike, overwrite: bool = True, **render_options: Any) -> Path:
        """Write the result: a directory of palette PNGs (no suffix), ``.mp4`` (overlay) or ``.npz``.

        Written atomically (see :meth:`VideoTaskResult.save`); ``.json`` is refused (label maps
        are arrays).
        """
        target = check_output_path(path, overwrite)
        if target.suffix == "":
            if render_options:
                raise TypeError(f"{', '.join(sorted(render_options))}: options of the .mp4 overlay, not of the PNG label maps")
            return write_png_frames(target, iter(self.masks), overwrite=overwrite, palette=self.palette)
        return super().save(target, overwrite=overwrite, **render_options)


@dataclass(repr=False)
class KeypointTrackingResult(VideoTaskResult):
    """Keypoints propagated from the first processed frame (label propagation, rvm.md 6.4).

    Attributes:
        keypoints: (T, K, 2) float32 pixel (x, y) of each keypoint in each processed frame (the
            protocol's ``process_pose``: frame 0 is propagated too), -1 where not visible.
        visible: (T, K) bool: the keypoint's propagated heatmap is not all zero.
        query_keypoints: (K, 2) float32, the first-frame keypoints given.

    Coordinates follow the protocol's arithmetic (grid cell ``j`` is pixel ``j * W / w``, no
    half-pixel shift), the same for the input and the output keypoints.
    """

    keypoints: np.ndarray | None = None
    visible: np.ndarray | None = None
    query_keypoints: np.ndarray | None = None
    array_fields = json_fields = ("query_keypoints", "keypoints", "visible")
    json_notes = {"invisible": "keypoints are -1, -1 where visible is false (the protocol's process_pose)"}

    def render(self, frames: Iterator[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """The keypoints drawn on the frames (a filled dot per visible keypoint, a short trail)."""
        from .visualization import render_keypoints

        return render_keypoints(frames if frames is not None else self.input_frames(), self.keypoints, self.visible)
