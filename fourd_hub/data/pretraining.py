"""The pretraining data of a recipe: video files as the paper samples them, or synthetic scenes."""

from __future__ import annotations

import numpy as np
import torch

from .stream import BatchStream
from .synthetic import SyntheticSceneConfig, render_scene
from .video_dataset import ClipSampling, VideoClipDataset


class SyntheticVideoStream(BatchStream):
    """Rendered moving-shapes scenes as a pretraining stream (no files needed: tests, demos, CI).

    Sample ``index`` is the scene rendered from ``rng`` (see :class:`BatchStream`), so the stream
    has the same determinism, sharding and resumability as :class:`VideoClipDataset`.

    Args:
        batch_size: clips per batch (per rank).
        num_frames: frames per clip.
        image_size: (height, width).
        scene: other scene settings (objects, fog, motion); its frame count and size are replaced.
        **stream_kwargs: ``seed``, ``rank``, ``world_size``, ``start_batch``, ``num_batches``.

    Yields:
        ``{"pixel_values_videos": (B, T, 3, H, W) float32 in [0, 1], "sample_index": (B,) int64}``.
    """

    def __init__(
        self,
        batch_size: int,
        num_frames: int,
        image_size: tuple[int, int],
        scene: SyntheticSceneConfig | None = None,
        **stream_kwargs,
    ) -> None:
        super().__init__(batch_size, **stream_kwargs)
        base = scene or SyntheticSceneConfig()
        height, width = image_size
        self.scene = SyntheticSceneConfig(**{
            **{name: getattr(base, name) for name in base.__dataclass_fields__},
            "num_frames": num_frames, "height": height, "width": width,
        })

    def make_sample(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        video = render_scene(self.scene, seed=rng).video  # (T, H, W, 3)
        return {"pixel_values_videos": torch.from_numpy(np.ascontiguousarray(video.transpose(0, 3, 1, 2)))}


def pretraining_stream(recipe, rank: int, world_size: int, start_batch: int = 0) -> BatchStream:
    """The micro-batch stream of a :class:`~fourd_hub.training.recipes.PretrainingRecipe` for one rank.

    ``recipe.data == "synthetic"`` renders scenes; anything else is a video source for
    :class:`VideoClipDataset` (directory, glob, ``.txt`` list or file).
    """
    common = dict(seed=recipe.seed, rank=rank, world_size=world_size, start_batch=start_batch)
    if recipe.data == "synthetic":
        return SyntheticVideoStream(recipe.micro_batch_size, recipe.num_frames, recipe.crop_size, **common)
    sampling = ClipSampling(
        num_frames=recipe.num_frames, frame_stride=recipe.frame_stride, crop_size=tuple(recipe.crop_size),
        min_resize_factor=recipe.min_resize_factor, random_crop=True, random_flip=recipe.random_flip,
    )
    return VideoClipDataset(recipe.data, batch_size=recipe.micro_batch_size, sampling=sampling, **common)
