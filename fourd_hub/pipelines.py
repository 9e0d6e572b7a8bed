"""Video in, predictions out: ``fourd_hub.pipeline(task, model=...)``.

Tasks (names; the transformers registry uses the second name where transformers has an image
task of the first):

=============================  ==============================  ==========================================
``depth-estimation``           ``video-depth-estimation``      depth (T, H, W) in metres per frame
``point-tracking``             ``point-tracking``              tracks (T, Q, 2) pixel (x, y) + visibility
``box-tracking``               ``box-tracking``                boxes (T, Q, 4) pixel (x1, y1, x2, y2)
``camera-pose-estimation``     ``camera-pose-estimation``      4x4 poses at key frames, chained
``video-feature-extraction``   ``video-feature-extraction``    per-frame features (layout documented)
``video-reconstruction``       ``video-reconstruction``        each frame reconstructed (T, H, W, 3) (+ mask)
``video-object-segmentation``  ``video-object-segmentation``   label maps (T, H, W) from a first-frame mask
``keypoint-tracking``          ``keypoint-tracking``           keypoints (T, K, 2) from first-frame ones
=============================  ==============================  ==========================================

Outputs are at the input video's resolution, in pixels, (x, y) order, for the frames the pipeline
processed (every frame by default; ``stride=`` / ``fps=`` / ``num_frames=`` choose fewer, and every
result lists its ``frame_indices``). Long videos are cut into windows of the model's clip length
(:mod:`fourd_hub.windows`) with a progress bar; see each pipeline for how windows are joined. The
two label propagation pipelines (segmentation, keypoints) need no trained head: they carry the
first frame's labels along the backbone's grid features (:mod:`fourd_hub.label_propagation`).
"""

from __future__ import annotations

import difflib
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import Pipeline, PreTrainedModel
from transformers.utils import VIDEO_PROCESSOR_NAME

from .label_propagation import (
    PROPAGATION_DEFAULTS,
    LabelPropagator,
    _is_integer,
    check_propagation_parameters,
    check_topk_fits,
    heatmap_to_mask,
    heatmap_to_pose,
    mask_to_heatmap,
    normalize_features,
    pose_to_heatmap,
)
from .loading import plan_load
from .modeling_utils import load_planned
from .processing import FourDVideoProcessor, is_pil_image, load_video_processor, video_processor_for_config
from .readout import track_boxes, track_points
from .registry import FamilySpec, family_of
from .registry import families as _families
from .results import (
    BoxTrackingResult,
    CameraPoseResult,
    DepthEstimationResult,
    FeatureExtractionResult,
    KeypointTrackingResult,
    PointTrackingResult,
    VideoObjectSegmentationResult,
    VideoReconstructionResult,
    VideoTaskResult,
)
from .tasks import TASKS, get_task
from .video_io import VideoError, VideoReader, open_video, select_frames
from .windows import chain_tracks, plan_windows


#: Frame-selection call arguments, accepted by every pipeline (see :meth:`VideoPipeline.__call__`).
FRAME_ARGUMENTS = ("num_frames", "stride", "fps", "start", "end", "max_frame_pixels", "source_fps")

#: CoTracker's argument names (``CoTrackerPredictor.forward``) -> ours, for point tracking. The
#: layouts agree: ``queries`` (N, 3) as (t, x, y), a batch axis of 1 accepted; ``backward_tracking``
#: is the same name in both. Applied by :meth:`VideoPipeline._sanitize_parameters`.
COTRACKER_POINT_ARGUMENTS = {"queries": "points", "grid_size": "grid", "grid_query_frame": "grid_frame"}
#: The same for box tracking: ``queries`` are boxes (t, x1, y1, x2, y2).
COTRACKER_BOX_ARGUMENTS = {"queries": "boxes"}

# Keywords of push_to_hub that save_pretrained(push_to_hub=True) passes on.
_PUSH_ARGUMENTS = ("commit_message", "commit_description", "private", "token", "revision", "create_pr", "tags")


def canonical_task(task: str) -> str:
    """The pipeline task ``task`` names (any spelling of the task table); a clear error lists the tasks."""
    try:
        spec = get_task(task)
    except KeyError:
        spec = None
    if spec is None or not spec.has_pipeline:
        names = ", ".join(name for name, t in TASKS.items() if t.has_pipeline)
        raise KeyError(f"unknown task {task!r}; fourd_hub pipelines: {names}")
    return spec.name


# ----------------------------------------------------------------------------------------------
# Model loading


def _family(model: PreTrainedModel) -> FamilySpec:
    try:
        return family_of(model)
    except KeyError as err:
        raise TypeError(f"fourd_hub pipelines run fourd_hub models: {err.args[0]}") from None


def _task_model(task: str, model: PreTrainedModel) -> PreTrainedModel:
    """``model`` itself when it can run ``task``; for features, the backbone of any task model; a
    wrapper (``from_base_model``) when the task model is a backbone plus nothing of its own."""
    family = _family(model)
    _check_grid_task(task, family)
    wanted = family.task_model(task)
    if isinstance(model, wanted):
        return model
    base = family.load("base_model")
    if wanted is base and isinstance(model.base_model, base):
        return model.base_model
    if isinstance(model, base) and hasattr(wanted, "from_base_model"):
        return wanted.from_base_model(model)
    raise ValueError(f"{task} needs a {wanted.__name__}; got a {type(model).__name__}")


def load_task_model(
    task: str,
    model: str | os.PathLike | PreTrainedModel,
    backbone: str | os.PathLike | PreTrainedModel | None = None,
    **from_pretrained_kwargs,
) -> PreTrainedModel:
    """The model that runs ``task``, from a model object, a directory, a catalog name or a Hub repo.

    A directory must hold weights for the task (its ``config.json`` ``architectures``): a depth
    pipeline refuses a bare backbone rather than run a randomly initialised head. Standalone
    readout heads load the backbone their ``config.json`` names (or ``backbone``).
    """
    task = canonical_task(task)
    if isinstance(model, PreTrainedModel):
        return _task_model(task, model)
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a catalog name, a directory, a Hub repo id or a model object, got {type(model).__name__}")
    try:
        plan = plan_load(model, task=task, backbone=backbone, require_task_weights=True)
    except ValueError:
        if getattr(PIPELINE_CLASSES.get(task), "needs_feature_grid", False):
            # A family without the task: if its features are off the grid, say that (not only "does not run").
            _check_grid_task(task, plan_load(model, task="video-feature-extraction").family)
        raise
    return load_planned(plan, **from_pretrained_kwargs)


#: The per-frame feature layout on the image grid (``frame_features_layout`` of a base model).
GRID_LAYOUT = "(T, h, w, D)"


def _check_grid_task(task: str, family: FamilySpec) -> None:
    """Refuse a family whose features are off the image grid for a task that needs the grid (label propagation)."""
    if not getattr(PIPELINE_CLASSES.get(task), "needs_feature_grid", False):
        return
    layout = getattr(family.load("base_model"), "frame_features_layout", None)
    if layout != GRID_LAYOUT:
        served = ", ".join(spec.display_name for spec in _families() if task in spec.task_models)
        raise ValueError(
            f"{task} propagates labels along features on the image grid, {GRID_LAYOUT}; {family.display_name}'s "
            f"features are {layout}: its tokens are off the grid (not tied to image positions), so labels cannot be "
            f"propagated with it; use a model of {served or 'a family with grid features'}"
        )


# ----------------------------------------------------------------------------------------------
# Frames at model resolution, decoded lazily


class _ModelFrames:
    """The processed frames of one video at model resolution, decoded on demand.

    Decoding is sequential: one iterator walks the selected frames forward; a request behind it
    for frames no longer cached restarts it. Processed frames are cached up to ``cache_frames``
    (least recently used evicted), so forward-only tasks run in constant memory and chained
    tracking re-decodes only what it evicted.
    """

    def __init__(self, reader: VideoReader, frame_indices: np.ndarray, processor: FourDVideoProcessor, cache_frames: int):
        self.reader = reader
        self.frame_indices = frame_indices
        self.processor = processor
        self.geometry = processor.geometry((reader.metadata.height, reader.metadata.width))
        self.cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self.cache_frames = max(1, cache_frames)
        self._iterator: Iterator | None = None
        self._next = 0

    def _restart(self, position: int) -> None:
        self._iterator = self.reader.iter_frames(self.frame_indices[position:])
        self._next = position

    def _decode_until(self, position: int, keep: set[int]) -> None:
        raw, first = [], self._next
        while self._next <= position:
            _, frame = next(self._iterator)
            raw.append(frame)
            self._next += 1
        if raw:
            processed = self.processor.preprocess_frames(np.stack(raw))
            for offset, tensor in enumerate(processed):
                self.cache[first + offset] = tensor
            self._evict(keep)

    def _evict(self, keep: set[int]) -> None:
        for position in list(self.cache):
            if len(self.cache) <= self.cache_frames:
                break
            if position not in keep:
                del self.cache[position]

    def clip(self, positions: np.ndarray) -> torch.Tensor:
        """(T, 3, h, w) float frames at ``positions`` (repeats allowed)."""
        needed = set(int(p) for p in positions)
        for position in sorted(needed):
            if position in self.cache:
                self.cache.move_to_end(position)
                continue
            if self._iterator is None or position < self._next:
                self._restart(position)
            self._decode_until(position, needed)
        return torch.stack([self.cache[int(p)] for p in positions])

    def release_before(self, position: int) -> None:
        """Forget frames before ``position`` (forward-only tasks will not ask for them again)."""
        for cached in [p for p in self.cache if p < position]:
            del self.cache[cached]


# ----------------------------------------------------------------------------------------------
# Pipelines


#: ``_streamed_windows``' default first state: the seeded one (``seed=``).
_SEEDED_STATE = object()


class VideoPipeline(Pipeline):
    """Base of every fourd_hub pipeline: a transformers ``Pipeline`` that reads whole videos.

    Args:
        model: the task model (see :func:`pipeline` for names and directories).
        video_processor: preprocessing; default: the one saved with the model, else derived from
            its config.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device`` or an index (transformers'
            convention; default: the first GPU if there is one, else the CPU); checked by
            :func:`resolve_device` (a ``ValueError`` naming the device and the available ones).
        dtype: ``torch.bfloat16`` / ``"bfloat16"`` etc. to run the model in (default: as loaded).
        batch_size: windows per model call where windows are independent (depth and features of
            4DS, camera pose is chained); tracking and recurrent models run windows in order.
        progress: show a progress bar over windows.
        seed: seeds the random draws: a recurrent model's initial state (MooG), a masking
            model's masks (RVM's reconstruction); reproducible results.
        cache_frames: processed frames kept in memory for chained tasks (older ones re-decoded).
    """

    task_name = ""
    #: The task's own call arguments (beyond :data:`FRAME_ARGUMENTS`), e.g. ``points``.
    task_arguments: tuple[str, ...] = ()
    #: CoTracker's names for task arguments -> ours (e.g. ``queries`` -> ``points``).
    argument_aliases: dict[str, str] = {}
    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(
        self,
        model: PreTrainedModel,
        video_processor: FourDVideoProcessor | None = None,
        *,
        device: int | str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        batch_size: int = 1,
        progress: bool = True,
        seed: int = 0,
        cache_frames: int = 512,
        **kwargs,
    ):
        model = _task_model(self.task_name, model)
        device = resolve_device(device)
        kwargs.pop("task", None)
        if video_processor is not None and not isinstance(video_processor, FourDVideoProcessor):
            video_processor = None  # transformers passes its own (None) components; ours is derived below
        super().__init__(model=model, task=self.task_name, device=device, **kwargs)
        if dtype is not None and dtype != "auto":
            self.model.to(_torch_dtype(dtype))
        self.model.eval()
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.video_processor = video_processor or _processor_for(self.model)
        self.window_batch_size = int(batch_size)
        self.progress = progress
        self.seed = seed
        self.cache_frames = cache_frames
        self.family = _family(self.model)

    # transformers' Pipeline API: __call__ -> preprocess -> _forward -> postprocess, per video.
    def _sanitize_parameters(self, **kwargs):
        """transformers' hook for call (and construction) keywords: checked, renamed, split by step.

        The one place where CoTracker's names (:attr:`argument_aliases`) become ours.

        Args:
            **kwargs: the keywords of a call (or the extra keywords of the constructor).

        Returns:
            (preprocess, forward, postprocess) keywords: all of them go to :meth:`preprocess`.

        Raises:
            TypeError: an unknown keyword (the message lists the accepted ones), or one argument
                passed under two names (ours and an alias).
        """
        accepted = (*FRAME_ARGUMENTS, *self.task_arguments, *self.argument_aliases)
        unknown = [name for name in kwargs if name not in accepted]
        if unknown:
            close = difflib.get_close_matches(unknown[0], accepted, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            aliases = ", ".join(f"{theirs} (= {ours})" for theirs, ours in self.argument_aliases.items())
            raise TypeError(
                f"{self.task_name} got an unexpected keyword argument {unknown[0]!r}{hint}; it accepts "
                + ", ".join((*self.task_arguments, *FRAME_ARGUMENTS))
                + (f"; and CoTracker's names {aliases}" if aliases else "")
            )
        values = dict(kwargs)
        for theirs, ours in self.argument_aliases.items():
            if theirs not in values:
                continue
            if ours in values:
                raise TypeError(
                    f"{self.task_name} got both {ours}= and {theirs}= (CoTracker's name for {ours}=); pass only one of them"
                )
            values[ours] = values.pop(theirs)
        return values, {}, {}

    def __call__(self, video, **kwargs) -> VideoTaskResult | list[VideoTaskResult]:
        """Run the task on one video (path, bytes, file object, array, tensor, PIL list) or a list of videos.

        Frame selection (at most one of them): ``num_frames`` (evenly spaced), ``stride`` (every
        k-th frame) or ``fps`` (nearest frames on a uniform time grid); plus ``start`` / ``end``.
        ``source_fps``: the frame rate of an input without timestamps (arrays, PIL lists, a
        directory of frames or a glob; default ``fourd_hub.video_io.DEFAULT_FPS``).
        Task arguments (queries, boxes) are documented by each pipeline; an unknown keyword is a
        ``TypeError`` listing the accepted ones, raised before the video is opened.
        """
        if isinstance(video, (list, tuple)) and video and not is_pil_image(video[0]):
            return [self(item, **kwargs) for item in video]
        call_params, _, _ = self._sanitize_parameters(**kwargs)
        inputs = self.preprocess(video, **{**self._preprocess_params, **call_params})
        with torch.inference_mode():
            outputs = self._forward(inputs)
        return self.postprocess(outputs)

    def preprocess(
        self, video, num_frames=None, stride=None, fps=None, start=0, end=None, max_frame_pixels=None, source_fps=None, **task_kwargs
    ):
        self.check_task_arguments(**task_kwargs)  # before the video is opened: a bad argument costs nothing
        extra = {} if max_frame_pixels is None else {"max_frame_pixels": max_frame_pixels}
        if source_fps is not None:
            extra["fps"] = source_fps  # open_video refuses it for a video file, which has its own timestamps
        if num_frames is None and stride is None and fps is None and self.video_processor.temporal_stride > 1:
            stride = self.video_processor.temporal_stride  # a model trained on strided clips sees strided frames
        reader = open_video(video, min_frames=2, **extra)
        try:
            indices = select_frames(
                len(reader), reader.timestamps, num_frames=num_frames, stride=stride, fps=fps, start=start, end=end
            )
            if len(indices) < 2:
                raise VideoError(
                    f"only {len(indices)} frame selected; video models need at least 2 (choose a smaller stride or fps)"
                )
            processor = self.processor_for_call((reader.metadata.height, reader.metadata.width), **task_kwargs)
            frames = _ModelFrames(reader, indices, processor, self.cache_frames)
            span = float(reader.timestamps[indices[-1]] - reader.timestamps[indices[0]])
            rate = (len(indices) - 1) / span if span > 0 else reader.metadata.fps
            task_inputs = self.prepare_task_inputs(frames, **task_kwargs)
        except BaseException:
            reader.close()
            raise
        return {"frames": frames, "reader": reader, "fps": rate, "source": video, "task_inputs": task_inputs}

    def check_task_arguments(self, **kwargs) -> None:
        """Validate the task's call arguments that need no video (sizes, limits); the default accepts any."""

    def processor_for_call(self, input_size: tuple[int, int], **task_kwargs) -> FourDVideoProcessor:
        """The preprocessing of one call's frames (``input_size`` (H, W) of the video): the pipeline's own by default."""
        return self.video_processor

    def prepare_task_inputs(self, frames: _ModelFrames, **kwargs) -> dict[str, Any]:
        if kwargs:
            raise TypeError(f"{self.task_name} got unexpected arguments {sorted(kwargs)}")
        return {}

    def _forward(self, inputs: dict[str, Any]) -> dict[str, Any]:
        try:
            inputs["outputs"] = self.run(inputs["frames"], **inputs["task_inputs"])
        finally:
            inputs["reader"].close()
        return inputs

    def postprocess(self, inputs: dict[str, Any]) -> VideoTaskResult:
        frames: _ModelFrames = inputs["frames"]
        source = inputs["source"]
        if not isinstance(source, (str, os.PathLike, bytes, bytearray, np.ndarray, torch.Tensor, list, tuple)):
            source = None  # a file object was consumed; render() then needs frames passed in
        common = dict(
            task=self.task_name, frame_indices=frames.frame_indices, fps=inputs["fps"],
            image_size=frames.geometry.input_size, _source=source,
        )
        return self.make_result(common, frames, **inputs["outputs"])

    def run(self, frames: _ModelFrames, **task_inputs) -> dict[str, Any]:
        raise NotImplementedError

    def make_result(self, common: dict[str, Any], frames: _ModelFrames, **outputs) -> VideoTaskResult:
        raise NotImplementedError

    # Saving: the model and the video processor, as transformers saves a model's pipeline.
    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs) -> None:
        """Write the model (weights, ``config.json``) and this pipeline's video processor to a directory.

        ``pipeline(task, model=save_directory)`` (or ``transformers.pipeline``) loads it again and
        gives the same results; call arguments and ``device`` / ``batch_size`` / ``seed`` are not
        saved. transformers' own ``Pipeline.save_pretrained`` treats a pipeline registered with
        ``PIPELINE_REGISTRY`` as Hub remote code (it copies the module's source and its relative
        imports into the directory and records ``custom_pipelines`` in the config); fourd_hub's
        pipelines are installed code, so nothing of that is written.

        Args:
            save_directory: the directory (created if missing).
            push_to_hub: also upload it, as :meth:`push_to_hub` (``repo_id`` defaults to the
                directory's name; ``commit_message``, ``private``, ``token``, ``revision``,
                ``create_pr``, ``tags`` are passed on).
            **kwargs: ``PreTrainedModel.save_pretrained`` keywords (e.g. ``max_shard_size``).

        Raises:
            NotADirectoryError: ``save_directory`` is an existing file.
        """
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"cannot save the pipeline to {directory}: it is a file; pass a directory")
        push = {name: kwargs.pop(name) for name in _PUSH_ARGUMENTS if name in kwargs}
        repo_id = kwargs.pop("repo_id", None)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory, **kwargs)
        self.video_processor.save_pretrained(directory)
        if push_to_hub:
            if "max_shard_size" in kwargs:
                push["max_shard_size"] = kwargs["max_shard_size"]
            self.push_to_hub(repo_id or directory.resolve().name, **push)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: bool | str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = "5GB",
        tags: list[str] | None = None,
    ):
        """Upload what :meth:`save_pretrained` writes, with the fourd_hub model card, to ``repo_id``.

        ``pipeline(task, model=repo_id)`` then loads it. The arguments are those of
        :func:`fourd_hub.hub.push_model` (what ``model.push_to_hub`` runs).

        Returns:
            The ``huggingface_hub`` commit info.
        """
        from .hub.push import push_model

        return push_model(
            self.model, repo_id, commit_message=commit_message or f"Upload {type(self).__name__} with fourd_hub",
            commit_description=commit_description, private=private, token=token, revision=revision,
            create_pr=create_pr, max_shard_size=max_shard_size, tags=tags, video_processor=self.video_processor,
        )

    # Helpers shared by the tasks.
    @property
    def recurrent(self) -> bool:
        """The model carries a state across windows (its family's registry flag): windows stream in order."""
        return self.family.recurrent

    @property
    def window(self) -> int:
        return self.video_processor.num_frames

    def _bar(self, total: int, what: str):
        return tqdm(total=total, desc=f"{self.task_name}: {what}", unit="window", disable=not self.progress or total <= 1)

    def _to_model(self, clip: torch.Tensor) -> torch.Tensor:
        return clip.to(device=self.device, dtype=self.model.dtype)

    def _initial_state(self) -> torch.Tensor:
        """A recurrent model's seeded initial state (``seed=``)."""
        generator = torch.Generator().manual_seed(self.seed)
        return self.model.base_model.initial_state(1, generator=generator)

    def _per_frame_windows(self, frames: _ModelFrames, forward) -> Iterator[tuple[Any, Any]]:
        """Per-frame outputs of every window, for tasks whose outputs are one per frame.

        ``forward(clips (B, T, 3, h, w), state) -> (outputs (B, T, ...), state after the clip)``,
        the outputs a tensor or a dict of tensors. Recurrent models stream consecutive chunks with
        the state carried from one to the next (exactly one long call); the others run independent
        windows, ``batch_size`` at a time, with ``state`` None. Yields (window, numpy outputs
        (T, ...), or a dict of them) pairs, in order.
        """
        if self.recurrent:

            def chunk(clip, state):
                outputs, state = forward(clip, state)
                return _batch_numpy(outputs)[0], state

            return self._streamed_windows(frames, chunk)
        return self._independent_windows(frames, lambda clips: _batch_numpy(forward(clips, None)[0]))

    def _independent_windows(self, frames: _ModelFrames, run_batch, windows=None) -> Iterator[tuple[Any, Any]]:
        """Run ``run_batch(clips (B, T, 3, h, w)) -> per-window outputs`` over windows that do not
        depend on each other, ``batch_size`` at a time (default windows: :func:`plan_windows`).

        Yields (window, output) pairs in order, a batch's as soon as it has run: a consumer that
        keeps only what it needs holds one batch's outputs at a time.
        """
        windows = plan_windows(len(frames.frame_indices), self.window) if windows is None else windows
        with self._bar(len(windows), "windows") as bar:
            for first in range(0, len(windows), self.window_batch_size):
                batch = windows[first : first + self.window_batch_size]
                clips = torch.stack([frames.clip(w.positions) for w in batch])
                outputs = run_batch(self._to_model(clips))
                frames.release_before(batch[-1].start)
                bar.update(len(batch))
                yield from zip(batch, outputs)

    def _streamed_windows(self, frames: _ModelFrames, run_chunk, initial_state: Any = _SEEDED_STATE) -> Iterator[tuple[Any, Any]]:
        """Recurrent models: consecutive chunks, the state after one the initial state of the next (exact streaming).

        ``initial_state``: the first chunk's; default the seeded one (:meth:`_initial_state`);
        ``None`` lets the model start from its own default. Yields (window, output) pairs in order,
        each as soon as its chunk has run.
        """
        windows = plan_windows(len(frames.frame_indices), self.window, shift_last=False, pad=False)
        state = self._initial_state() if initial_state is _SEEDED_STATE else initial_state
        with self._bar(len(windows), "chunks") as bar:
            for window in windows:
                output, state = run_chunk(self._to_model(frames.clip(window.positions)[None]), state)
                frames.release_before(window.end)
                bar.update(1)
                yield window, output


def available_devices() -> list[str]:
    """The devices this process can run a model on: ``"cpu"``, then every visible accelerator."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        devices += [f"xpu:{i}" for i in range(xpu.device_count())]
    return devices


def resolve_device(device: int | str | torch.device | None = None) -> torch.device:
    """The ``torch.device`` to run on, checked against what this machine has.

    One function for the pipelines and the CLI (``--device``), so every spelling fails the same
    way: up front, in one line that names the device and lists the available ones, instead of a
    CUDA assertion or a transformers traceback after the model is loaded.

    Args:
        device: ``None`` (the first GPU if there is one, else the CPU), ``"cpu"``, ``"cuda"``,
            ``"cuda:1"``, ``"mps"``, a ``torch.device``, or an index (transformers' convention:
            ``-1`` the CPU, ``k >= 0`` the k-th CUDA device; digit strings too).

    Returns:
        The device.

    Raises:
        ValueError: an unknown device name, the meta device, an accelerator this PyTorch build
            or machine does not have, or an index past the devices present.
    """
    if device is None:
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    available = ", ".join(available_devices())
    if isinstance(device, bool) or not isinstance(device, (int, str, torch.device)):
        raise ValueError(f"device must be a name such as 'cpu' or 'cuda:0', an index or a torch.device, got {device!r}; available: {available}")
    if isinstance(device, str) and device.strip().lstrip("-").isdigit():
        device = int(device.strip())
    if isinstance(device, int):
        device = torch.device("cpu") if device < 0 else torch.device("cuda", device)
    if isinstance(device, str):
        try:
            device = torch.device(device.strip())
        except (RuntimeError, ValueError):
            raise ValueError(f"unknown device {device!r}; available: {available} (e.g. 'cpu', 'cuda', 'cuda:1')") from None
    name = str(device)
    if device.type == "cpu":
        return device
    if device.type == "meta":
        raise ValueError(f"device {name!r} holds no data and cannot run a model; available: {available}")
    if device.type == "cuda":
        # ROCm builds drive AMD GPUs through the "cuda" device type: torch.version.hip instead of .cuda.
        built = torch.version.cuda is not None or getattr(torch.version, "hip", None) is not None
        if not built and not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r} is not available: this PyTorch build ({torch.__version__}) has no CUDA support; "
                f"available: {available}"
            )
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {name!r} is not available: no CUDA GPU is visible; available: {available}")
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {name!r} does not exist: {count} CUDA device(s) are visible; available: {available}")
        return device
    if device.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ValueError(f"device {name!r} is not available on this machine; available: {available}")
        return device
    module = getattr(torch, device.type, None)
    is_available = getattr(module, "is_available", None)
    if not callable(is_available) or not is_available():
        raise ValueError(f"device {name!r} is not available on this machine; available: {available}")
    count = getattr(module, "device_count", lambda: None)()
    if device.index is not None and count is not None and device.index >= count:
        raise ValueError(f"device {name!r} does not exist: {count} {device.type} device(s); available: {available}")
    return device


def _torch_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype).replace("torch.", ""), None)
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise ValueError(f"dtype must be a floating point torch dtype such as 'bfloat16', got {dtype!r}")
    return value


def _processor_for(model: PreTrainedModel) -> FourDVideoProcessor:
    """The processor saved beside the model (``name_or_path``), else one derived from its config."""
    source = getattr(model, "name_or_path", "") or ""
    if source and Path(source, VIDEO_PROCESSOR_NAME).is_file():
        return load_video_processor(source)
    # A head reads clips of its own length (a tracking head attached to a backbone of another).
    head_frames = getattr(getattr(model, "head", None), "num_frames", None)
    if isinstance(head_frames, int):
        return video_processor_for_config(model.config, num_frames=head_frames)
    return video_processor_for_config(model.config)


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()


def _batch_numpy(outputs: torch.Tensor | dict[str, torch.Tensor]) -> np.ndarray | list[dict[str, np.ndarray]]:
    """Batched model outputs as numpy, indexable by batch element: a float array (a tensor), or one
    dict per element (a dict of tensors; boolean tensors stay boolean)."""
    if not isinstance(outputs, dict):
        return _to_numpy(outputs)
    arrays = {name: value.detach().cpu().numpy() if value.dtype == torch.bool else _to_numpy(value) for name, value in outputs.items()}
    count = len(next(iter(arrays.values())))
    return [{name: array[index] for name, array in arrays.items()} for index in range(count)]


class DepthEstimationPipeline(VideoPipeline):
    """Depth in metres for every processed frame, at the input resolution.

    4DS heads are tied to their clip (16 frames): the video is cut into consecutive windows, the
    last one shifted back to end on the last frame (its first frames, already predicted by the
    previous window, are not used), and each frame's depth comes from exactly one window. MooG's
    depth decoder reads each frame's state: the video streams through in chunks with the state
    carried, so chunking does not change the result.
    """

    task_name = "depth-estimation"

    def run(self, frames: _ModelFrames) -> dict[str, Any]:
        count = len(frames.frame_indices)
        depth = np.zeros((count, *self.video_processor.model_size), dtype=np.float32)

        def forward(clips, state):
            out = self.model(clips) if state is None else self.model(clips, initial_state=state)
            return out.predicted_depth, out.state

        for window, predicted in self._per_frame_windows(frames, forward):
            depth[window.keep_from : window.end] = predicted[window.keep]
        return {"depth": depth}

    def make_result(self, common, frames, depth) -> DepthEstimationResult:
        return DepthEstimationResult(**common, model_depth=depth, geometry=frames.geometry)


class _TrackingPipeline(VideoPipeline):
    """Shared by points and boxes: queries at any frame, tracked forward and backward in windows.

    Queries are grouped by their frame t. From t, windows chain forward to the end: each window
    starts on the previous window's last frame, with the queries re-seeded there from the last
    visible prediction (:func:`fourd_hub.windows.chain_tracks`); MooG's state is carried across
    windows. Frames before t are tracked the same way on the reversed video (both 4DS and MooG
    read any frame order), unless ``backward_tracking=False``: then those frames are not covered,
    NaN coordinates and not visible. At frame t the track is the query itself, visible. Every
    frame's prediction comes from one window.
    """

    coordinate_size = 2

    @staticmethod
    def _check_backward(backward_tracking: Any) -> bool:
        if not isinstance(backward_tracking, (bool, np.bool_)):
            raise ValueError(
                f"backward_tracking must be True (also track the frames before each query's frame) or False "
                f"(only after it); got {backward_tracking!r}"
            )
        return bool(backward_tracking)

    def _parse_queries(self, queries, frames: _ModelFrames, name: str) -> np.ndarray:
        """(Q, 1 + c) float64 (t, coords...) with t an input-video frame index among the processed ones."""
        size = self.coordinate_size
        if isinstance(queries, torch.Tensor):
            queries = queries.detach().cpu().numpy()
        try:
            array = np.asarray(queries, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be numbers, shape (Q, {size + 1}) as (t, ...) or (Q, {size}) at frame 0") from None
        if array.ndim == 1 and array.size in (size, size + 1):
            array = array[None]
        if array.ndim == 3 and array.shape[0] == 1:
            array = array[0]  # CoTracker's (1, Q, 3) layout: a batch of one video
        elif array.ndim == 3:
            raise ValueError(
                f"{name} has a batch of {array.shape[0]} query sets {array.shape}; a pipeline call tracks one video: "
                f"pass (Q, {size + 1}) (or (1, Q, {size + 1})) and call it once per video"
            )
        if array.ndim != 2 or array.shape[1] not in (size, size + 1) or array.shape[0] == 0:
            raise ValueError(
                f"{name} must have shape (Q, {size + 1}) as (t, {'x, y' if size == 2 else 'x1, y1, x2, y2'}) or (Q, {size}) "
                f"for queries in the first frame; got {array.shape}"
            )
        if array.shape[1] == size:
            array = np.concatenate([np.full((len(array), 1), frames.frame_indices[0], dtype=np.float64), array], axis=1)
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        times = array[:, 0]
        if (times != np.round(times)).any() or (times < 0).any():
            raise ValueError(f"{name}: frame indices t must be non-negative integers, got {times[(times != np.round(times)) | (times < 0)][:3].tolist()}")
        missing = ~np.isin(times.astype(np.int64), frames.frame_indices)
        if missing.any():
            raise ValueError(
                f"{name}: frame {int(times[missing][0])} is not among the processed frames "
                f"({_describe_indices(frames.frame_indices)}); query a processed frame or change the frame selection"
            )
        height, width = frames.geometry.input_size
        coords = array[:, 1:].reshape(len(array), -1, 2)
        outside = (coords[..., 0] < 0) | (coords[..., 0] > width) | (coords[..., 1] < 0) | (coords[..., 1] > height)
        if outside.any():
            first = int(np.argmax(outside.any(axis=1)))
            raise ValueError(
                f"{name}[{first}] = {array[first, 1:].tolist()} is outside the {width}x{height} frame "
                "(pixel coordinates, x in [0, W], y in [0, H])"
            )
        normalized = frames.geometry.to_normalized(array[:, 1:])
        if ((normalized < 0) | (normalized > 1)).any():
            first = int(np.argmax(((normalized < 0) | (normalized > 1)).any(axis=1)))
            raise ValueError(
                f"{name}[{first}] is outside the part of the frame the model sees (resize_mode="
                f"{self.video_processor.resize_mode!r} keeps x, y within {frames.geometry.visible_region()}); "
                "use resize_mode='resize' or 'pad' to track anywhere"
            )
        return array

    def _head_call(self, clip: torch.Tensor, seeds: torch.Tensor, state):
        raise NotImplementedError

    def _track(self, frames: _ModelFrames, queries: np.ndarray, backward: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """values (T, Q, c) normalised and visible (T, Q) for parsed queries.

        Frames no pass covers (before a query's frame, with ``backward`` False) are NaN, not visible.
        """
        count, size = len(frames.frame_indices), self.coordinate_size
        values = np.full((count, len(queries), size), np.nan, dtype=np.float64)
        visible = np.zeros((count, len(queries)), dtype=bool)
        positions = np.searchsorted(frames.frame_indices, queries[:, 0].astype(np.int64))
        normalized = frames.geometry.to_normalized(queries[:, 1:])
        values[positions, np.arange(len(queries))] = normalized  # the query frame: the query itself, visible
        visible[positions, np.arange(len(queries))] = True
        groups = sorted(set(positions.tolist()))
        passes = sum((p < count - 1) + (backward and p > 0) for p in groups)
        bar = self._bar(max(passes, 1), "tracking passes")

        def run_window(window_positions, seeds, state):
            clip = self._to_model(frames.clip(window_positions)[None])
            return self._head_call(clip, torch.from_numpy(seeds.astype(np.float32))[None].to(self.device), state)

        with bar:
            for position in groups:
                members = np.flatnonzero(positions == position)
                sequences = [np.arange(position, count)] + ([np.arange(position, -1, -1)] if backward else [])
                for sequence in sequences:
                    if len(sequence) < 2:
                        continue
                    pass_values, pass_visible = chain_tracks(
                        sequence, normalized[members], self.window, run_window, use_visibility=self.coordinate_size == 2
                    )
                    values[np.ix_(sequence, members)] = pass_values
                    visible[np.ix_(sequence, members)] = pass_visible  # entry 0: the query itself, visible
                    bar.update(1)
        return values, visible

    def _run_backbone_and_head(self, clip, seeds, state, track_fn):
        """Features of one window (recurrent models: from ``state``), then the head; returns numpy outputs + states."""
        if self.recurrent and state is None:
            state = self._initial_state()
        features, states = self.model.readout_inputs(clip, initial_state=state)
        output = track_fn(self.model.head, features, seeds, tuple(clip.shape[-2:]), normalized_coordinates=True)
        # The state after each window frame; chain_tracks picks the carry.
        return output, (None if states is None else [s[None] for s in states[0]])


class PointTrackingPipeline(_TrackingPipeline):
    """Track points through a video: ``pipe(video, points=[(t, x, y), ...])`` or ``grid=N``.

    Args (call):
        points: (Q, 3) as (t, x, y): t an index into the input video (any processed frame, not
            only the first), x, y in pixels; or (Q, 2) for points in the first processed frame.
            A list, numpy array or tensor; a leading batch axis of 1, (1, Q, 3), is accepted.
        grid: instead of points, an N x N grid of points (cell centres) in frame ``grid_frame``;
            1 <= N <= :data:`MAX_GRID_SIZE` (64, i.e. at most 4096 points), checked before the
            video is opened.
        grid_frame: the input-video frame of the grid (default: the first processed frame);
            used with ``grid`` only.
        backward_tracking: True (default): a query at frame t > 0 is also tracked back to the
            first frame; False: only forward, and the frames before t are NaN, not visible.

    CoTracker's names are accepted too (:data:`COTRACKER_POINT_ARGUMENTS`): ``queries`` for
    ``points`` (the same (t, x, y) layout), ``grid_size`` for ``grid`` (``grid_size=0``,
    CoTracker's default, means no grid), ``grid_query_frame`` for ``grid_frame``; one argument
    under both names is an error.

    Returns a :class:`PointTrackingResult`: ``tracks`` (T, Q, 2) pixel (x, y), ``visible`` (T, Q).
    """

    task_name = "point-tracking"
    coordinate_size = 2
    task_arguments = ("points", "grid", "grid_frame", "backward_tracking")
    argument_aliases = COTRACKER_POINT_ARGUMENTS

    def _sanitize_parameters(self, **kwargs):
        grid_size = kwargs.get("grid_size")
        if isinstance(grid_size, (int, np.integer)) and not isinstance(grid_size, (bool, np.bool_)) and grid_size == 0:
            # CoTracker's default grid_size=0 is "no grid" (with no queries it means dense tracking).
            if kwargs.get("queries") is None and kwargs.get("points") is None:
                raise ValueError(
                    "grid_size=0 without queries is CoTracker's dense tracking of every pixel, which fourd_hub does not do; "
                    f"pass grid_size=N (1 to {MAX_GRID_SIZE}) or queries=[(t, x, y), ...]"
                )
            kwargs = {name: value for name, value in kwargs.items() if name != "grid_size"}
        return super()._sanitize_parameters(**kwargs)

    def check_task_arguments(self, points=None, grid: int | None = None, grid_frame: int | None = None, backward_tracking=True) -> None:
        if (points is None) == (grid is None):
            raise ValueError(
                "pass either points=[(t, x, y), ...] (CoTracker: queries=) or grid=N, an N x N grid of points "
                "(CoTracker: grid_size=N)"
            )
        if grid is not None:
            check_grid_size(grid)
        self._check_backward(backward_tracking)

    def prepare_task_inputs(self, frames, points=None, grid: int | None = None, grid_frame: int | None = None, backward_tracking=True):
        self.check_task_arguments(points=points, grid=grid, backward_tracking=backward_tracking)
        name = "points"
        if grid is not None:
            frame = frames.frame_indices[0] if grid_frame is None else grid_frame
            points, name = grid_points(grid, frames.geometry.input_size, frame), f"grid_frame={frame!r}: grid points"
        return {"queries": self._parse_queries(points, frames, name), "backward": self._check_backward(backward_tracking)}

    def _head_call(self, clip, seeds, state):
        output, states = self._run_backbone_and_head(clip, seeds, state, track_points)
        return _to_numpy(output.normalized_tracks[0]).astype(np.float64), output.visible[0].cpu().numpy(), states

    def run(self, frames, queries, backward):
        values, visible = self._track(frames, queries, backward)
        return {"tracks": frames.geometry.to_input(values), "visible": visible, "queries": queries}

    def make_result(self, common, frames, tracks, visible, queries) -> PointTrackingResult:
        tracks = tracks.astype(np.float32)
        return PointTrackingResult(**common, tracks=tracks, visible=visible, query_points=queries.astype(np.float32))


class BoxTrackingPipeline(_TrackingPipeline):
    """Track boxes: ``pipe(video, boxes=[(t, x1, y1, x2, y2), ...])``.

    Box windows chain like points (re-seeded from the latest predicted box; boxes have no
    visibility). ``boxes`` is (Q, 5) as (t, x1, y1, x2, y2) (or (Q, 4) in the first processed
    frame, or (1, Q, 5)); ``queries=`` is accepted for it, as CoTracker names its queries.
    ``backward_tracking`` as for points: False leaves the frames before a box's frame NaN.
    Returns a :class:`BoxTrackingResult` with ``boxes`` (T, Q, 4) pixel (x1, y1, x2, y2).
    """

    task_name = "box-tracking"
    coordinate_size = 4
    task_arguments = ("boxes", "backward_tracking")
    argument_aliases = COTRACKER_BOX_ARGUMENTS

    def check_task_arguments(self, boxes=None, backward_tracking=True) -> None:
        if boxes is None:
            raise ValueError(
                "pass boxes=[(t, x1, y1, x2, y2), ...] (or queries=; pixels, t a frame index of the input video)"
            )
        self._check_backward(backward_tracking)

    def prepare_task_inputs(self, frames, boxes=None, backward_tracking=True):
        self.check_task_arguments(boxes=boxes, backward_tracking=backward_tracking)
        queries = self._parse_queries(boxes, frames, "boxes")
        bad = (queries[:, 3] <= queries[:, 1]) | (queries[:, 4] <= queries[:, 2])
        if bad.any():
            raise ValueError(f"boxes[{int(np.argmax(bad))}] = {queries[bad][0, 1:].tolist()}: need x1 < x2 and y1 < y2")
        return {"queries": queries, "backward": self._check_backward(backward_tracking)}

    def _head_call(self, clip, seeds, state):
        output, states = self._run_backbone_and_head(clip, seeds, state, track_boxes)
        values = _to_numpy(output.normalized_boxes[0]).astype(np.float64)
        return values, np.ones(values.shape[:2], dtype=bool), states

    def run(self, frames, queries, backward):
        values, _ = self._track(frames, queries, backward)
        return {"boxes": frames.geometry.to_input(values), "queries": queries}

    def make_result(self, common, frames, boxes, queries) -> BoxTrackingResult:
        return BoxTrackingResult(**common, boxes=boxes.astype(np.float32), query_boxes=queries.astype(np.float32))


class CameraPosePipeline(VideoPipeline):
    """Relative camera poses, chained: windows overlap by one frame (each starts on the previous one's
    last frame), each predicts its last frame's camera relative to its first, and the key-frame
    poses are the running product. A final window with fewer than T frames left is padded with its
    last frame (the head reads a window's first and last frame)."""

    task_name = "camera-pose-estimation"

    def run(self, frames: _ModelFrames) -> dict[str, Any]:
        windows = plan_windows(len(frames.frame_indices), self.window, overlap=1, shift_last=False)
        outputs = self._independent_windows(frames, lambda clips: _to_numpy(self.model(clips).pose), windows)
        relative = [pose.astype(np.float64) for _, pose in outputs]
        poses = [np.eye(4)]
        for pose in relative:
            poses.append(poses[-1] @ pose)
        key_positions = [0] + [w.end - 1 for w in windows]
        return {"poses": np.stack(poses), "relative": np.stack(relative), "key_positions": np.array(key_positions)}

    def make_result(self, common, frames, poses, relative, key_positions) -> CameraPoseResult:
        return CameraPoseResult(
            **common, poses=poses.astype(np.float32), relative_poses=relative.astype(np.float32),
            pose_frames=frames.frame_indices[key_positions],
        )


class FeatureExtractionPipeline(VideoPipeline):
    """Per-frame features (see :class:`FeatureExtractionResult` for the layouts).

    4DS: independent windows like depth (the last shifted back), readout features of each frame
    from one window. Recurrent models (MooG, RVM): streamed chunks with the state carried
    (identical to one call), through the base model's ``frame_features(clips, initial_state=)``.
    """

    task_name = "video-feature-extraction"

    def run(self, frames: _ModelFrames) -> dict[str, Any]:
        chunks = []
        for window, features in self._per_frame_windows(frames, lambda clips, state: self.model.frame_features(clips, initial_state=state)):
            chunks.append(features[window.keep])
        return {"features": np.concatenate(chunks)}

    def make_result(self, common, frames, features) -> FeatureExtractionResult:
        return FeatureExtractionResult(**common, features=features, layout=self.model.frame_features_layout)


class VideoReconstructionPipeline(VideoPipeline):
    """Every processed frame reconstructed by the model, streamed in chunks with the state carried.

    The protocol of a reconstruction model (the family's ``video-reconstruction`` task model):
    ``model.reconstruct_video(clips, initial_state=state, generator=generator)`` (MooG's next-frame
    prediction: each frame from the state before it) returns an output with ``predicted_frames``
    (B, T, C, H, W) and the ``state`` to continue from; a model that hides part of each frame (RVM's masked
    reconstruction: each frame from 5% of its patches and the frames before it) adds ``mask``
    (B, T, h, w), True where a patch was hidden. ``generator`` is seeded once per video
    (``seed=``) and drawn from chunk after chunk, so the chunks give the masks of one call.

    Returns a :class:`VideoReconstructionResult`: ``frames`` (T, H, W, 3) uint8, and ``mask``
    (T, h, w) for a masking model; it renders input | masked input | reconstruction (the visible
    patches pasted back, as the original demo shows it), or input | prediction without a mask.
    """

    task_name = "video-reconstruction"

    def run(self, frames: _ModelFrames) -> dict[str, Any]:
        chunks, masks = [], []
        generator = torch.Generator().manual_seed(self.seed)

        def forward(clips, state):
            out = self.model.reconstruct_video(clips, initial_state=state, generator=generator)
            outputs = {"frames": out.predicted_frames.permute(0, 1, 3, 4, 2).clamp(0, 1)}
            if getattr(out, "mask", None) is not None:
                outputs["mask"] = out.mask.bool()
            return outputs, out.state

        for window, outputs in self._per_frame_windows(frames, forward):
            chunks.append(outputs["frames"][window.keep])
            if "mask" in outputs:
                masks.append(outputs["mask"][window.keep])
        return {"predicted": np.concatenate(chunks), "mask": np.concatenate(masks) if masks else None}

    def make_result(self, common, frames, predicted, mask) -> VideoReconstructionResult:
        return VideoReconstructionResult(**common, model_frames=predicted, mask=mask, geometry=frames.geometry)


#: ``process_pose``'s top-k (rvm.md 6.4): positions averaged per keypoint.
POSE_TOPK = 5

#: The most object labels a first-frame mask may hold (labels 1 .. 255, 0 the background): the
#: label maps are uint8 and saved as palette PNGs.
MAX_OBJECT_LABEL = 255


def parse_processing_size(size: Any) -> tuple[int, int] | None:
    """``size=`` of the label propagation pipelines: ``None``, (H, W) positive integers, or ``"HxW"``.

    Raises:
        ValueError: anything else (the message shows the accepted forms).
    """
    if size is None:
        return None
    if isinstance(size, str):
        parts = size.lower().replace(" ", "").split("x")
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            raise ValueError(f"size {size!r} must be HxW, e.g. '480x880' (height x width in pixels)")
        size = [int(part) for part in parts]
    if isinstance(size, torch.Tensor):
        size = size.tolist()
    values = list(size) if isinstance(size, (list, tuple, np.ndarray)) else None
    if values is None or len(values) != 2 or not all(_is_integer(v) and v > 0 for v in values):
        raise ValueError(f"size must be (height, width), two positive integers (e.g. (480, 880)), got {size!r}")
    return int(values[0]), int(values[1])


def default_processing_size(input_size: Sequence[int], short_side: int, patch: Sequence[int]) -> tuple[int, int]:
    """The processing size for a video of ``input_size`` (H, W): its short side ``short_side``, the other by
    the aspect ratio, each rounded to the nearest multiple of ``patch`` (ph, pw) (at least one patch)."""
    height, width = (int(v) for v in input_size)
    scale = short_side / min(height, width)
    return tuple(max(p, int(round(side * scale / p)) * p) for side, p in zip((height, width), patch))  # type: ignore[return-value]


def read_first_mask(mask: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """A first-frame mask -> (H, W) uint8 label map and its PNG's (256, 3) palette (``None`` without one).

    Accepted: a path to an image file (a palette "P" PNG as DAVIS annotations, a grayscale "L" or
    "1" or 16/32-bit integer image: pixel values are the labels), a PIL image of those modes, or an
    (H, W) integer (or bool) numpy array / tensor.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: an unreadable or empty file, an RGB(A) image, a shape that is not (H, W),
            negative labels or labels above 255 (more than 255 objects).
        TypeError: a float mask or an unsupported object.
    """
    from PIL import Image, UnidentifiedImageError

    palette = None
    if isinstance(mask, (str, os.PathLike)):
        path = Path(mask)
        if not path.is_file():
            raise FileNotFoundError(f"mask file {path} does not exist (pass a PNG of the first frame's object labels)")
        try:
            with Image.open(path) as image:
                image.load()
                return read_first_mask(image)
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            raise ValueError(f"cannot read the mask {path}: {err} (expected a PNG of object labels, e.g. a DAVIS annotation)") from None
    if is_pil_image(mask):
        if mask.mode == "P":
            raw = mask.getpalette("RGB") or []
            palette = np.zeros((256, 3), dtype=np.uint8)
            colours = np.asarray(raw[: 256 * 3], dtype=np.uint8).reshape(-1, 3)
            palette[: len(colours)] = colours
        elif mask.mode not in ("L", "1", "I", "I;16", "I;16B", "I;16L"):
            raise ValueError(
                f"the mask image is in mode {mask.mode!r} (colours): pass a palette ('P') or grayscale ('L') PNG whose "
                "pixel values are the object labels, as DAVIS annotations are, or an (H, W) integer array"
            )
        mask = np.asarray(mask)
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    elif isinstance(mask, (list, tuple)):
        mask = np.asarray(mask)
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a PNG path, a PIL image or an (H, W) integer array, got {type(mask).__name__}")
    if mask.dtype == np.bool_:
        mask = mask.astype(np.uint8)
    if not np.issubdtype(mask.dtype, np.integer):
        raise TypeError(f"mask must hold integer object labels (0 = background), got {mask.dtype}; convert it, e.g. mask.astype(np.uint8)")
    if mask.ndim != 2 or 0 in mask.shape:
        raise ValueError(f"mask must be an (H, W) label map, got shape {mask.shape}")
    low, high = int(mask.min()), int(mask.max())
    if low < 0:
        raise ValueError(f"mask has negative labels ({low}); labels are 0 (background) to {MAX_OBJECT_LABEL}")
    if high > MAX_OBJECT_LABEL:
        objects = int(np.count_nonzero(np.unique(mask)))
        raise ValueError(
            f"mask has labels up to {high} ({objects} objects): at most {MAX_OBJECT_LABEL} objects fit (labels 1 to "
            f"{MAX_OBJECT_LABEL}, 0 the background), as uint8 label maps and palette PNGs; relabel them 1..N"
        )
    return mask.astype(np.uint8), palette


def check_mask_size(mask: np.ndarray, frame_size: Sequence[int]) -> None:
    """Refuse a first-frame mask whose (H, W) is not the video's frame size (the message names both)."""
    height, width = (int(v) for v in frame_size)
    if tuple(mask.shape) != (height, width):
        raise ValueError(
            f"the mask is {mask.shape[1]}x{mask.shape[0]} (W x H) but the video's frames are {width}x{height}: the "
            "first-frame mask must have the frame's size"
        )


def parse_keypoints(keypoints: Any, frame_size: Sequence[int], allow_outside: bool = False) -> np.ndarray:
    """First-frame keypoints -> (K, 2) float64 pixel (x, y), checked against the frame (H, W).

    Raises:
        ValueError: not (K >= 1, 2) numbers, NaN, or (unless ``allow_outside``) a keypoint outside
            the frame, x not in [0, W] or y not in [0, H] (the message names which).
    """
    if isinstance(keypoints, torch.Tensor):
        keypoints = keypoints.detach().cpu().numpy()
    try:
        points = np.asarray(keypoints, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("keypoints must be numbers, shape (K, 2) as pixel (x, y)") from None
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"keypoints must have shape (K, 2) as pixel (x, y) in the first frame, K >= 1; got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("keypoints contain NaN or infinite values")
    height, width = (int(v) for v in frame_size)
    outside = (points[:, 0] < 0) | (points[:, 0] > width) | (points[:, 1] < 0) | (points[:, 1] > height)
    if outside.any() and not allow_outside:
        which = np.flatnonzero(outside)
        shown = ", ".join(f"{i}: ({points[i, 0]:g}, {points[i, 1]:g})" for i in which[:5]) + (" ..." if len(which) > 5 else "")
        raise ValueError(
            f"keypoints {shown} are outside the {width}x{height} frame (x in [0, {width}], y in [0, {height}]); "
            "pass allow_outside=True (CLI: --allow-outside) to keep them, as the JHMDB protocol does"
        )
    return points


class _LabelPropagationPipeline(VideoPipeline):
    """Shared by segmentation and keypoints: first-frame labels carried along the backbone's grid features.

    The protocol of rvm.md 6.1 - 6.4: the selected frames are resized to the processing size
    ``size`` with PIL's Lanczos (uint8, then / 255: ``mediapy.resize_video``; stretched, aspect
    ratio not kept), the features ``model.frame_features`` computed chunk by chunk (a recurrent
    model carries its state from one chunk to the next, from its own initial state; others run
    independent windows) and L2-normalised per position; each frame is propagated as it arrives
    (:class:`~fourd_hub.label_propagation.LabelPropagator`) and turned into its label map or
    keypoints at the video's resolution right away, so memory does not grow with the video beyond
    the outputs.
    """

    needs_feature_grid = True
    default_short_side = 480
    task_arguments = ("size", *PROPAGATION_DEFAULTS)

    def __init__(self, model, *args, **kwargs):
        super().__init__(model, *args, **kwargs)
        layout = getattr(self.model, "frame_features_layout", None)
        if layout != GRID_LAYOUT:  # a model object whose family declares the task but whose features are not on the grid
            raise ValueError(
                f"{self.task_name} needs features on the image grid {GRID_LAYOUT}; {type(self.model).__name__} gives {layout}: "
                "its tokens are off the grid"
            )

    @property
    def spatial_patch(self) -> tuple[int, int]:
        """(ph, pw): the model's spatial patch size (the last two entries of ``config.patch_size``)."""
        patch = list(self.model.config.patch_size)
        return int(patch[-2]), int(patch[-1])

    def _check_common(self, size=None, **params) -> tuple[tuple[int, int] | None, dict[str, Any]]:
        size = parse_processing_size(size)
        if size is not None:
            patch = self.spatial_patch
            if size[0] % patch[0] or size[1] % patch[1]:
                nearest = tuple(max(p, int(round(s / p)) * p) for s, p in zip(size, patch))
                raise ValueError(
                    f"size {size[0]}x{size[1]} is not a multiple of the model's {patch[0]}x{patch[1]} patch; use e.g. "
                    f"{nearest[0]}x{nearest[1]}"
                )
        return size, check_propagation_parameters(**{**PROPAGATION_DEFAULTS, **params})

    def processor_for_call(self, input_size, size=None, **task_kwargs) -> FourDVideoProcessor:
        size = parse_processing_size(size) or default_processing_size(input_size, self.default_short_side, self.spatial_patch)
        values = self.video_processor.to_dict()
        kind = values.pop("video_processor_type", None)
        values.update(size=list(size), resize_mode="resize", resample="lanczos")
        return type(self.video_processor)(**values) if kind else self.video_processor

    def _grid(self, frames: _ModelFrames) -> tuple[tuple[int, int], tuple[int, int]]:
        """(processing size (H, W), feature grid (h, w)) of a call."""
        size = frames.processor.model_size
        patch = self.spatial_patch
        return size, (size[0] // patch[0], size[1] // patch[1])

    def _frame_features(self, frames: _ModelFrames) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """(positions, (n, h, w, C) normalised float32 features on the model's device) chunk after chunk, in order.

        Never more than one chunk's (or ``batch_size`` windows') features at a time.
        """
        if self.recurrent:

            def run_chunk(clip, state):
                features, state = self.model.frame_features(clip, initial_state=state)
                return features[0], state

            # The model's own initial state (RVM: zeros, as the protocol), sized for this call's grid.
            chunks = self._streamed_windows(frames, run_chunk, initial_state=None)
        else:
            chunks = self._independent_windows(frames, lambda clips: self.model.frame_features(clips)[0])
        for window, features in chunks:
            yield np.arange(window.keep_from, window.end), normalize_features(features[window.keep].float())

    def _propagate(self, frames: _ModelFrames, heatmap: np.ndarray, params: dict[str, Any], finish) -> None:
        """Steps a propagator over the frames; ``finish(position, (h, w, L) prediction)`` post-processes each one."""
        propagator = None
        for positions, features in self._frame_features(frames):
            for position, frame_features in zip(positions, features):
                if propagator is None:  # the first selected frame's features: the first context entry
                    propagator = LabelPropagator(frame_features, torch.from_numpy(heatmap), **params)
                finish(int(position), propagator.step(frame_features))

class VideoObjectSegmentationPipeline(_LabelPropagationPipeline):
    """Object masks through a video from the first frame's: ``pipe(video, mask=first_mask)``.

    Label propagation (rvm.md 6.3, the DAVIS protocol), no trained head: the mask's labels
    (``np.unique``, any number of objects up to 255) become a one-hot heatmap on the feature grid
    (``mask_to_heatmap``), are propagated frame by frame, and each frame's heatmap becomes a label
    map at the video's resolution (``heatmap_to_mask``: the cv2 rules of the protocol, exact).

    Args (call):
        mask: the labels of the first processed frame, at the video's frame size: a PNG path
            (palette "P" PNGs as DAVIS annotations: the palette is kept; grayscale "L"), a PIL
            image, or an (H, W) integer array (0 = background). RGB images are refused.
        size: the processing size (H, W) or ``"HxW"``, multiples of the model's patch (DAVIS:
            ``(480, 880)``, a 30 x 55 grid); default: short side 480, the other by the aspect
            ratio, rounded to the patch.
        n_context, temperature, topk, radius, restrict_neighborhood: the propagation parameters
            (:data:`PROPAGATION_DEFAULTS`, the protocol's).

    Returns a :class:`VideoObjectSegmentationResult`: ``masks`` (T, H, W) uint8 (frame 0 is
    propagated too, as the protocol does), ``labels``, ``palette``.
    """

    task_name = "video-object-segmentation"
    task_arguments = ("mask", *_LabelPropagationPipeline.task_arguments)

    def check_task_arguments(self, mask=None, size=None, **params) -> None:
        if mask is None:
            raise ValueError("pass mask= : the first frame's object labels (a PNG path, a PIL image or an (H, W) integer array)")
        self._check_common(size, **params)

    def prepare_task_inputs(self, frames, mask=None, size=None, **params):
        self.check_task_arguments(mask=mask, size=size, **params)
        _, params = self._check_common(size, **params)
        first, palette = read_first_mask(mask)
        check_mask_size(first, frames.geometry.input_size)
        processing, grid = self._grid(frames)
        check_topk_fits(params["topk"], params["n_context"], grid)
        heatmap, labels = mask_to_heatmap(first, grid, processing)
        if palette is None:
            from .visualization import davis_palette

            palette = davis_palette()
        return {"heatmap": heatmap, "labels": labels, "palette": palette, "params": params}

    def run(self, frames, heatmap, labels, palette, params) -> dict[str, Any]:
        processing, _ = self._grid(frames)
        original = frames.geometry.input_size
        masks = np.zeros((len(frames.frame_indices), *original), dtype=np.uint8)

        def finish(position, prediction):
            masks[position] = heatmap_to_mask(prediction[None], labels, processing, original)[0]

        self._propagate(frames, heatmap, params, finish)
        return {"masks": masks, "labels": labels.astype(np.uint8), "palette": palette}

    def make_result(self, common, frames, masks, labels, palette) -> VideoObjectSegmentationResult:
        return VideoObjectSegmentationResult(**common, masks=masks, labels=labels, palette=palette)


class KeypointTrackingPipeline(_LabelPropagationPipeline):
    """Keypoints through a video from the first frame's: ``pipe(video, keypoints=[(x, y), ...])``.

    Label propagation (rvm.md 6.4, the JHMDB pose protocol), no trained head: each keypoint
    becomes a small Gaussian on the feature grid (``pose_to_heatmap``), the heatmaps are
    propagated, and each frame's keypoints are the weighted mean of their heatmap's 5 largest
    cells (``heatmap_to_pose``); a keypoint whose heatmap is all zero is invisible, (-1, -1).

    Args (call):
        keypoints: (K, 2) pixel (x, y) in the first processed frame (a list, array or tensor).
        allow_outside: keypoints outside the frame (x not in [0, W] or y not in [0, H]) are an
            error by default; True keeps them as the JHMDB protocol does (one entirely outside
            the grid gets an empty heatmap and is never visible).
        size: the processing size (JHMDB: ``(320, 320)``); default short side 320, as for
            segmentation.
        n_context, temperature, topk, radius, restrict_neighborhood: as for segmentation.

    Returns a :class:`KeypointTrackingResult`: ``keypoints`` (T, K, 2), ``visible`` (T, K).
    """

    task_name = "keypoint-tracking"
    default_short_side = 320
    task_arguments = ("keypoints", "allow_outside", *_LabelPropagationPipeline.task_arguments)

    def check_task_arguments(self, keypoints=None, allow_outside=False, size=None, **params) -> None:
        if keypoints is None:
            raise ValueError("pass keypoints=[(x, y), ...] : pixel coordinates in the first processed frame")
        if not isinstance(allow_outside, (bool, np.bool_)):
            raise ValueError(f"allow_outside must be True or False, got {allow_outside!r}")
        self._check_common(size, **params)

    def prepare_task_inputs(self, frames, keypoints=None, allow_outside=False, size=None, **params):
        self.check_task_arguments(keypoints=keypoints, allow_outside=allow_outside, size=size, **params)
        _, params = self._check_common(size, **params)
        height, width = frames.geometry.input_size
        points = parse_keypoints(keypoints, (height, width), allow_outside)
        processing, grid = self._grid(frames)
        check_topk_fits(params["topk"], params["n_context"], grid)
        heatmap = pose_to_heatmap(points, grid, (height, width))
        return {"heatmap": heatmap, "queries": points.astype(np.float32), "params": params}

    def run(self, frames, heatmap, queries, params) -> dict[str, Any]:
        original = frames.geometry.input_size
        count = len(frames.frame_indices)
        keypoints = np.full((count, len(queries), 2), -1, dtype=np.float32)
        visible = np.zeros((count, len(queries)), dtype=bool)

        def finish(position, prediction):
            coords, seen = heatmap_to_pose(prediction[None], original, topk=POSE_TOPK)
            keypoints[position], visible[position] = coords[0], seen[0]

        self._propagate(frames, heatmap, params, finish)
        return {"keypoints": keypoints, "visible": visible, "queries": queries}

    def make_result(self, common, frames, keypoints, visible, queries) -> KeypointTrackingResult:
        return KeypointTrackingResult(**common, keypoints=keypoints, visible=visible, query_keypoints=queries)


PIPELINE_CLASSES: dict[str, type[VideoPipeline]] = {
    cls.task_name: cls
    for cls in (
        DepthEstimationPipeline,
        PointTrackingPipeline,
        BoxTrackingPipeline,
        CameraPosePipeline,
        FeatureExtractionPipeline,
        VideoReconstructionPipeline,
        VideoObjectSegmentationPipeline,
        KeypointTrackingPipeline,
    )
}


#: The largest query grid (``grid=N``, CLI ``--grid N``): N x N = 4096 points. Every query is
#: tracked through every window (memory and time grow with N^2); denser grids are a mistake more
#: often than not, and a typo such as ``--grid 10000`` would otherwise allocate 10^8 queries.
MAX_GRID_SIZE = 64


def check_grid_size(size: Any) -> int:
    """``size`` as an int if it is a valid query grid size (1 to :data:`MAX_GRID_SIZE`), else a ValueError naming it."""
    number = isinstance(size, (int, np.integer, float, np.floating)) and not isinstance(size, (bool, np.bool_))
    if not number or not np.isfinite(size) or int(size) != size:
        raise ValueError(f"grid must be a whole number of points per side, from 1 to {MAX_GRID_SIZE}; got {size!r}")
    if not 1 <= size <= MAX_GRID_SIZE:
        raise ValueError(
            f"grid {int(size)} is outside 1 to {MAX_GRID_SIZE}: an N x N grid tracks N^2 points, at most "
            f"{MAX_GRID_SIZE}x{MAX_GRID_SIZE} = {MAX_GRID_SIZE**2}; pass explicit points for other layouts"
        )
    return int(size)


def grid_points(size: int, image_size: Sequence[int], frame: int = 0) -> np.ndarray:
    """(size * size, 3) query points (t, x, y) at the centres of an even size x size grid of cells.

    Raises:
        ValueError: ``size`` is not a whole number from 1 to :data:`MAX_GRID_SIZE` (checked before
            anything is allocated).
    """
    size = check_grid_size(size)
    height, width = image_size
    xs = (np.arange(size) + 0.5) * width / size
    ys = (np.arange(size) + 0.5) * height / size
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([np.full(grid_x.size, float(frame)), grid_x.ravel(), grid_y.ravel()], axis=1)


def _describe_indices(indices: np.ndarray) -> str:
    if len(indices) > 1 and (np.diff(indices) == indices[1] - indices[0]).all():
        return f"{indices[0]} to {indices[-1]} every {indices[1] - indices[0]}"
    return f"{len(indices)} frames from {indices[0]} to {indices[-1]}"


def pipeline(
    task: str,
    model: str | os.PathLike | PreTrainedModel,
    *,
    backbone: str | os.PathLike | PreTrainedModel | None = None,
    video_processor: FourDVideoProcessor | None = None,
    device: int | str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    batch_size: int = 1,
    progress: bool = True,
    seed: int = 0,
    **processor_overrides,
) -> VideoPipeline:
    """A pipeline for ``task`` running ``model``.

    Args:
        task: ``"depth-estimation"``, ``"point-tracking"``, ``"box-tracking"``,
            ``"camera-pose-estimation"``, ``"video-feature-extraction"``, ``"video-reconstruction"``,
            ``"video-object-segmentation"`` or ``"keypoint-tracking"`` (aliases:
            ``"video-depth-estimation"``, ``"features"``, ``"vos"``, ...).
        model: a catalog name (``fourd-hub list``), a converted model directory, a Hub repo id or a
            model object.
        backbone: for standalone readout heads: the backbone they read (catalog heads default to
            their base model).
        video_processor: override the preprocessing saved with the model.
        device, dtype, batch_size, progress, seed: see :class:`VideoPipeline`.
        **processor_overrides: processor fields such as ``resize_mode="crop"``.

    Example:

    ```python
    >>> from fourd_hub import pipeline
    >>> depth = pipeline("depth-estimation", model="./4ds-b-dist-e-scannet-depth")("clip.mp4")
    >>> depth.depth.shape            # (T, H, W) metres, at the video's resolution
    >>> depth.save("depth.mp4")      # input | coloured depth, side by side
    ```
    """
    task = canonical_task(task)
    device = resolve_device(device)  # a device that does not exist fails before the model is loaded
    loaded = load_task_model(task, model, backbone=backbone)
    cls = PIPELINE_CLASSES[task]
    if video_processor is None:
        video_processor = _processor_for(loaded)  # load_task_model already returned the task's model
    if processor_overrides:
        values = {**video_processor.to_dict(), **processor_overrides}
        kind = values.pop("video_processor_type")
        video_processor = type(video_processor)(**values) if kind else video_processor
    return cls(
        loaded, video_processor=video_processor, device=device, dtype=dtype, batch_size=batch_size, progress=progress, seed=seed
    )


# ----------------------------------------------------------------------------------------------
# transformers registration: transformers.pipeline("video-depth-estimation", model=dir) works
# after `import fourd_hub`. Names avoid transformers' image tasks ("depth-estimation" is theirs).

TRANSFORMERS_TASK_NAMES = {spec.transformers_pipeline: name for name, spec in TASKS.items() if spec.transformers_pipeline}


def _task_loader(task: str) -> type:
    """A class whose ``from_pretrained`` picks the task model for a directory (what transformers calls)."""

    def from_pretrained(cls, name_or_path, *args, **kwargs):
        kwargs.pop("_from_pipeline", None)
        kwargs.pop("code_revision", None)
        if kwargs.get("dtype") == "auto":
            kwargs.pop("dtype")
        return load_task_model(task, name_or_path, **kwargs)

    return type(f"FourDHubLoader[{task}]", (), {"from_pretrained": classmethod(from_pretrained)})


def register_pipelines() -> None:
    """Register our pipelines with transformers' ``PIPELINE_REGISTRY`` (idempotent)."""
    from transformers.pipelines import PIPELINE_REGISTRY

    for name, task in TRANSFORMERS_TASK_NAMES.items():
        current = PIPELINE_REGISTRY.supported_tasks.get(name)
        if current is not None and current.get("impl") is PIPELINE_CLASSES[task]:
            continue
        PIPELINE_REGISTRY.register_pipeline(name, pipeline_class=PIPELINE_CLASSES[task], pt_model=_task_loader(task), type="video")
