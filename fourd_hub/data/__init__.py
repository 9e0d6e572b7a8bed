"""Training data: video files sampled as the papers do, and synthetic scenes with exact labels.

* :class:`BatchStream`: the deterministic, sharded, resumable stream every pretraining source is.
* :class:`VideoClipDataset`: clips of video files (16 frames at stride 2, shortest side resized to
  1.15 x the crop, random crop, random horizontal flip), decoded with PyAV.
* :func:`render_scene` / :class:`SyntheticSceneDataset`: moving textured shapes under a moving
  camera, rendered with exact depth, point tracks and visibility, boxes and camera poses; the
  data of the readout-training tests, examples and demos. :class:`SyntheticVideoStream` is the
  same scenes as a pretraining stream.
"""

from .pretraining import SyntheticVideoStream, pretraining_stream
from .stream import BatchStream
from .synthetic import SyntheticScene, SyntheticSceneConfig, SyntheticSceneDataset, relative_pose, render_scene
from .video_dataset import ClipSampling, VideoClipDataset

__all__ = [
    "BatchStream",
    "ClipSampling",
    "SyntheticScene",
    "SyntheticSceneConfig",
    "SyntheticSceneDataset",
    "SyntheticVideoStream",
    "VideoClipDataset",
    "pretraining_stream",
    "relative_pose",
    "render_scene",
]
