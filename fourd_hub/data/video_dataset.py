"""Video clips for pretraining, sampled as in the 4DS paper, as a deterministic batch stream.

Each sample is a clip of ``num_frames`` frames at temporal stride ``frame_stride`` (16 at stride 2 in
the paper) from one video file: the frames are resized so that the shortest side is
``min_resize_factor`` (1.15) times the crop, then randomly cropped to ``crop_size`` and randomly
flipped horizontally. :class:`VideoClipDataset` is a :class:`~fourd_hub.data.stream.BatchStream`, so
its batches are deterministic per seed and rank, sharded across ranks and DataLoader workers, and
resumable from a batch index.

Example:
    >>> dataset = VideoClipDataset("videos/", batch_size=8, sampling=ClipSampling(), seed=0)  # doctest: +SKIP
    >>> loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=8)  # doctest: +SKIP
    >>> next(iter(loader))["pixel_values_videos"].shape  # doctest: +SKIP
    torch.Size([8, 16, 3, 224, 224])
"""

from __future__ import annotations

import glob
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import av
import numpy as np
import torch
import torch.nn.functional as F

from fourd_hub.data.stream import BatchStream
from fourd_hub.video_io import VideoError, open_video

__all__ = [
    "DEFAULT_VIDEO_EXTENSIONS",
    "ClipParams",
    "ClipSampling",
    "VideoClipDataset",
    "resized_size",
    "resolve_video_paths",
    "sample_clip_params",
    "transform_clip",
]

DEFAULT_VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
# Second entropy word of the epoch permutations' seed sequence. Without it, the permutation of epoch
# e would come from the same generator as sample e (``default_rng([seed, e])``), correlating them.
_PERMUTATION_STREAM = 0x5045524D  # "PERM"
# Errors meaning "this file cannot be used": the reader's own, raw FFmpeg ones, and I/O errors (a file
# deleted or unreadable after the list was made).
_DECODE_ERRORS = (VideoError, av.FFmpegError, OSError)

VideoPaths = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _round_half_up(value: float) -> int:
    # Not round(): banker's rounding would send 36.5 to 36 but 37.5 to 38.
    return int(math.floor(value + 0.5))


# --------------------------------------------------------------------------------------------------
# Sampling parameters
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipSampling:
    """How a clip is cut out of a video (defaults: the 4DS paper's pretraining).

    Attributes:
        num_frames: Frames per clip T.
        frame_stride: Step between consecutive clip frames in the video (2: every other frame).
        crop_size: ``(height, width)`` of the output frames (an int for a square crop).
        min_resize_factor: Frames are resized (aspect ratio kept) so that both sides are at least
            this factor times the crop's side along them: for a square crop, the shortest side becomes
            ``round(min_resize_factor * crop)``. Must be >= 1 so the crop fits.
        random_crop: Random clip start and crop position; ``False``: centred window in time and
            centre crop in space (evaluation).
        random_flip: Mirror the clip horizontally with probability 0.5.
    """

    num_frames: int = 16
    frame_stride: int = 2
    crop_size: tuple[int, int] = (224, 224)
    min_resize_factor: float = 1.15
    random_crop: bool = True
    random_flip: bool = True

    def __post_init__(self) -> None:
        for name in ("num_frames", "frame_stride"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"ClipSampling.{name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        crop = self.crop_size
        if _is_int(crop):
            crop = (crop, crop)
        if (
            not isinstance(crop, (tuple, list))
            or len(crop) != 2
            or not all(_is_int(side) and side >= 1 for side in crop)
        ):
            raise ValueError(
                f"ClipSampling.crop_size must be (height, width) positive integers (or one int for a square), "
                f"got {self.crop_size!r}"
            )
        object.__setattr__(self, "crop_size", (int(crop[0]), int(crop[1])))
        factor = self.min_resize_factor
        if isinstance(factor, (bool, np.bool_)) or not isinstance(factor, (int, float, np.integer, np.floating)):
            raise ValueError(f"ClipSampling.min_resize_factor must be a number >= 1, got {factor!r}")
        if not math.isfinite(factor) or factor < 1:
            raise ValueError(
                f"ClipSampling.min_resize_factor must be a finite number >= 1 (the resized frame must contain "
                f"the crop), got {factor!r}"
            )
        object.__setattr__(self, "min_resize_factor", float(factor))
        for name in ("random_crop", "random_flip"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"ClipSampling.{name} must be True or False, got {value!r}")
            object.__setattr__(self, name, bool(value))

    @property
    def frame_span(self) -> int:
        """Number of video frames a clip covers: ``(num_frames - 1) * frame_stride + 1``."""
        return (self.num_frames - 1) * self.frame_stride + 1


@dataclass(frozen=True)
class ClipParams:
    """The random choices for one clip (what :func:`sample_clip_params` draws).

    Attributes:
        frame_indices: ``num_frames`` video frame indices, non-decreasing (repeats only for videos
            shorter than the clip span, where they are clamped to the last frame).
        resized_size: ``(height, width)`` the frames are resized to before cropping.
        crop_top: Row of the crop's top edge in the resized frame.
        crop_left: Column of the crop's left edge in the resized frame.
        flip: Whether the cropped clip is mirrored horizontally.
    """

    frame_indices: tuple[int, ...]
    resized_size: tuple[int, int]
    crop_top: int
    crop_left: int
    flip: bool


def resized_size(height: int, width: int, sampling: ClipSampling) -> tuple[int, int]:
    """Size a ``height x width`` frame is resized to: aspect ratio kept, both sides >= factor * crop.

    The scale is ``max(factor * crop_h / height, factor * crop_w / width)``; the side that sets it
    becomes exactly ``round(factor * crop side)`` (half up), the other is rounded likewise, and neither
    is allowed below the crop.

    Args:
        height: Frame height H.
        width: Frame width W.
        sampling: The clip sampling (crop size and factor).

    Returns:
        ``(resized_height, resized_width)``.
    """
    crop_h, crop_w = sampling.crop_size
    factor = sampling.min_resize_factor
    if factor * crop_h * width >= factor * crop_w * height:  # the height sets the scale
        new_h = _round_half_up(factor * crop_h)
        new_w = _round_half_up(width * factor * crop_h / height)
    else:
        new_w = _round_half_up(factor * crop_w)
        new_h = _round_half_up(height * factor * crop_w / width)
    return max(new_h, crop_h), max(new_w, crop_w)


def sample_clip_params(
    rng: np.random.Generator, num_video_frames: int, height: int, width: int, sampling: ClipSampling
) -> ClipParams:
    """Draw the frames, crop and flip of one clip.

    Four draws are made, always in this order and whatever the options (so switching
    ``random_crop`` or ``random_flip`` off leaves the other choices unchanged): the start frame, uniform
    in ``[0, num_video_frames - span]``; the crop top and left, uniform integers over the valid
    positions; the flip, ``rng.random() < 0.5``. With ``random_crop=False`` the centred window and
    centre crop replace the first three; with ``random_flip=False`` there is no flip.

    A video shorter than the span (``(num_frames - 1) * frame_stride + 1`` frames) starts at frame 0
    and its indices are clamped to the last frame (the clip ends on repeated frames); the paper's
    pretraining videos are 30 s long, far longer than a clip.

    Args:
        rng: The sample's generator.
        num_video_frames: Frames in the video (>= 1).
        height: Video frame height H.
        width: Video frame width W.
        sampling: The clip sampling.

    Returns:
        The clip's :class:`ClipParams`.
    """
    if num_video_frames < 1 or height < 1 or width < 1:
        raise ValueError(
            f"a video needs at least one frame of at least 1x1 pixels, got {num_video_frames} frames of "
            f"{width}x{height}"
        )
    crop_h, crop_w = sampling.crop_size
    new_h, new_w = resized_size(height, width, sampling)
    max_start = max(num_video_frames - sampling.frame_span, 0)
    max_top, max_left = new_h - crop_h, new_w - crop_w
    start = int(rng.integers(0, max_start + 1))
    top = int(rng.integers(0, max_top + 1))
    left = int(rng.integers(0, max_left + 1))
    flip = bool(rng.random() < 0.5)
    if not sampling.random_crop:
        start, top, left = max_start // 2, max_top // 2, max_left // 2
    flip = flip and sampling.random_flip
    indices = np.minimum(start + sampling.frame_stride * np.arange(sampling.num_frames), num_video_frames - 1)
    return ClipParams(
        frame_indices=tuple(int(index) for index in indices),
        resized_size=(new_h, new_w),
        crop_top=top,
        crop_left=left,
        flip=flip,
    )


def transform_clip(frames: np.ndarray | torch.Tensor, params: ClipParams, crop_size: tuple[int, int]) -> torch.Tensor:
    """Resize, crop and flip decoded frames into the model's input layout.

    Frames are converted to float in ``[0, 1]``, resized with bilinear interpolation with antialiasing
    (``align_corners=False``), clamped to ``[0, 1]`` (antialiased bilinear can overshoot slightly),
    cropped, then flipped along the width if ``params.flip``.

    Args:
        frames: ``(T, H, W, 3)`` ``uint8`` RGB frames (the clip's frames, in order).
        params: The clip's parameters (``resized_size``, crop position, flip).
        crop_size: ``(crop_h, crop_w)``.

    Returns:
        ``(T, 3, crop_h, crop_w)`` ``float32`` in ``[0, 1]``.
    """
    video = torch.as_tensor(frames)
    if video.dtype != torch.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {tuple(video.shape)} {video.dtype}")
    crop_h, crop_w = crop_size
    top, left = params.crop_top, params.crop_left
    out = torch.empty((video.shape[0], 3, crop_h, crop_w), dtype=torch.float32)
    # One frame at a time: a float copy of a whole 1080p clip would cost ~400 MB per sample.
    for position, frame in enumerate(video):
        image = frame.permute(2, 0, 1)[None].float().div_(255.0)
        image = F.interpolate(image, size=params.resized_size, mode="bilinear", antialias=True, align_corners=False)
        out[position] = image[0, :, top : top + crop_h, left : left + crop_w].clamp_(0.0, 1.0)
    if params.flip:
        out = out.flip(-1)
    return out.contiguous()


# --------------------------------------------------------------------------------------------------
# Finding the videos
# --------------------------------------------------------------------------------------------------


def _normalise_extensions(extensions: Sequence[str]) -> tuple[str, ...]:
    if isinstance(extensions, str) or not all(isinstance(ext, str) and ext.strip(". ") for ext in extensions):
        raise ValueError(f"extensions must be a sequence of file suffixes like ('.mp4', '.mkv'), got {extensions!r}")
    return tuple("." + ext.lower().lstrip(".") for ext in extensions)


def _existing_file(path: str, what: str) -> str:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} {path} does not exist")
    if not os.path.isfile(path):
        raise ValueError(f"{what} {path} is not a file (pass a directory as `videos` itself to search it)")
    return os.path.abspath(path)


def _read_list_file(list_file: str) -> list[str]:
    base = os.path.dirname(os.path.abspath(list_file))
    paths = []
    with open(list_file, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            path = os.path.join(base, os.path.expanduser(entry))  # absolute entries stay absolute
            paths.append(_existing_file(path, f"video listed on line {number} of {list_file}:"))
    if not paths:
        raise ValueError(f"the list file {list_file} lists no videos (blank lines and # comments are ignored)")
    return paths


def resolve_video_paths(videos: VideoPaths, extensions: Sequence[str] = DEFAULT_VIDEO_EXTENSIONS) -> list[str]:
    """Resolve a description of a video collection to a sorted list of absolute file paths.

    Sorting makes the list, hence the samples, identical on every rank and every run.

    Args:
        videos: One of

            * a directory: searched recursively for files with one of ``extensions`` (case-insensitive;
              hidden files and directories, such as macOS ``._name.mp4`` resource forks, are skipped);
            * a glob pattern (contains ``*``, ``?`` or ``[`` and is not an existing path; ``**``
              matches subdirectories): the files it matches, whatever their extension;
            * a ``.txt`` file listing one video path per line (relative paths are relative to the
              list file; blank lines and lines starting with ``#`` are ignored);
            * a single video file;
            * a sequence of video file paths (duplicates are kept: they weight those videos).
        extensions: Video file suffixes for the directory search.

    Returns:
        Sorted absolute paths (strings).

    Raises:
        FileNotFoundError: ``videos`` or a listed file does not exist.
        ValueError: Nothing was found (the message names what was searched), or a listed path is a
            directory.
        TypeError: ``videos`` is of an unsupported type.
    """
    suffixes = _normalise_extensions(extensions)
    if isinstance(videos, (str, os.PathLike)):
        source = os.fspath(videos)
        if not isinstance(source, str):
            raise TypeError(f"videos must be a str path, got a bytes path {source!r}")
        if not os.path.exists(source) and any(char in source for char in "*?["):
            paths = sorted(os.path.abspath(path) for path in glob.glob(source, recursive=True) if os.path.isfile(path))
            if not paths:
                raise ValueError(f"the glob pattern {source!r} matches no files")
            return paths
        if os.path.isdir(source):
            paths = []
            for root, directories, files in os.walk(source):
                directories[:] = [name for name in directories if not name.startswith(".")]
                paths.extend(
                    os.path.abspath(os.path.join(root, name))
                    for name in files
                    if not name.startswith(".") and name.lower().endswith(suffixes)
                )
            if not paths:
                raise ValueError(
                    f"no video files with extensions {', '.join(suffixes)} found under the directory {source} "
                    f"(searched recursively); pass extensions=... for other suffixes"
                )
            return sorted(paths)
        if not os.path.exists(source):
            raise FileNotFoundError(f"videos={source!r} does not exist (expected a directory, a glob pattern, "
                                    f"a .txt list of paths or a video file)")
        if source.lower().endswith(".txt"):
            return sorted(_read_list_file(source))
        return [_existing_file(source, "video")]
    if isinstance(videos, Sequence) and not isinstance(videos, (bytes, bytearray)):
        paths = []
        for item in videos:
            if not isinstance(item, (str, os.PathLike)):
                raise TypeError(f"videos must contain paths (str or os.PathLike), got {type(item).__name__}")
            paths.append(_existing_file(os.fspath(item), "video"))
        if not paths:
            raise ValueError("videos is an empty sequence; pass at least one video path")
        return sorted(paths)
    raise TypeError(
        f"videos must be a directory, a glob pattern, a .txt list file, a video file or a sequence of paths, "
        f"got {type(videos).__name__}"
    )


# --------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------


class VideoClipDataset(BatchStream):
    """Random clips of a collection of video files, as a deterministic, sharded, resumable stream.

    Global sample ``g`` belongs to epoch ``g // num_videos`` and comes from the video
    ``epoch_permutation(epoch)[g % num_videos]``: every epoch visits each video exactly once (across all
    ranks together), in an order reshuffled every epoch. Its frames, crop and flip are drawn by
    :func:`sample_clip_params` from the sample's generator ``default_rng([seed, g])``, so the sample
    depends on ``(seed, g)`` only (see :class:`~fourd_hub.data.stream.BatchStream` for batches, ranks,
    workers and resuming).

    Only the clip's frames are decoded (seeking to the keyframe before the first one). A file that
    cannot be decoded is reported once per process with a ``RuntimeWarning`` and replaced by the next
    video of the epoch's permutation (deterministically: the same replacement whatever the process or
    worker); the file is retried whenever it is drawn again, so that a file failing only for some
    frames cannot make the content depend on which samples a process happened to read first.

    Samples (each stacked to ``(batch_size, ...)`` in a batch, plus ``"sample_index"``):

    * ``"pixel_values_videos"``: ``(T, 3, crop_h, crop_w)`` ``float32`` RGB in ``[0, 1]``;
    * ``"video_index"``: ``()`` ``int64`` index of the source video in :attr:`videos`.

    Args:
        videos: The video collection: a directory, glob pattern, ``.txt`` list file, single file or
            sequence of paths (see :func:`resolve_video_paths`).
        batch_size: Clips per batch (per rank).
        sampling: How clips are cut (default :class:`ClipSampling`: 16 frames at stride 2, 224x224
            crops of frames resized to 1.15x the crop, random crop and flip).
        seed: Non-negative seed of the stream.
        rank: This process's rank (default: ``torch.distributed``'s, else 0).
        world_size: Number of ranks (default: ``torch.distributed``'s, else 1).
        start_batch: First batch to yield (batches consumed when resuming).
        num_batches: Total batches of this rank's stream; ``None`` for infinite.
        extensions: Video suffixes for a directory search.

    Raises:
        FileNotFoundError: ``videos`` or a listed file does not exist.
        ValueError: No video found, or an invalid argument.
    """

    def __init__(
        self,
        videos: VideoPaths,
        batch_size: int = 1,
        sampling: ClipSampling | None = None,
        *,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        start_batch: int = 0,
        num_batches: int | None = None,
        extensions: Sequence[str] = DEFAULT_VIDEO_EXTENSIONS,
    ) -> None:
        super().__init__(
            batch_size, seed=seed, rank=rank, world_size=world_size, start_batch=start_batch, num_batches=num_batches
        )
        if sampling is None:
            sampling = ClipSampling()
        if not isinstance(sampling, ClipSampling):
            raise TypeError(f"sampling must be a ClipSampling, got {type(sampling).__name__}")
        self.sampling = sampling
        self.videos: tuple[str, ...] = tuple(resolve_video_paths(videos, extensions))
        self._permutation_cache: tuple[int, np.ndarray] | None = None
        self._warned: set[str] = set()

    @property
    def num_videos(self) -> int:
        """Number of video files in the collection."""
        return len(self.videos)

    def __repr__(self) -> str:
        return (
            f"VideoClipDataset(num_videos={self.num_videos}, batch_size={self.batch_size}, sampling={self.sampling}, "
            f"seed={self.seed}, rank={self.rank}, world_size={self.world_size}, start_batch={self.start_batch}, "
            f"num_batches={self.num_batches})"
        )

    def epoch_permutation(self, epoch: int) -> np.ndarray:
        """``(num_videos,)`` ``int64`` order in which epoch ``epoch`` visits the videos.

        Drawn from ``default_rng([seed, epoch, 0x5045524D])``: the extra word keeps it independent of
        sample ``epoch``'s generator ``default_rng([seed, epoch])``.
        """
        if not _is_int(epoch) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        return self._permutation(int(epoch)).copy()

    def _permutation(self, epoch: int) -> np.ndarray:
        # Consecutive samples share their epoch: keep the last permutation (O(num_videos) to redraw).
        if self._permutation_cache is None or self._permutation_cache[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch, _PERMUTATION_STREAM])
            self._permutation_cache = (epoch, rng.permutation(self.num_videos))
        return self._permutation_cache[1]  # shared: callers must not modify it

    def read_clip(self, path: str, rng: np.random.Generator) -> torch.Tensor:
        """Decode and transform one clip of ``path``, drawing its parameters from ``rng``.

        Returns:
            ``(T, 3, crop_h, crop_w)`` ``float32`` in ``[0, 1]``.

        Raises:
            VideoError, av.FFmpegError, OSError: The file cannot be decoded.
        """
        with open_video(path) as reader:
            params = sample_clip_params(rng, len(reader), reader.metadata.height, reader.metadata.width, self.sampling)
            # The reader wants strictly increasing indices; clamped short videos repeat the last frame.
            unique, inverse = np.unique(np.asarray(params.frame_indices), return_inverse=True)
            frames = reader.read(unique)[inverse.reshape(-1)]
        return transform_clip(frames, params, self.sampling.crop_size)

    def make_sample(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Clip of global sample ``index`` (see the class docstring)."""
        epoch, position = divmod(index, self.num_videos)
        permutation = self._permutation(epoch)
        for attempt in range(self.num_videos):
            video_index = int(permutation[(position + attempt) % self.num_videos])
            path = self.videos[video_index]
            try:
                clip = self.read_clip(path, rng)
            except _DECODE_ERRORS as error:
                self._warn_unreadable(path, error)
                continue
            return {"pixel_values_videos": clip, "video_index": torch.tensor(video_index, dtype=torch.int64)}
        raise VideoError(
            f"none of the {self.num_videos} videos could be decoded (each failure was warned about); check "
            f"the files, e.g. with fourd_hub.video_io.open_video(path)"
        )

    def _warn_unreadable(self, path: str, error: BaseException) -> None:
        if path in self._warned:
            return
        self._warned.add(path)
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        warnings.warn(
            f"skipping the video {path}: it cannot be decoded ({reason}); the next video of the epoch's "
            f"permutation is used instead. Remove or re-encode the file.",
            RuntimeWarning,
            stacklevel=3,
        )
