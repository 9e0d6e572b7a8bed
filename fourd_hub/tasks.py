"""The task vocabulary: one table of every task fourd_hub knows, and the only place that spells them.

Each :class:`TaskSpec` names a task once (``name``, the canonical spelling, as ``fourd_hub.pipeline``
takes it) and lists the other spellings each part of the ecosystem uses: the readout configs'
``task`` (``ReadoutConfig.task``), the training / metrics key, the name registered with
``transformers.pipeline`` (which owns the image tasks such as ``"depth-estimation"``), the CLI command,
the Hub's pipeline tag and the headline metric. Pipelines, the CLI, model cards, training and
the Auto registration read this table; :func:`get_task` accepts any of the spellings.

Imports nothing of fourd_hub (and no torch): the CLI and the registry read it at no cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TASKS", "TaskSpec", "get_task", "task_names"]


@dataclass(frozen=True)
class TaskSpec:
    """One task.

    Attributes:
        name: canonical name (``"depth-estimation"``): ``fourd_hub.pipeline``, the registry's
            task-model tables and the conformance suite use it.
        key: the short key of training, metrics and datasets (``"depth"``, ``"pose"``).
        readout_key: the ``task`` a readout head's :class:`~fourd_hub.readout.ReadoutConfig`
            stores in ``config.json`` (``"camera_pose"``); ``None`` for tasks without a readout head.
        aliases: other accepted spellings.
        transformers_pipeline: the name registered with ``transformers.pipeline`` (``None``: not
            registered: no fourd_hub pipeline).
        cli: the ``fourd-hub`` command running the pipeline (``None``: no command).
        has_pipeline: ``fourd_hub.pipeline(name)`` exists.
        hub_tag: the tag of the task on model cards.
        pipeline_tag: the Hub's ``pipeline_tag``, only where the Hub has a *video* task that fits
            (``video-classification``). The Hub's ``depth-estimation``, ``keypoint-detection``,
            ``object-detection`` and ``feature-extraction`` tags bring an image (or text) widget and
            inference API that would send a single image (or a sentence) to a video model, so
            those cards carry none; the task stays searchable through ``hub_tag`` and ``video``.
        metric: the headline metric and whether higher is better (``None``: no metric).
        auto_class: the transformers Auto class whose registry takes the task model
            (``None``: transformers has no Auto class for the task).
        output_extensions: what the CLI can write for the task's result (``""`` = PNG frames).
        description: one line for listings and docs.
    """

    name: str
    key: str
    readout_key: str | None
    aliases: tuple[str, ...] = ()
    transformers_pipeline: str | None = None
    cli: str | None = None
    has_pipeline: bool = True
    hub_tag: str = ""
    pipeline_tag: str | None = None
    metric: tuple[str, bool] | None = None
    auto_class: str | None = None
    output_extensions: tuple[str, ...] = field(default=(".mp4", ".npz", ""))
    description: str = ""

    @property
    def spellings(self) -> tuple[str, ...]:
        """Every name that refers to this task."""
        names = (self.name, self.key, self.readout_key, self.transformers_pipeline, self.cli, *self.aliases)
        return tuple(dict.fromkeys(n for n in names if n))


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="depth-estimation", key="depth", readout_key="depth", aliases=("video-depth-estimation",),
            transformers_pipeline="video-depth-estimation", cli="depth-estimation", hub_tag="depth-estimation",
            metric=("abs_rel", False), auto_class="AutoModelForDepthEstimation",
            description="depth (T, H, W) in metres per frame",
        ),
        TaskSpec(
            name="point-tracking", key="points", readout_key="points", transformers_pipeline="point-tracking",
            cli="point-tracking", hub_tag="point-tracking",
            metric=("average_jaccard", True), output_extensions=(".mp4", ".npz", ".json", ""),
            description="tracks (T, Q, 2) pixel (x, y) + visibility",
        ),
        TaskSpec(
            name="box-tracking", key="boxes", readout_key="boxes", transformers_pipeline="box-tracking",
            cli="box-tracking", hub_tag="box-tracking", metric=("mean_iou", True),
            output_extensions=(".mp4", ".npz", ".json", ""), description="boxes (T, Q, 4) pixel (x1, y1, x2, y2)",
        ),
        TaskSpec(
            # The Hub has no camera-pose tag: those cards carry none.
            name="camera-pose-estimation", key="pose", readout_key="camera_pose", aliases=("camera-pose",),
            transformers_pipeline="camera-pose-estimation", cli="camera-pose-estimation",
            hub_tag="camera-pose-estimation", metric=("end_point_error", False),
            output_extensions=(".mp4", ".npz", ".json", ""), description="4x4 poses at key frames, chained",
        ),
        TaskSpec(
            name="video-classification", key="classification", readout_key="classification",
            has_pipeline=False, hub_tag="video-classification", pipeline_tag="video-classification",
            metric=("top1", True), auto_class="AutoModelForVideoClassification", output_extensions=(),
            description="class logits of a clip",
        ),
        TaskSpec(
            name="video-feature-extraction", key="features", readout_key=None, aliases=("feature-extraction",),
            transformers_pipeline="video-feature-extraction", cli="features", hub_tag="feature-extraction",
            auto_class="AutoModel", output_extensions=(".npz",),
            description="per-frame features (layout documented per family)",
        ),
        TaskSpec(
            # Label propagation along the backbone's grid features (no trained head, no metric here:
            # the readout training reads `metric`; J&F is fourd_hub.evaluation's). The Hub's
            # image-segmentation tag would bring an image widget: none.
            name="video-object-segmentation", key="segmentation", readout_key=None, aliases=("vos",),
            transformers_pipeline="video-object-segmentation", cli="video-object-segmentation",
            hub_tag="video-object-segmentation", output_extensions=("", ".mp4", ".npz"),
            description="label maps (T, H, W) propagated from a first-frame mask",
        ),
        TaskSpec(
            # The same propagation for keypoints (JHMDB pose propagation); keypoint-detection is an image tag.
            name="keypoint-tracking", key="keypoints", readout_key=None, aliases=("pose-propagation",),
            transformers_pipeline="keypoint-tracking", cli="keypoint-tracking", hub_tag="keypoint-tracking",
            output_extensions=(".mp4", ".npz", ".json", ""),
            description="keypoints (T, K, 2) pixel (x, y) + visibility, propagated from the first frame",
        ),
        TaskSpec(
            # The Hub has no next-frame-prediction tag.
            name="video-reconstruction", key="reconstruction", readout_key=None,
            transformers_pipeline="video-reconstruction", cli="video-reconstruction", hub_tag="video-reconstruction",
            description="predicted frames (T, H, W, 3)",
        ),
    )
}

_LOOKUP: dict[str, str] = {}
for _spec in TASKS.values():
    for _spelling in _spec.spellings:
        if _LOOKUP.setdefault(_spelling, _spec.name) != _spec.name:  # pragma: no cover - a table typo
            raise RuntimeError(f"task spelling {_spelling!r} names two tasks")


def get_task(task: str | TaskSpec) -> TaskSpec:
    """The task ``task`` names, in any of its spellings; a clear error lists the tasks.

    Raises:
        KeyError: unknown task.
    """
    if isinstance(task, TaskSpec):
        return task
    name = _LOOKUP.get(task) if isinstance(task, str) else None
    if name is None:
        raise KeyError(f"unknown task {task!r}; fourd_hub tasks: {', '.join(TASKS)}")
    return TASKS[name]


def task_names(*, pipelines_only: bool = False) -> list[str]:
    """Canonical task names (only those with a pipeline when ``pipelines_only``)."""
    return [name for name, spec in TASKS.items() if spec.has_pipeline or not pipelines_only]
