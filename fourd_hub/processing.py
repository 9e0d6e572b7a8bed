"""Video processors: frames of any size in, the model's ``pixel_values_videos`` out, and back.

One processor class per family (:class:`FourDSVideoProcessor`, :class:`MooGVideoProcessor`) with
the same code: only their defaults differ (4DS: 16 frames at 224x224; MooG: 16 frames at 128x128,
the released heads' clip). A processor is saved beside the model as
``video_preprocessor_config.json`` (transformers' name for it), so a checkpoint carries its own
preprocessing; :func:`load_video_processor` reads it back (or derives it from the model config).

What a processor does, per frame: resize to the model's (height, width) by ``resize_mode``
(``"resize"``: stretch, as the original demo notebook does with ``mediapy.resize_video``;
``"crop"``: shortest side to size then centre crop; ``"pad"``: longest side to size then centre
pad), antialiased bilinear (or PIL Lanczos, ``resample="lanczos"``), then scale uint8 to [0, 1] (no mean/std: 4DS and MooG take raw RGB).
Per clip: ``num_frames`` frames taken every ``temporal_stride`` frames.

The same geometry maps predictions back: :class:`FrameGeometry` converts pixel (x, y) of the
input video to the model's normalised [0, 1] coordinates and back (continuous pixel coordinates,
(0, 0) the top-left corner of the top-left pixel, so pixel centres are at +0.5), and resamples
dense maps (depth) from the model's grid to the input's. transformers' own ``BaseVideoProcessor``
needs torchvision, which this project does without; these classes follow its conventions (the
``VideoProcessorMixin`` save/load machinery, ``BatchFeature`` outputs) on plain torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import BatchFeature
from transformers.utils import VIDEO_PROCESSOR_NAME
from transformers.video_processing_utils import VideoProcessorMixin

from .registry import families, family_of

RESIZE_MODES = ("resize", "crop", "pad")
RESAMPLE_MODES = ("bilinear", "bicubic", "lanczos")


@dataclass(frozen=True)
class FrameGeometry:
    """How one input frame size maps onto the model's frame (per axis: scale, then offset).

    A model pixel coordinate is ``u = x * scale_x - offset_x`` (``v`` likewise for y) for an input
    pixel coordinate ``x``: "resize" has offset 0 and scale model/input per axis; "crop" one scale
    and a positive offset (the crop's corner); "pad" one scale and a negative offset (the padding).

    Attributes:
        input_size: (H, W) of the input video.
        model_size: (h, w) of the model's frames.
        resized_size: (H', W') the frame is resized to before cropping or padding.
        offset: (offset_y, offset_x) in resized pixels (positive: cropped; negative: padded).
    """

    input_size: tuple[int, int]
    model_size: tuple[int, int]
    resized_size: tuple[int, int]
    offset: tuple[int, int]

    @classmethod
    def create(cls, input_size: Sequence[int], model_size: Sequence[int], mode: str) -> "FrameGeometry":
        height, width = (int(v) for v in input_size)
        model_h, model_w = (int(v) for v in model_size)
        if height < 1 or width < 1:
            raise ValueError(f"frame size must be positive, got {height}x{width}")
        if mode == "resize":
            resized = (model_h, model_w)
        elif mode in ("crop", "pad"):
            pick = max if mode == "crop" else min
            scale = pick(model_h / height, model_w / width)
            # max(model, ...) for crop keeps the crop inside the resized frame despite rounding.
            resized = (max(1, round(height * scale)), max(1, round(width * scale)))
            if mode == "crop":
                resized = (max(resized[0], model_h), max(resized[1], model_w))
            else:
                resized = (min(resized[0], model_h), min(resized[1], model_w))
        else:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {mode!r}")
        # Centred; an odd leftover goes to the bottom/right (crop and pad alike).
        offset = tuple(
            (size - model) // 2 if size >= model else -((model - size) // 2)
            for size, model in zip(resized, (model_h, model_w))
        )
        return cls((height, width), (model_h, model_w), resized, offset)

    @property
    def scale(self) -> tuple[float, float]:
        """(scale_y, scale_x): resized pixels per input pixel."""
        return self.resized_size[0] / self.input_size[0], self.resized_size[1] / self.input_size[1]

    def to_normalized(self, xy: np.ndarray | torch.Tensor) -> np.ndarray:
        """Input pixel (x, y) (last axis 2, or 4 for boxes) -> model-normalised [0, 1] (x, y), float64."""
        xy = _as_float64(xy)
        scale_y, scale_x = self.scale
        scale = np.array([scale_x, scale_y] * (xy.shape[-1] // 2))
        offset = np.array([self.offset[1], self.offset[0]] * (xy.shape[-1] // 2), dtype=np.float64)
        size = np.array([self.model_size[1], self.model_size[0]] * (xy.shape[-1] // 2), dtype=np.float64)
        return (xy * scale - offset) / size

    def to_input(self, normalized: np.ndarray | torch.Tensor) -> np.ndarray:
        """Model-normalised (x, y) (last axis 2 or 4) -> input pixel (x, y), float64 (inverse of :meth:`to_normalized`)."""
        normalized = _as_float64(normalized)
        scale_y, scale_x = self.scale
        scale = np.array([scale_x, scale_y] * (normalized.shape[-1] // 2))
        offset = np.array([self.offset[1], self.offset[0]] * (normalized.shape[-1] // 2), dtype=np.float64)
        size = np.array([self.model_size[1], self.model_size[0]] * (normalized.shape[-1] // 2), dtype=np.float64)
        return (normalized * size + offset) / scale

    def visible_region(self) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2) of the input frame that the model sees (all of it unless cropped)."""
        corners = self.to_input(np.array([0.0, 0.0, 1.0, 1.0]))
        height, width = self.input_size
        return (max(0.0, corners[0]), max(0.0, corners[1]), min(float(width), corners[2]), min(float(height), corners[3]))

    def _axis_matrix(self, axis: int) -> torch.Tensor:
        """(input_len, model_len) bilinear weights: model samples -> input pixel centres (NaN rows outside)."""
        input_len, model_len = self.input_size[axis], self.model_size[axis]
        scale, offset = self.scale[axis], self.offset[axis]
        centres = (np.arange(input_len, dtype=np.float64) + 0.5) * scale - offset  # model pixel coords
        position = centres - 0.5  # in model sample indices
        weights = np.zeros((input_len, model_len), dtype=np.float64)
        inside = (centres >= 0) & (centres <= model_len)
        clamped = np.clip(position, 0, model_len - 1)
        low = np.floor(clamped).astype(np.int64)
        high = np.minimum(low + 1, model_len - 1)
        frac = clamped - low
        rows = np.arange(input_len)
        np.add.at(weights, (rows, low), 1 - frac)
        np.add.at(weights, (rows, high), frac)
        weights[~inside] = np.nan
        return torch.from_numpy(weights)

    def dense_to_input(self, maps: torch.Tensor) -> torch.Tensor:
        """Resample dense per-frame maps from the model grid to the input frame (bilinear, pixel centres).

        Args:
            maps: (..., h, w) at the model's size.

        Returns:
            (..., H, W) float32; NaN where the model saw nothing (outside a centre crop). Separable:
            two small matrix products, so a 4K output needs no (H, W, 2) sampling grid.
        """
        if tuple(maps.shape[-2:]) != self.model_size:
            raise ValueError(f"maps must end with the model size {self.model_size}, got {tuple(maps.shape)}")
        rows = self._axis_matrix(0).to(maps.device)
        cols = self._axis_matrix(1).to(maps.device)
        values = maps.to(torch.float64)
        out = torch.matmul(torch.matmul(rows.nan_to_num(0.0), values), cols.nan_to_num(0.0).transpose(0, 1))
        outside = rows.isnan().any(dim=1)[:, None] | cols.isnan().any(dim=1)[None, :]
        return out.masked_fill(outside, float("nan")).to(torch.float32)

    def frames_to_model(self, frames: torch.Tensor, resample: str = "bilinear", pad_value: float = 0.0) -> torch.Tensor:
        """uint8 frames (n, H, W, 3) -> float (n, 3, h, w) in [0, 1] at the model's size."""
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (n, H, W, 3), got {tuple(frames.shape)}")
        if tuple(frames.shape[1:3]) != self.input_size:
            raise ValueError(f"frames are {tuple(frames.shape[1:3])}, this geometry is for {self.input_size}")
        if resample not in RESAMPLE_MODES:
            raise ValueError(f"resample must be one of {RESAMPLE_MODES}, got {resample!r}")
        if resample == "lanczos":
            frames = lanczos_resize(frames, self.resized_size).to(frames.device)
        channels_first = frames.permute(0, 3, 1, 2)
        if resample != "lanczos" and self.resized_size != self.input_size:
            # uint8 antialiased resize has a fast CPU kernel; float keeps the path general elsewhere.
            source = channels_first if channels_first.device.type == "cpu" and frames.dtype == torch.uint8 else channels_first.float()
            resized = F.interpolate(
                source.contiguous(memory_format=torch.channels_last), size=self.resized_size,
                mode=resample, antialias=True, align_corners=False,
            )
        else:
            resized = channels_first
        resized = resized.float() / 255.0 if resized.dtype == torch.uint8 else (resized / 255.0).clamp_(0.0, 1.0)
        top, left = self.offset
        if top >= 0 and left >= 0:
            out = resized[:, :, top : top + self.model_size[0], left : left + self.model_size[1]]
        else:
            # Padding (negative offsets): place the frame in the middle of a pad_value canvas.
            out = resized.new_full((resized.shape[0], 3, *self.model_size), float(pad_value))
            out[:, :, -top : -top + resized.shape[2], -left : -left + resized.shape[3]] = resized
        return out.contiguous()


def lanczos_resize(frames: np.ndarray | torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """uint8 frames (n, H, W, 3) -> uint8 (n, h, w, 3), each resized by PIL's Lanczos filter.

    Exactly ``mediapy.resize_video`` on uint8 frames (``PIL.Image.resize(..., Image.LANCZOS)`` per
    frame, aspect ratio not kept), the resize of the RVM evaluation protocol (rvm.md 6.1); a
    frame already of the size is returned as is (PIL would too).

    Args:
        frames: (n, H, W, 3) uint8 RGB frames (numpy or a CPU / GPU tensor).
        size: (height, width) of the output.

    Returns:
        (n, height, width, 3) uint8 CPU tensor.

    Raises:
        TypeError / ValueError: frames that are not uint8 (n, H, W, 3), a size that is not two positive integers.
    """
    from PIL import Image

    array = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise TypeError(f"lanczos_resize takes uint8 RGB frames (n, H, W, 3), got {array.dtype} {array.shape}")
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive (height, width), got {tuple(size)}")
    if array.shape[1:3] == (height, width):
        return torch.from_numpy(np.ascontiguousarray(array))
    out = np.empty((len(array), height, width, 3), dtype=np.uint8)
    for index, frame in enumerate(array):
        out[index] = np.asarray(Image.fromarray(frame).resize((width, height), resample=Image.Resampling.LANCZOS))
    return torch.from_numpy(out)


def _as_float64(values: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    values = np.asarray(values, dtype=np.float64)
    if values.shape[-1] not in (2, 4):
        raise ValueError(f"coordinates must end with 2 (x, y) or 4 (x1, y1, x2, y2), got shape {values.shape}")
    return values


class FourDVideoProcessor(VideoProcessorMixin):
    """Resize, crop or pad, [0, 1] scaling, and clip sampling for one model family.

    Args:
        size: the model's frame size, ``{"height": h, "width": w}``.
        num_frames: frames per model clip (window).
        temporal_stride: take every k-th frame of the video for a clip.
        resize_mode: ``"resize"`` (stretch to size; the original demos), ``"crop"`` (shortest side to
            size, centre crop) or ``"pad"`` (longest side to size, centre pad with ``pad_value``).
        resample: ``"bilinear"`` or ``"bicubic"`` (antialiased, torch), or ``"lanczos"`` (PIL's
            Lanczos on the uint8 frames, as ``mediapy.resize_video``: the RVM evaluation protocol).
        pad_value: fill of the padding in [0, 1].
        model_family: the ``model_type`` of the family it belongs to (for messages).
    """

    model_input_names = ["pixel_values_videos"]
    default_size = {"height": 224, "width": 224}
    default_num_frames = 16
    default_family = ""

    def __init__(
        self,
        size: dict[str, int] | Sequence[int] | None = None,
        num_frames: int | None = None,
        temporal_stride: int = 1,
        resize_mode: str = "resize",
        resample: str = "bilinear",
        pad_value: float = 0.0,
        model_family: str | None = None,
        **kwargs,
    ):
        # transformers' loaders pass bookkeeping keys; anything else is a typo worth an error.
        for key in ("video_processor_type", "processor_class", "_processor_class", "image_processor_type"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(
                f"unknown video processor settings {sorted(kwargs)}; expected size, num_frames, temporal_stride, "
                "resize_mode, resample, pad_value"
            )
        super().__init__()
        size = dict(self.default_size) if size is None else size
        if not isinstance(size, dict):
            size = dict(zip(("height", "width"), size))
        if set(size) != {"height", "width"} or any(int(v) != v or v < 1 for v in size.values()):
            raise ValueError(f"size must be {{'height': h, 'width': w}} with positive integers, got {size}")
        num_frames = self.default_num_frames if num_frames is None else num_frames
        if int(num_frames) != num_frames or num_frames < 1:
            raise ValueError(f"num_frames must be a positive integer, got {num_frames}")
        if int(temporal_stride) != temporal_stride or temporal_stride < 1:
            raise ValueError(f"temporal_stride must be a positive integer, got {temporal_stride}")
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}")
        if resample not in RESAMPLE_MODES:
            raise ValueError(f"resample must be one of {RESAMPLE_MODES}, got {resample!r}")
        if not 0.0 <= float(pad_value) <= 1.0:
            raise ValueError(f"pad_value must be in [0, 1], got {pad_value}")
        self.size = {"height": int(size["height"]), "width": int(size["width"])}
        self.num_frames = int(num_frames)
        self.temporal_stride = int(temporal_stride)
        self.resize_mode = resize_mode
        self.resample = resample
        self.pad_value = float(pad_value)
        self.model_family = model_family or self.default_family

    @property
    def model_size(self) -> tuple[int, int]:
        return self.size["height"], self.size["width"]

    def geometry(self, input_size: Sequence[int]) -> FrameGeometry:
        """The mapping between frames of ``input_size`` (H, W) and the model's frames."""
        return FrameGeometry.create(input_size, self.model_size, self.resize_mode)

    def preprocess_frames(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 RGB frames (n, H, W, 3) -> float (n, 3, h, w) in [0, 1]: no temporal sampling."""
        if isinstance(frames, np.ndarray):
            frames = torch.from_numpy(np.ascontiguousarray(frames))
        if not isinstance(frames, torch.Tensor) or frames.dtype != torch.uint8:
            raise TypeError(
                "preprocess_frames takes uint8 RGB frames (n, H, W, 3); read videos with fourd_hub.video_io.open_video "
                f"or call the processor on the video; got {type(frames).__name__} {getattr(frames, 'dtype', '')}"
            )
        if frames.device.type == "meta":
            # Resizing a meta tensor "works" and returns another meta tensor: refuse it here, not later.
            raise ValueError(
                f"the frames are on the 'meta' device (shape {tuple(frames.shape)}): they hold no data; "
                "pass frames on the CPU or a GPU"
            )
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
            raise ValueError(f"frames must be (n >= 1, H, W, 3), got {tuple(frames.shape)}")
        return self.geometry(frames.shape[1:3]).frames_to_model(frames, self.resample, self.pad_value)

    def clip_indices(self, num_available: int, start: int = 0) -> np.ndarray:
        """Indices of one clip: ``num_frames`` frames every ``temporal_stride`` from ``start``.

        Past the end the last frame repeats (a clip always has ``num_frames`` frames; a model tied
        to its frame count needs that), so check how many are real with ``num_available``.
        """
        if num_available < 1:
            raise ValueError("a clip needs at least one frame")
        indices = start + self.temporal_stride * np.arange(self.num_frames)
        return np.minimum(indices, num_available - 1)

    def __call__(self, videos, **kwargs) -> BatchFeature:
        return self.preprocess(videos, **kwargs)

    def preprocess(self, videos, return_tensors: str | None = "pt", start: int = 0, **kwargs) -> BatchFeature:
        """One model clip per video: ``pixel_values_videos`` (B, num_frames, 3, h, w) in [0, 1].

        Args:
            videos: one video or a list of videos, each anything :func:`fourd_hub.video_io.open_video`
                reads (a path, bytes, a (T, H, W, 3) array or tensor, a list of PIL images).
            return_tensors: ``"pt"`` (default) or ``"np"``.
            start: first frame of the clip.

        Returns:
            ``BatchFeature`` with ``pixel_values_videos`` and ``num_valid_frames`` (B,): clips of
            shorter videos end with the last frame repeated.
        """
        from .video_io import open_video

        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}; frame selection for long videos is the pipeline's job")
        if return_tensors not in ("pt", "np", None):
            raise ValueError(f"return_tensors must be 'pt' or 'np', got {return_tensors!r}")
        single = not isinstance(videos, (list, tuple)) or (len(videos) > 0 and is_pil_image(videos[0]))
        videos = [videos] if single else list(videos)
        if not videos:
            raise ValueError("no videos given")
        clips, valid = [], []
        for video in videos:
            with open_video(video) as reader:
                if start < 0 or start >= len(reader):
                    raise ValueError(f"start={start} is outside the video's {len(reader)} frames")
                indices = self.clip_indices(len(reader), start)
                unique = np.unique(indices)
                frames = np.stack([frame for _, frame in reader.iter_frames(unique)])
                clip = self.preprocess_frames(frames)[np.searchsorted(unique, indices)]
            clips.append(clip)
            valid.append(int(np.sum(start + self.temporal_stride * np.arange(self.num_frames) < len(reader))))
        sizes = {tuple(c.shape) for c in clips}
        if len(sizes) != 1:
            raise ValueError(f"the clips have different shapes {sorted(sizes)}")
        pixel_values = torch.stack(clips)
        data = {"pixel_values_videos": pixel_values, "num_valid_frames": torch.tensor(valid)}
        if return_tensors == "np":
            data = {k: v.numpy() for k, v in data.items()}
        return BatchFeature(data=data)

    def to_dict(self) -> dict[str, Any]:
        keys = ("size", "num_frames", "temporal_stride", "resize_mode", "resample", "pad_value", "model_family")
        values = {key: getattr(self, key) for key in keys}
        values["video_processor_type"] = type(self).__name__
        return values


def is_pil_image(value: Any) -> bool:
    """Whether ``value`` is one PIL image (a list of them is one video, not a list of videos)."""
    from PIL import Image

    return isinstance(value, Image.Image)


def video_processor_classes() -> dict[str, type[FourDVideoProcessor]]:
    """Every family's video processor class by name (the ``video_processor_type`` of saved configs)."""
    classes = [spec.load("processor_class") for spec in families()]
    return {cls.__name__: cls for cls in classes}


def video_processor_for_config(config, **overrides) -> FourDVideoProcessor:
    """The default processor of a model config: its frame size and the clip length of its head.

    The family's processor class (registry), at ``config.image_size`` (4DS: its learned position
    embedding and heads are tied to it; MooG runs on any size and its catalog models use 128x128)
    and ``config.num_frames`` (the clip its head reads).
    """
    try:
        cls = family_of(config).load("processor_class")
    except KeyError as err:
        raise ValueError(f"no video processor for this config: {err.args[0]}") from None
    size = list(getattr(config, "image_size", None) or (cls.default_size["height"], cls.default_size["width"]))
    values = dict(size=size, num_frames=int(config.num_frames))
    values.update(overrides)
    return cls(**values)


def load_video_processor(directory: str | os.PathLike, config=None, **overrides) -> FourDVideoProcessor:
    """The processor saved in ``directory`` (``video_preprocessor_config.json``), else the config's default.

    A file that exists but is not valid JSON, or names an unknown processor type, is an error (a
    checkpoint's preprocessing is never silently replaced by a default).
    """
    path = Path(directory, VIDEO_PROCESSOR_NAME)
    if path.is_file():
        try:
            values = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read the video processor config {path}: {err}; fix or delete the file") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object, got {type(values).__name__}")
        kind = values.pop("video_processor_type", None)
        classes = video_processor_classes()
        cls = classes.get(kind)
        if cls is None:
            raise ValueError(f"{path} names video_processor_type {kind!r}; expected one of {sorted(classes)}")
        values.update(overrides)
        return cls(**values)
    if config is None:
        raise FileNotFoundError(f"no {VIDEO_PROCESSOR_NAME} in {directory} and no model config to derive one from")
    return video_processor_for_config(config, **overrides)
