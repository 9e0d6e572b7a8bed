"""Readout training with the Hugging Face ``Trainer``: the evaluation protocol of the paper (A.2).

"Scaling 4D Representations" evaluates a backbone by training a cross-attention readout on top of
it, either with the backbone **frozen** or **fine-tuned** with it (architecture.md section 6):

========================== ============================== ==============================
setting                    frozen                         fine-tuned ("short")
========================== ============================== ==============================
optimizer                  AdamW                          AdamW
learning rate              swept {1e-4, 3e-4, 1e-3}       swept {1e-4, 3e-4}
weight decay               1e-4                           swept {1e-4, 5e-2}
batch size                 32                             32
steps                      40k (1.28M examples)           20k
warmup                     1k, linear from 0              3k, linear from 0
decay                      cosine to 1e-7                 cosine to 1e-7
backbone learning rate     (frozen)                       head lr x 0.003
========================== ============================== ==============================

This module turns that into three pieces:

- :func:`freeze_backbone` (frozen mode) and :func:`readout_training_arguments`, a
  :class:`transformers.TrainingArguments` with the protocol's defaults;
- :class:`ReadoutTrainer`, a :class:`transformers.Trainer` whose optimizer has the head and the
  backbone in separate parameter groups (backbone lr = head lr x ``backbone_lr_scale``, no weight
  decay on biases, norms and position embeddings), whose ``compute_metrics`` is the task's metric
  (:func:`fourd_hub.training.metrics.make_compute_metrics`) and whose evaluation keeps only the
  outputs the metric reads (not the large ``readout_features``);
- :func:`evaluate_readout` (a plain evaluation loop with the same metrics) and simple baselines
  (:func:`mean_depth_baseline`, :func:`static_points_baseline`, ...) that a trained readout has
  to beat to show it learned anything.

Example::

    from fourd_hub.data.synthetic import SyntheticSceneDataset
    from fourd_hub.training.readout import (
        ReadoutTrainer, freeze_backbone, readout_model_from_backbone, readout_training_arguments,
        synthetic_scene_config_for,
    )

    model = freeze_backbone(readout_model_from_backbone("depth", "4ds-b-dist-e"))  # fresh paper head
    scenes = synthetic_scene_config_for(model)  # clips the head fits: 16 x 224 x 224
    train = SyntheticSceneDataset("depth", 1024, scenes, seed=0)
    val = SyntheticSceneDataset("depth", 128, scenes, seed=1)
    args = readout_training_arguments("runs/depth", mode="frozen", learning_rate=3e-4)
    trainer = ReadoutTrainer(model, args, train_dataset=train, eval_dataset=val)  # task inferred
    trainer.train()
    print(trainer.evaluate())  # {"eval_abs_rel": ..., "eval_loss": ...}
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import warnings
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from transformers import EvalPrediction, PreTrainedModel, Trainer, TrainingArguments, default_data_collator

from ..registry import FamilySpec, families, family_of, get_family
from ..tasks import TASKS as TASK_TABLE
from ..tasks import get_task
from .optim import no_weight_decay_parameter_names
from .metrics import abs_rel, average_jaccard, make_compute_metrics, pose_end_point_error, top1_accuracy

logger = logging.getLogger(__name__)

__all__ = [
    "backbone_attributes",
    "HEADLINE_METRICS",
    "LARGE_OUTPUT_KEYS",
    "PAPER_PROTOCOL",
    "READOUT_MODES",
    "TASKS",
    "TASK_LABEL_NAMES",
    "ReadoutTrainer",
    "backbone_parameters",
    "baseline_metric",
    "evaluate_readout",
    "format_metrics",
    "freeze_backbone",
    "head_parameters",
    "identity_pose_baseline",
    "majority_class_baseline",
    "mean_depth_baseline",
    "no_weight_decay_parameter_names",
    "readout_model_from_backbone",
    "readout_parameter_groups",
    "readout_task_of",
    "readout_training_arguments",
    "run_readout_example",
    "static_boxes_baseline",
    "static_points_baseline",
    "synthetic_scene_config_for",
    "tiny_fourds_config",
    "tiny_readout_config",
]

READOUT_MODES = ("frozen", "finetune")

# Paper A.2 (architecture.md section 6). Learning rates and weight decays are the swept values;
# our defaults pick lr 3e-4 (in both sweeps; the paper's point-tracking readout uses it) and wd 1e-4.
PAPER_PROTOCOL: dict[str, dict[str, Any]] = {
    "frozen": dict(
        learning_rates=(1e-4, 3e-4, 1e-3), weight_decays=(1e-4,), batch_size=32, max_steps=40_000,
        warmup_steps=1_000, min_lr=1e-7, backbone_lr_scale=0.0,
    ),
    "finetune": dict(
        learning_rates=(1e-4, 3e-4), weight_decays=(1e-4, 5e-2), batch_size=32, max_steps=20_000,
        warmup_steps=3_000, min_lr=1e-7, backbone_lr_scale=0.003,
    ),
}

# The readout tasks, by their training key (fourd_hub.tasks: "pose" is camera-pose-estimation,
# whose readout config says "camera_pose"): every task of the table with a metric.
TASKS = tuple(spec.key for spec in TASK_TABLE.values() if spec.metric is not None)

# Which batch keys are labels. The Trainer infers this from the forward signature (every argument
# with "label" in its name), which happens to be right for our models; we set it explicitly so
# evaluation never depends on that heuristic: points need both tensors for Average Jaccard.
TASK_LABEL_NAMES: dict[str, tuple[str, ...]] = {
    "depth": ("labels",),
    "points": ("labels", "visibility_labels"),
    "boxes": ("labels",),
    "pose": ("labels",),
    "classification": ("labels",),
}

# Output fields never gathered during evaluation: the readout features are (B, T, N, D) per clip
# (the whole backbone output), the rest are intermediates the metrics do not read. What remains,
# in output order, is exactly what make_compute_metrics expects: depth -> predicted_depth,
# points -> (tracks, visible), boxes -> boxes, pose -> pose, classification -> logits.
LARGE_OUTPUT_KEYS = (
    "readout_features", "normalized_tracks", "normalized_boxes", "logits_visible", "logits_certainty", "raw_pose", "state",
)

# The metric each task is judged by, and whether higher is better (the task table's).
HEADLINE_METRICS: dict[str, tuple[str, bool]] = {spec.key: spec.metric for spec in TASK_TABLE.values() if spec.metric is not None}


def backbone_attributes() -> tuple[str, ...]:
    """Where task models keep their backbone: the ``base_model_prefix`` of each family (registry)."""
    return tuple(spec.load("pretrained_model").base_model_prefix for spec in families())

# Parameter names (last component) that are learned position embeddings, in space or time: the
# backbone's (t, h, w) table and the readouts' temporal embeddings. Pretraining omitted them from
# weight decay (paper A.1) and decaying a position table towards 0 only erases positions.


# ----------------------------------------------------------------------------------------------
# Tasks, backbone and head


def _canonical_task(task: str) -> str:
    """The training key of ``task`` (any spelling of the task table) among :data:`TASKS`."""
    try:
        key = get_task(task).key
    except KeyError:
        key = None
    if key not in TASKS:
        raise ValueError(f"unknown readout task {task!r}; expected one of {TASKS} (or another spelling of them, e.g. 'camera_pose')")
    return key


def readout_task_of(model: nn.Module, task: str | None = None) -> str:
    """The metric task of a task model (``"depth"``, ``"points"``, ``"boxes"``, ``"pose"``, ``"classification"``).

    Args:
        model: a fourd_hub task model (it names its head's task in ``readout_task``).
        task: the task you expect; checked against the model's when both are known.

    Raises:
        ValueError: unknown task, a model without a readout task and no ``task``, or a mismatch.
    """
    model_task = getattr(model, "readout_task", None) or None
    if task is None:
        if model_task is None:
            raise ValueError(
                f"cannot tell the readout task of a {type(model).__name__}; pass task= (one of {TASKS}) "
                "or use a fourd_hub task model (e.g. FourDSForDepthEstimation)"
            )
        return _canonical_task(model_task)
    task = _canonical_task(task)
    if model_task is not None and _canonical_task(model_task) != task:
        raise ValueError(
            f"task {task!r} does not match the model: {type(model).__name__} is a {_canonical_task(model_task)!r} model"
        )
    return task


def _backbone_and_head(model: nn.Module) -> tuple[str, nn.Module, nn.Module]:
    """(attribute name, backbone, head) of a task model, or a clear error."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a fourd_hub task model (torch.nn.Module), got {type(model).__name__}")
    prefixes = backbone_attributes()
    name = next((n for n in prefixes if isinstance(getattr(model, n, None), nn.Module)), None)
    head = getattr(model, "head", None)
    fix = (
        "readout training needs a fourd_hub task model such as FourDSForDepthEstimation or MooGForPointTracking "
        "(a backbone plus a head). Build one from a backbone with "
        "fourd_hub.training.readout.readout_model_from_backbone(task, backbone)."
    )
    if name is None and head is None and getattr(model, "base_model_prefix", None) in prefixes:
        raise ValueError(f"{type(model).__name__} is a bare backbone without a readout head: {fix}")
    if name is None or not isinstance(head, nn.Module):
        missing = " and ".join(
            what for what, absent in ((f"a backbone ({' / '.join('.' + p for p in prefixes)})", name is None), ("a readout head (.head)", head is None))
            if absent
        )
        raise ValueError(f"{type(model).__name__} lacks {missing}: {fix}")
    return name, getattr(model, name), head


def _split_named_parameters(model: nn.Module) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
    """(backbone, head) named parameters; "head" is everything outside the backbone."""
    name, _, _ = _backbone_and_head(model)
    prefix = name + "."
    backbone, head = [], []
    for param_name, param in model.named_parameters():
        (backbone if param_name.startswith(prefix) else head).append((param_name, param))
    return backbone, head


def backbone_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The backbone's parameters (``model.fourds`` / ``model.moog``), trainable or not."""
    return [p for _, p in _split_named_parameters(model)[0]]


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter outside the backbone: the readout head's."""
    return [p for _, p in _split_named_parameters(model)[1]]


def freeze_backbone(model: nn.Module, freeze: bool = True) -> nn.Module:
    """Freeze (or unfreeze) the backbone of a task model; the head stays trainable.

    Frozen parameters get ``requires_grad=False``: the optimizer of :class:`ReadoutTrainer` leaves
    them out and autograd records nothing through the backbone (no activation memory), since its
    input needs no gradient either.

    The frozen backbone still runs in training mode while the Trainer trains (it calls
    ``model.train()``). That changes nothing here: no 4DS or MooG module uses dropout or batch
    statistics, so a frozen backbone computes exactly its evaluation-mode features.

    Args:
        model: a task model with a backbone (``.fourds`` / ``.moog``) and a head (``.head``).
        freeze: ``False`` makes the backbone trainable again (fine-tuning).

    Returns:
        The same model, for chaining.

    Raises:
        ValueError: the model has no backbone or no head.
    """
    _, backbone, head = _backbone_and_head(model)
    backbone.requires_grad_(not freeze)
    head.requires_grad_(True)
    return model


def readout_parameter_groups(
    model: nn.Module, learning_rate: float, weight_decay: float, backbone_lr_scale: float = 0.003
) -> list[dict[str, Any]]:
    """AdamW parameter groups of the protocol: head at ``learning_rate``, backbone scaled.

    Only trainable parameters (``requires_grad``) are included, so a frozen backbone has no group.
    Each group carries a ``"name"``: ``"head"``, ``"head_no_decay"``, ``"backbone"``,
    ``"backbone_no_decay"`` (empty groups are left out; the head comes first, so the Trainer logs
    the head's learning rate). A learning-rate schedule multiplies every group's initial ``lr``
    by the same factor, so the backbone/head ratio holds at every step.

    Args:
        model: a task model (see :func:`freeze_backbone`).
        learning_rate: the head's peak learning rate.
        weight_decay: AdamW weight decay of the decayed groups.
        backbone_lr_scale: backbone learning rate / head learning rate (paper: 0.003).

    Raises:
        ValueError: no trainable parameter at all, or a negative scale.
    """
    if backbone_lr_scale < 0:
        raise ValueError(f"backbone_lr_scale must be >= 0, got {backbone_lr_scale}")
    backbone, head = _split_named_parameters(model)
    exempt = no_weight_decay_parameter_names(model)
    groups = []
    for part, named, lr in (("head", head, learning_rate), ("backbone", backbone, learning_rate * backbone_lr_scale)):
        decay = [p for n, p in named if p.requires_grad and n not in exempt]
        no_decay = [p for n, p in named if p.requires_grad and n in exempt]
        if decay:
            groups.append({"name": part, "params": decay, "lr": lr, "weight_decay": weight_decay})
        if no_decay:
            groups.append({"name": f"{part}_no_decay", "params": no_decay, "lr": lr, "weight_decay": 0.0})
    if not groups:
        raise ValueError(
            f"{type(model).__name__} has no trainable parameter: the head is frozen too. "
            "Call freeze_backbone(model) (frozen mode) or freeze_backbone(model, False) (fine-tuning) first."
        )
    return groups


# ----------------------------------------------------------------------------------------------
# Training arguments


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def readout_training_arguments(
    output_dir: str | os.PathLike,
    *,
    mode: str = "frozen",
    learning_rate: float = 3e-4,
    weight_decay: float | None = None,
    max_steps: int | None = None,
    warmup_steps: int | None = None,
    per_device_train_batch_size: int = 32,
    min_lr: float = 1e-7,
    **overrides: Any,
) -> TrainingArguments:
    """``TrainingArguments`` of the paper's readout protocol (A.2), frozen or fine-tuned.

    AdamW (default betas 0.9 / 0.999), linear warmup from 0, then cosine decay down to ``min_lr``
    (``lr_scheduler_type="cosine_with_min_lr"``). Use with :class:`ReadoutTrainer`, which puts
    the backbone (fine-tuning) at ``learning_rate * backbone_lr_scale``; in fine-tuning the
    backbone's schedule ends at ``min_lr * backbone_lr_scale`` (the whole schedule is scaled).

    Args:
        output_dir: where checkpoints and logs go.
        mode: ``"frozen"`` (head only; call :func:`freeze_backbone`) or ``"finetune"``.
        learning_rate: the head's peak learning rate (paper sweeps {1e-4, 3e-4, 1e-3} frozen,
            {1e-4, 3e-4} fine-tuned).
        weight_decay: AdamW weight decay; default 1e-4 (fine-tuning sweeps {1e-4, 5e-2}).
        max_steps: optimizer steps; default 40,000 frozen, 20,000 fine-tuned (batch 32).
        warmup_steps: linear warmup steps from a learning rate of 0. Default: 1,000 frozen /
            3,000 fine-tuned at the default ``max_steps``; for another ``max_steps``, the same
            fraction of it (2.5% / 15%), so short runs still decay.
        per_device_train_batch_size: batch size per device (paper: 32 in total).
        min_lr: the learning rate at the end of the cosine decay (paper: 1e-7).
        **overrides: any other ``TrainingArguments`` field; they win over the defaults here
            (e.g. ``eval_strategy="steps"``, ``save_strategy="no"``, ``bf16=True``).

    Defaults beyond the protocol: ``remove_unused_columns=False`` (datasets return exactly the
    model's inputs, including the point queries), ``report_to="none"``, logging every
    ``max_steps / 20`` steps (at most 100), a checkpoint every quarter of the run (the last 2
    kept), no evaluation during training (pass ``eval_strategy`` and an ``eval_dataset``),
    evaluation batch size = training batch size. HF's ``max_grad_norm=1.0`` is kept (the paper
    does not say).

    Raises:
        ValueError: unknown mode, or a non-positive step count, learning rate or batch size.
    """
    if mode not in READOUT_MODES:
        raise ValueError(f"mode must be one of {READOUT_MODES}, got {mode!r}")
    protocol = PAPER_PROTOCOL[mode]
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if not 0 <= min_lr < learning_rate:
        raise ValueError(f"min_lr must be in [0, learning_rate={learning_rate}), got {min_lr}")
    weight_decay = 1e-4 if weight_decay is None else weight_decay
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    _positive_int("per_device_train_batch_size", per_device_train_batch_size)
    if max_steps is None:
        max_steps = protocol["max_steps"]
    _positive_int("max_steps", max_steps)
    if warmup_steps is None:
        warmup_steps = round(max_steps * protocol["warmup_steps"] / protocol["max_steps"])
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or not 0 <= warmup_steps <= max_steps:
        # An int, not HF's float "ratio if < 1" convention: the protocol counts steps.
        raise ValueError(f"warmup_steps must be an integer in [0, max_steps={max_steps}], got {warmup_steps!r}")
    values: dict[str, Any] = dict(
        output_dir=str(output_dir),
        max_steps=max_steps,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        warmup_steps=warmup_steps,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr": min_lr},
        optim="adamw_torch",
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        per_device_train_batch_size=per_device_train_batch_size,
        per_device_eval_batch_size=per_device_train_batch_size,
        remove_unused_columns=False,
        report_to="none",
        logging_strategy="steps",
        logging_steps=max(1, min(100, max_steps // 20)),
        logging_first_step=True,
        eval_strategy="no",
        save_strategy="steps",
        save_steps=max(1, max_steps // 4),
        save_total_limit=2,
        # Pinned memory only helps (and only exists) with an accelerator; on CPU torch warns each epoch.
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    values.update(overrides)
    return TrainingArguments(**values)


# ----------------------------------------------------------------------------------------------
# The trainer


class ReadoutTrainer(Trainer):
    """A :class:`transformers.Trainer` for readouts on fourd_hub backbones (paper A.2 protocol).

    On top of the Trainer it:

    - builds AdamW parameter groups (:func:`readout_parameter_groups`): head at
      ``args.learning_rate``, trainable backbone parameters at ``learning_rate *
      backbone_lr_scale``, frozen ones left out, no weight decay on biases, norms and position
      embeddings. The scheduler scales every group alike, so the ratio holds at every step;
    - sets ``compute_metrics`` to the task's metric when none is given (``make_compute_metrics``);
    - sets ``label_names`` for the task (points: ``labels`` and ``visibility_labels``) unless
      ``args.label_names`` is set;
    - drops the large outputs (:data:`LARGE_OUTPUT_KEYS`) from evaluation, so only what the metric
      reads is gathered.
    - treats the model's loss as a per-batch mean: our forwards accept ``**kwargs``, which the
      Trainer would take for "the model normalises by ``num_items_in_batch`` itself" and then skip
      the division by the gradient-accumulation steps.

    Args:
        model: a fourd_hub task model (backbone + head). Freeze the backbone with
            :func:`freeze_backbone` for frozen evaluation; leave it trainable to fine-tune.
        args: training arguments, e.g. from :func:`readout_training_arguments`.
        task: ``"depth"``, ``"points"``, ``"boxes"``, ``"pose"`` (or ``"camera_pose"``) or
            ``"classification"``; inferred from the model when ``None``.
        backbone_lr_scale: backbone learning rate / head learning rate (paper: 0.003). Irrelevant
            when the backbone is frozen.
        metric_kwargs: keyword arguments of the task's metric (e.g. ``thresholds_in`` for
            points), used when ``compute_metrics`` is not given; the points metric's
            ``image_size`` defaults to ``model.config.image_size``.
        **kwargs: every other ``Trainer`` keyword (``train_dataset``, ``eval_dataset``,
            ``callbacks``, ``compute_metrics``, ``optimizers`` ...).
    """

    def __init__(
        self,
        model: PreTrainedModel | None = None,
        args: TrainingArguments | None = None,
        *,
        task: str | None = None,
        backbone_lr_scale: float = 0.003,
        metric_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if model is None:
            raise ValueError(
                "ReadoutTrainer needs a model (model_init is not supported: build one trainer per sweep point)"
            )
        if kwargs.get("model_init") is not None:
            raise ValueError("ReadoutTrainer does not support model_init; pass the model itself")
        _backbone_and_head(model)  # a clear error now rather than deep inside train()
        if not backbone_lr_scale >= 0:
            raise ValueError(f"backbone_lr_scale must be >= 0, got {backbone_lr_scale}")
        self.task = readout_task_of(model, task)
        self.backbone_lr_scale = float(backbone_lr_scale)
        if kwargs.get("compute_metrics") is None:
            kwargs["compute_metrics"] = make_compute_metrics(self.task, **_metric_kwargs_for(model, metric_kwargs))
        elif metric_kwargs:
            raise ValueError("metric_kwargs only apply to the default compute_metrics; pass one or the other")
        super().__init__(model=model, args=args, **kwargs)
        if self.args.label_names is None:
            self.label_names = list(TASK_LABEL_NAMES[self.task])
        # Our losses are per-batch means; see the class docstring.
        self.model_accepts_loss_kwargs = False
        backbone, head = _split_named_parameters(model)
        trainable = sum(p.numel() for _, p in backbone if p.requires_grad)
        logger.info(
            "readout training (%s): %d head parameters, %d trainable backbone parameters%s",
            self.task, sum(p.numel() for _, p in head if p.requires_grad), trainable,
            f" at lr x {self.backbone_lr_scale}" if trainable else " (frozen)",
        )

    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        exempt = no_weight_decay_parameter_names(model)
        return [name for name, _ in model.named_parameters() if name not in exempt]

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        opt_model = self.model if model is None else model
        if self.optimizer is None:
            groups = readout_parameter_groups(
                opt_model, self.args.learning_rate, self.args.weight_decay, self.backbone_lr_scale
            )
            if self.optimizer_cls_and_kwargs is not None:
                optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs
            else:
                optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            builds_own_groups = {"params", "model", "optimizer_dict"} & set(optimizer_kwargs)
            if builds_own_groups or not isinstance(optimizer_cls, type):
                raise ValueError(
                    f"optim={self.args.optim!r} builds its own parameter groups, which would lose the head/backbone "
                    "learning rates; use an AdamW-style optimizer (readout_training_arguments uses 'adamw_torch')"
                )
            # `lr` in the kwargs stays the optimizer default (= the head's lr): the cosine_with_min_lr
            # schedule reads it to turn min_lr into a ratio.
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor | None, Any, Any]:
        if ignore_keys is None:
            ignore_keys = list(getattr(getattr(self.model, "config", None), "keys_to_ignore_at_inference", None) or [])
        ignore_keys = list(ignore_keys) + [key for key in LARGE_OUTPUT_KEYS if key not in ignore_keys]
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)


# ----------------------------------------------------------------------------------------------
# Evaluation without the Trainer


def _metric_kwargs_for(model: nn.Module, metric_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """``metric_kwargs`` plus the clips' size from the model's config (``clip_size``: the points
    metric rescales to TAP-Vid's 256 x 256 from it), unless the caller set one."""
    kwargs = dict(metric_kwargs or {})
    image_size = getattr(getattr(model, "config", None), "image_size", None)
    if image_size is not None:
        kwargs.setdefault("clip_size", tuple(int(v) for v in image_size))
    return kwargs


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _predictions(output: Any) -> tuple[torch.Tensor, ...]:
    """The fields of a task-model output that the metrics read (see :data:`LARGE_OUTPUT_KEYS`)."""
    return tuple(
        value.detach().float().cpu() if value.is_floating_point() else value.detach().cpu()
        for key, value in output.items()
        if key != "loss" and key not in LARGE_OUTPUT_KEYS and isinstance(value, torch.Tensor)
    )


@torch.no_grad()
def evaluate_readout(
    model: nn.Module,
    dataset: Dataset,
    task: str | None = None,
    batch_size: int = 8,
    *,
    metric_kwargs: dict[str, Any] | None = None,
    collate_fn: Callable[[list], dict[str, Any]] | None = None,
) -> dict[str, float]:
    """Metrics of a task model on a dataset: a plain loop, the same metrics as :class:`ReadoutTrainer`.

    The model runs in evaluation mode on its own device (its previous mode is restored).

    Args:
        model: a fourd_hub task model.
        dataset: map-style dataset of model inputs and labels (e.g. ``SyntheticSceneDataset``).
        task: the task; inferred from the model when ``None``.
        batch_size: evaluation batch size.
        metric_kwargs: keyword arguments of the task's metric (see ``make_compute_metrics``).
        collate_fn: batches items; default ``transformers.default_data_collator`` (as the Trainer).

    Returns:
        The task's metrics (e.g. ``{"abs_rel": ...}``) plus ``"loss"``, the mean loss per clip.
    """
    task = readout_task_of(model, task)
    _positive_int("batch_size", batch_size)
    if len(dataset) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    compute_metrics = make_compute_metrics(task, **_metric_kwargs_for(model, metric_kwargs))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn or default_data_collator)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    predictions, labels, loss_sum, count = [], [], 0.0, 0
    try:
        for batch in loader:
            missing = [name for name in TASK_LABEL_NAMES[task] if name not in batch]
            if missing:
                raise ValueError(f"the {task!r} dataset items lack {missing}; evaluation needs labels")
            output = model(**_to_device(batch, device), return_dict=True)
            size = len(batch[TASK_LABEL_NAMES[task][0]])
            predictions.append(_predictions(output))
            labels.append(tuple(batch[name].cpu() for name in TASK_LABEL_NAMES[task]))
            if output.get("loss") is not None:
                loss_sum += float(output["loss"]) * size
            count += size
    finally:
        model.train(was_training)
    stacked_predictions = tuple(torch.cat(parts) for parts in zip(*predictions))
    stacked_labels = tuple(torch.cat(parts) for parts in zip(*labels))
    metrics = compute_metrics(
        EvalPrediction(
            predictions=stacked_predictions[0] if len(stacked_predictions) == 1 else stacked_predictions,
            label_ids=stacked_labels[0] if len(stacked_labels) == 1 else stacked_labels,
        )
    )
    metrics["loss"] = loss_sum / count
    return metrics


# ----------------------------------------------------------------------------------------------
# Baselines: what a readout must beat to have learned anything


def _stack(dataset: Dataset, key: str) -> torch.Tensor:
    if len(dataset) == 0:
        raise ValueError("the dataset is empty")
    try:
        return torch.stack([torch.as_tensor(dataset[i][key]) for i in range(len(dataset))])
    except KeyError:
        raise ValueError(f"dataset items have no {key!r}; is this the right task's dataset?") from None


def mean_depth_baseline(
    train_dataset: Dataset, eval_dataset: Dataset, *, valid_range: tuple[float, float] = (0.001, 10.0)
) -> float:
    """AbsRel on ``eval_dataset`` of predicting the train set's mean valid depth at every pixel.

    Args:
        train_dataset, eval_dataset: depth datasets (``labels`` (T, H, W) metres per item).
        valid_range: target depths that count, in the mean and in AbsRel (paper: (0.001, 10) m).
    """
    train = _stack(train_dataset, "labels").double()
    valid = (train > valid_range[0]) & (train < valid_range[1])
    if not valid.any():
        raise ValueError(f"no training depth inside {valid_range}")
    mean = train[valid].mean()
    target = _stack(eval_dataset, "labels")
    return abs_rel(torch.full_like(target, float(mean)), target, valid_range=valid_range)


def static_points_baseline(dataset: Dataset, **metric_kwargs: Any) -> float:
    """Average Jaccard of predicting every point where it was queried, always visible.

    A strong-ish baseline for short clips: points that barely move score well at the large
    thresholds. Same protocol as the metric of :func:`make_compute_metrics` ("points": queries
    on frame 0, which is not evaluated).

    Args:
        dataset: a points dataset (``query_points`` (Q, 2), ``labels`` (T, Q, 2),
            ``visibility_labels`` (T, Q) per item).
        **metric_kwargs: keyword arguments of ``average_jaccard``; ``image_size`` (for the
            256 x 256 thresholds) defaults to the items' ``pixel_values_videos`` frame size.
    """
    if metric_kwargs.get("image_size") is None and len(dataset) and "pixel_values_videos" in dataset[0]:
        metric_kwargs["image_size"] = tuple(int(v) for v in dataset[0]["pixel_values_videos"].shape[-2:])
    queries = _stack(dataset, "query_points").float()
    tracks = _stack(dataset, "labels").float()
    visible = _stack(dataset, "visibility_labels").bool()
    prediction = queries[:, None].expand_as(tracks)
    query_frames = torch.zeros(tracks.shape[0], tracks.shape[2], dtype=torch.long)
    result = average_jaccard(
        prediction, torch.ones_like(visible), tracks, visible, query_frames=query_frames, **metric_kwargs
    )
    return result["average_jaccard"]


def static_boxes_baseline(dataset: Dataset) -> float:
    """Mean IoU (frames after the first) of predicting every box where it was queried.

    Args:
        dataset: a boxes dataset (``query_boxes`` (K, 4), ``labels`` (T, K, 4) per item).
    """
    queries = _stack(dataset, "query_boxes").float()
    boxes = _stack(dataset, "labels").float()
    compute = make_compute_metrics("boxes")  # the same padding rules as the trained readout's
    return compute((queries[:, None].expand_as(boxes), boxes))["mean_iou"]


def identity_pose_baseline(dataset: Dataset) -> float:
    """End-point error of predicting "the camera did not move" (identity pose) for every clip.

    Args:
        dataset: a pose dataset (``labels`` (4, 4) per item).
    """
    poses = _stack(dataset, "labels").double()
    identity = torch.eye(4, dtype=poses.dtype).expand_as(poses)
    return pose_end_point_error(identity, poses)


def majority_class_baseline(train_dataset: Dataset, eval_dataset: Dataset) -> float:
    """Top-1 accuracy on ``eval_dataset`` of always predicting the most frequent training class.

    Args:
        train_dataset, eval_dataset: classification datasets (``labels`` () int per item).
    """
    train = _stack(train_dataset, "labels").long()
    target = _stack(eval_dataset, "labels").long()
    num_classes = int(max(train.max(), target.max())) + 1
    majority = int(torch.bincount(train, minlength=num_classes).argmax())
    logits = torch.zeros(len(target), num_classes)
    logits[:, majority] = 1.0
    return top1_accuracy(logits, target)


def baseline_metric(task: str, train_dataset: Dataset, eval_dataset: Dataset) -> tuple[str, float]:
    """(description, value) of the task's simple baseline, in the task's headline metric.

    depth: train-mean depth (AbsRel); points: static points (AJ); boxes: static boxes (mIoU);
    pose: identity pose (EPE); classification: majority class (top-1).
    """
    task = _canonical_task(task)
    if task == "depth":
        return "predict the train set's mean depth", mean_depth_baseline(train_dataset, eval_dataset)
    if task == "points":
        return "static points (every track stays at its query, visible)", static_points_baseline(eval_dataset)
    if task == "boxes":
        return "static boxes (every box stays at its query)", static_boxes_baseline(eval_dataset)
    if task == "pose":
        return "identity pose (the camera does not move)", identity_pose_baseline(eval_dataset)
    return "majority class of the train set", majority_class_baseline(train_dataset, eval_dataset)


# ----------------------------------------------------------------------------------------------
# Building task models (examples, tests, sweeps)


def tiny_fourds_config(num_frames: int = 8, image_size: Sequence[int] = (32, 32), **overrides: Any):
    """A 4DS small enough to train readouts on a CPU in seconds (random weights: mechanics only).

    Width 32, 3 blocks, 4 heads, 2x8x8 tubelets. A random backbone says nothing about 4DS: it
    shows that the training loop works, not what a pretrained backbone's features are worth.
    """
    from fourd_hub import FourDSConfig

    values: dict[str, Any] = dict(
        hidden_size=32, num_hidden_layers=3, intermediate_size=64, num_attention_heads=4,
        patch_size=[2, 8, 8], num_frames=num_frames, image_size=list(image_size),
    )
    values.update(overrides)
    return FourDSConfig(**values)


def tiny_readout_config(task: str, width: int = 64) -> dict[str, Any]:
    """Readout overrides (``config.readout``) for a fast head of ``width`` channels.

    The paper's heads are 768-1024 wide with 512-wide query MLPs; these keep the same structure
    at a fraction of the cost, for CPU demos and tests. One change for points: no certainty
    logit. A point counts as visible when ``sigmoid(visible) * sigmoid(certain) > 0.5``, and
    "certain" is trained to mean "within 6/256 of the image size" (6 px at 256 px); on 32 px
    clips that is under a pixel, so a small readout is never certain and would call every
    point occluded (Average Jaccard 0). Without it, visibility is ``sigmoid(visible) > 0.5``.
    """
    task = _canonical_task(task)
    values: dict[str, Any] = dict(num_params=width, num_heads=4)
    if task in ("points", "boxes"):
        values.update(query_mlp_sizes=(width, width), query_fourier_bases=8)
    if task == "points":
        values.update(use_certainty=False)
    return values


def synthetic_scene_config_for(model: nn.Module, **overrides: Any):
    """A ``SyntheticSceneConfig`` whose clips fit the model (its config's frames and image size).

    Heads are tied to the clip size they were built for (the depth head predicts exactly
    ``num_frames x image_size``; every head has a ``num_frames``-long temporal embedding).

    Args:
        model: a task model of either family.
        **overrides: other ``SyntheticSceneConfig`` fields (``num_points``, ``num_objects`` ...).
    """
    from fourd_hub.data.synthetic import SyntheticSceneConfig

    config = model.config
    height, width = config.image_size
    return SyntheticSceneConfig(
        **{"num_frames": config.num_frames, "height": int(height), "width": int(width), **overrides}
    )


def _model_classes(family: FamilySpec) -> dict[str, type]:
    """The family's task models by training key (the tasks with a readout metric)."""
    return {get_task(task).key: family.task_model(task) for task in family.tasks if get_task(task).key in TASKS}


def _load_backbone(backbone: Any) -> Any:
    """A model instance or a config (random weights) for a name, directory, config or model."""
    from fourd_hub import from_pretrained
    from fourd_hub.hub import catalog_entry_for

    if isinstance(backbone, (str, os.PathLike)):
        entry = catalog_entry_for(backbone)
        if entry is not None and not entry.has_weights:
            warnings.warn(
                f"{entry.name} is a config-only catalog entry (no released weights): using RANDOM weights at that size",
                stacklevel=3,
            )
            return get_family(entry.family).load("config_class").from_pretrained(entry.name)
        return from_pretrained(backbone, use_safetensors=True)
    return backbone


def readout_model_from_backbone(
    task: str,
    backbone: Any,
    *,
    readout: dict[str, Any] | None = None,
    **config_overrides: Any,
) -> PreTrainedModel:
    """A task model (fresh head) on a backbone: weights copied, config carried over.

    Args:
        task: ``"depth"``, ``"points"``, ``"boxes"``, ``"pose"``/``"camera_pose"`` or
            ``"classification"`` (MooG: depth, points, boxes).
        backbone: a ``FourDSConfig``/``MooGConfig`` (random weights), a model of either family
            (backbone or task model: its backbone's weights are used), or a catalog name,
            directory or Hub repo id (loaded with ``fourd_hub.from_pretrained``; a config-only
            catalog name such as ``"4ds-b"`` gives random weights, with a warning).
        readout: head hyper-parameters (``ReadoutConfig`` fields; MooG depth: the depth decoder's
            ``MooGPixelDecoderSpec`` fields); default the task's paper head.
        **config_overrides: config fields to set, e.g. ``num_labels=4`` / ``id2label`` for
            classification.

    Returns:
        The task model, its head freshly initialised, on the backbone's device and dtype. The
        head is tied to the config's clip size (``num_frames``, ``image_size``): train on clips of
        that size.
    """
    task = _canonical_task(task)
    source = _load_backbone(backbone)
    try:
        family = family_of(source)
    except KeyError:
        raise TypeError(
            f"backbone must be a fourd_hub config or model, or a name/directory, got {type(source).__name__}"
        ) from None
    classes = _model_classes(family)
    if task not in classes:
        raise ValueError(f"there is no {family.display_name} {task!r} task model; {family.display_name} has {sorted(classes)}")
    cls = classes[task]
    if isinstance(source, PreTrainedModel):
        weights = source.base_model  # a task model's backbone, or the backbone itself
        config = copy.deepcopy(weights.config)
    else:
        config = copy.deepcopy(source)
        weights = None
    if hasattr(cls, "from_backbone"):  # the family builds its task models on a backbone itself
        if config_overrides:
            raise ValueError(f"config overrides {sorted(config_overrides)} are not supported for {family.display_name} task models")
        if weights is None:
            weights = family.load("base_model")(config)
        return cls.from_backbone(weights, readout=readout)
    config.readout = dict(readout) if readout is not None else None
    config.architectures = None
    for key, value in config_overrides.items():
        setattr(config, key, value)
    if weights is None:
        return cls(config)
    with torch.device("meta"):
        model = cls(config)
    model = model.to_empty(device=weights.device)
    model.base_model.load_state_dict(weights.state_dict(), strict=True)
    model.head.apply(model._init_weights)
    return model.to(weights.dtype)


def format_metrics(metrics: dict[str, float], keys: Iterable[str] | None = None) -> str:
    """``"abs_rel 0.1234, loss 0.5678"``: selected (default all) metrics for printing."""
    keys = list(metrics) if keys is None else [k for k in keys if k in metrics]
    return ", ".join(f"{k} {metrics[k]:.4f}" if isinstance(metrics[k], float) else f"{k} {metrics[k]}" for k in keys)



# ----------------------------------------------------------------------------------------------
# Example scripts


def run_readout_example(
    task: str,
    description: str,
    argv: Sequence[str] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    backbone_help: str = "backbone: catalog name, directory or Hub repo id (default: tiny random 4DS)",
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    config_overrides: Mapping[str, Any] | None = None,
    scene_overrides: Mapping[str, Any] | None = None,
    make_dataset: Callable[..., Dataset] | None = None,
    describe_train: Callable[[Dataset], str] | None = None,
) -> dict[str, Any]:
    """The command line of the ``examples/train_*_readout.py`` scripts: train one readout on synthetic scenes.

    Parses the shared flags (``--model``, ``--frozen``/``--finetune``, ``--steps``, ``--batch-size``,
    ``--lr``, ``--train-scenes``, ``--eval-scenes``, ``--frames``, ``--size``, ``--readout-width``,
    ``--output-dir``, ``--seed``), builds the task model (a tiny random 4DS without ``--model``),
    renders disjoint train and eval scenes at the model's clip size, prints the baseline and the
    headline metric before and after a :class:`ReadoutTrainer` run, and saves the model with
    ``save_pretrained`` to ``--output-dir``.

    Args:
        task: the readout task (see :data:`TASKS`).
        description: the parser's description (the script's docstring's first line).
        argv: command-line arguments; default ``sys.argv[1:]``.
        defaults: flag defaults to override (argparse ``dest`` names, e.g. ``{"eval_scenes": 32}``).
        backbone_help: help text of ``--model``.
        add_arguments: called with the parser to add task-specific flags.
        config_overrides: passed to :func:`readout_model_from_backbone` (e.g. ``id2label``).
        scene_overrides: passed to :func:`synthetic_scene_config_for` (e.g. ``num_points=1``).
        make_dataset: ``make_dataset(num_scenes, scene_config, seed=seed)`` builds a dataset;
            default a ``SyntheticSceneDataset`` of ``task``.
        describe_train: returns a note on the training set, printed after the task's name.

    Returns:
        ``{"args", "model", "baseline", "before", "after"}``: the parsed arguments, the trained
        model, the baseline's headline metric and the eval metrics before and after training.
    """
    from fourd_hub.data.synthetic import SyntheticSceneDataset

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", help=backbone_help)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--frozen", dest="mode", action="store_const", const="frozen", help="train the head only (default)")
    mode.add_argument("--finetune", dest="mode", action="store_const", const="finetune", help="train the backbone too (lr x 0.003)")
    parser.set_defaults(mode="frozen")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps (paper: 40k frozen, 20k fine-tuned)")
    parser.add_argument("--batch-size", type=int, default=8, help="paper: 32")
    parser.add_argument("--lr", type=float, default=1e-3, help="head learning rate (paper sweeps 1e-4, 3e-4, 1e-3)")
    parser.add_argument("--train-scenes", type=int, default=64)
    parser.add_argument("--eval-scenes", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8, help="tiny backbone only: clip length")
    parser.add_argument("--size", type=int, default=32, help="tiny backbone only: frame height and width")
    parser.add_argument("--readout-width", type=int, help="head width (default: 64 for the tiny backbone, the paper's with --model)")
    parser.add_argument("--output-dir", default=f"readout-{task}")
    parser.add_argument("--seed", type=int, default=0)
    if add_arguments is not None:
        add_arguments(parser)
    if defaults:
        parser.set_defaults(**defaults)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    if args.model:
        print(f"backbone: {args.model}")
        backbone = args.model
    else:
        print("!!! backbone: a tiny 4DS with RANDOM weights: this run shows the mechanics only, not what 4DS "
              "features are worth. Pass --model 4ds-b-dist-e (or a directory) for a real backbone.")
        backbone = tiny_fourds_config(args.frames, (args.size, args.size))
    width = args.readout_width or (None if args.model else 64)
    readout = tiny_readout_config(task, width) if width else None
    model = readout_model_from_backbone(task, backbone, readout=readout, **(config_overrides or {}))
    if args.mode == "frozen":
        freeze_backbone(model)

    scenes = synthetic_scene_config_for(model, **(scene_overrides or {}))
    if make_dataset is None:
        def make_dataset(num_scenes: int, config: Any, seed: int = 0) -> Dataset:
            return SyntheticSceneDataset(task, num_scenes, config, seed=seed)
    train = make_dataset(args.train_scenes, scenes, seed=args.seed)
    val = make_dataset(args.eval_scenes, scenes, seed=args.seed + 1)  # disjoint scenes
    metric = HEADLINE_METRICS[_canonical_task(task)][0]
    name = f"task {task} ({describe_train(train)})" if describe_train is not None else f"task {task}"
    print(f"{name}, {args.mode} backbone, {args.steps} steps of batch {args.batch_size} at lr {args.lr}, "
          f"{len(train)} train / {len(val)} eval synthetic scenes of {scenes.num_frames}x{scenes.height}x{scenes.width}")

    baseline_description, baseline = baseline_metric(task, train, val)
    print(f"baseline ({baseline_description}): {metric} {baseline:.4f}")
    before = evaluate_readout(model, val)
    print(f"before training: {format_metrics(before, [metric, 'loss'])}")

    training_args = readout_training_arguments(
        args.output_dir, mode=args.mode, learning_rate=args.lr, max_steps=args.steps,
        per_device_train_batch_size=args.batch_size, seed=args.seed, save_strategy="no",
        logging_steps=max(1, args.steps // 5), disable_tqdm=True,
    )
    ReadoutTrainer(model, training_args, train_dataset=train).train()

    after = evaluate_readout(model, val)
    print(f"after training: {format_metrics(after, [metric, 'loss'])}")
    model.save_pretrained(args.output_dir)
    print(f"saved {type(model).__name__} to {args.output_dir} (load it with fourd_hub.from_pretrained)")
    return {"args": args, "model": model, "baseline": baseline, "before": before, "after": after}
