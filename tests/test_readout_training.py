"""Readout training with the HF Trainer (paper A.2 protocol): learning on synthetic scenes with a
frozen backbone, the fine-tuning optimizer and schedule, weight decay groups, baselines, errors,
and the training examples."""

from __future__ import annotations

import math
import runpy
import sys

import pytest
import torch
from transformers import TrainerCallback

import fourd_hub
from fourd_hub import FourDSForDepthEstimation, FourDSModel, MooGConfig, MooGForPointTracking
from fourd_hub.data.synthetic import SyntheticSceneConfig, SyntheticSceneDataset
from fourd_hub.training.metrics import abs_rel
from fourd_hub.training.readout import (
    LARGE_OUTPUT_KEYS,
    ReadoutTrainer,
    backbone_parameters,
    evaluate_readout,
    freeze_backbone,
    head_parameters,
    identity_pose_baseline,
    majority_class_baseline,
    mean_depth_baseline,
    readout_model_from_backbone,
    readout_parameter_groups,
    readout_task_of,
    readout_training_arguments,
    static_boxes_baseline,
    static_points_baseline,
    synthetic_scene_config_for,
    tiny_fourds_config,
    tiny_readout_config,
)

from conftest import REPO_ROOT, tiny_moog_kwargs

pytestmark = pytest.mark.training

FRAMES, SIZE = 8, 32
SCENES = SyntheticSceneConfig(num_frames=FRAMES, height=SIZE, width=SIZE, num_points=32)


def _model(task: str, seed: int = 0, **config):
    torch.manual_seed(seed)
    return readout_model_from_backbone(task, tiny_fourds_config(FRAMES, (SIZE, SIZE), **config), readout=tiny_readout_config(task))


def _args(tmp_path, **overrides):
    values = dict(
        max_steps=150, learning_rate=1e-3, per_device_train_batch_size=8, save_strategy="no",
        logging_strategy="no", logging_first_step=False, disable_tqdm=True, seed=0,
    )
    values.update(overrides)
    return readout_training_arguments(tmp_path / "run", **values)


def _backbone_state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.fourds.state_dict().items()}


@pytest.fixture(scope="module")
def depth_data():
    return SyntheticSceneDataset("depth", 32, SCENES, seed=0), SyntheticSceneDataset("depth", 16, SCENES, seed=1)


@pytest.fixture(scope="module")
def points_data():
    return SyntheticSceneDataset("points", 32, SCENES, seed=0), SyntheticSceneDataset("points", 16, SCENES, seed=1)


# ----------------------------------------------------------------------------------------------
# Learning with a frozen backbone


def test_frozen_depth_readout_beats_untrained_and_mean_depth(depth_data, tmp_path):
    train, val = depth_data
    model = freeze_backbone(_model("depth"))
    frozen = _backbone_state(model)
    head_before = [p.detach().clone() for p in head_parameters(model)]
    untrained = evaluate_readout(model, val)["abs_rel"]
    baseline = mean_depth_baseline(train, val)

    trainer = ReadoutTrainer(model, _args(tmp_path), train_dataset=train, eval_dataset=val)
    assert trainer.task == "depth" and trainer.label_names == ["labels"]
    assert trainer.model_accepts_loss_kwargs is False  # per-batch mean losses: divided under gradient accumulation
    trainer.train()
    trained = evaluate_readout(model, val)["abs_rel"]

    # Measured (seeds 0-4): untrained 1.00 (a fresh head predicts ~0 m), mean depth 0.435, trained 0.245-0.250.
    assert trained < 0.5 * untrained, (trained, untrained)
    assert trained < 0.8 * baseline, (trained, baseline)
    for key, value in model.fourds.state_dict().items():
        assert torch.equal(value, frozen[key]), f"frozen backbone weight {key} changed"
    assert all(not torch.equal(p, q) for p, q in zip(head_parameters(model), head_before) if p.numel() > 1)

    # The Trainer's evaluation gathers the depth only (no readout features) and agrees with the plain loop.
    predictions = trainer.predict(val)
    assert isinstance(predictions.predictions, type(predictions.label_ids))  # one array each, not tuples
    assert predictions.predictions.shape == (len(val), FRAMES, SIZE, SIZE)
    assert predictions.metrics["test_abs_rel"] == pytest.approx(trained, rel=1e-5)


def test_mean_depth_baseline_predicts_the_train_mean(depth_data):
    train, val = depth_data
    labels = torch.stack([train[i]["labels"] for i in range(len(train))]).double()
    mean = labels[(labels > 0.001) & (labels < 10.0)].mean()
    target = torch.stack([val[i]["labels"] for i in range(len(val))])
    assert mean_depth_baseline(train, val) == pytest.approx(abs_rel(torch.full_like(target, float(mean)), target))


def test_frozen_point_readout_beats_untrained(points_data, tmp_path):
    train, val = points_data
    model = freeze_backbone(_model("points"))
    frozen = _backbone_state(model)
    # Clip-pixel thresholds: at 32 x 32 the TAP-Vid default (1-16 px at 256 x 256) is 1/8-2 clip
    # pixels, too strict for a tiny readout trained for a few steps to show its progress.
    clip_pixels = {"thresholds_in": "clip"}
    untrained = evaluate_readout(model, val, metric_kwargs=clip_pixels)

    trainer = ReadoutTrainer(model, _args(tmp_path), train_dataset=train)
    assert trainer.task == "points" and trainer.label_names == ["labels", "visibility_labels"]
    trainer.train()
    trained = evaluate_readout(model, val, metric_kwargs=clip_pixels)
    tapvid = evaluate_readout(model, val)  # the default: thresholds at 256 x 256

    # Measured (seeds 0-4): untrained AJ 0 (visible nowhere) and 0.28 of points within the thresholds
    # (tracks near the image centre); trained AJ 0.44-0.46, 0.59-0.61 within; static points AJ 0.51.
    assert trained["average_jaccard"] > untrained["average_jaccard"] + 0.25, (trained, untrained)
    assert trained["average_pts_within_thresh"] > untrained["average_pts_within_thresh"] + 0.2  # positions, not only visibility
    assert 0.2 < static_points_baseline(val, thresholds_in="clip") < 1.0
    # 8x finer thresholds than the clip's pixels: stricter (measured 0.048 against 0.44).
    assert tapvid["average_jaccard"] < trained["average_jaccard"]
    for key, value in model.fourds.state_dict().items():
        assert torch.equal(value, frozen[key]), f"frozen backbone weight {key} changed"

    # Evaluation keeps (tracks, visible) and both label tensors, nothing else.
    output = trainer.predict(torch.utils.data.Subset(val, range(4)))
    tracks, visible = output.predictions
    assert tracks.shape == (4, FRAMES, SCENES.num_points, 2) and visible.dtype == bool
    assert len(output.label_ids) == 2 and output.label_ids[1].shape == (4, FRAMES, SCENES.num_points)
    assert "test_average_jaccard" in output.metrics


def test_moog_point_readout_trains_with_a_frozen_backbone(tmp_path):
    torch.manual_seed(0)
    config = MooGConfig(**tiny_moog_kwargs(num_frames=8))
    model = freeze_backbone(readout_model_from_backbone("points", config, readout=tiny_readout_config("points", 32)))
    assert isinstance(model, MooGForPointTracking) and readout_task_of(model) == "points"
    frozen = {k: v.clone() for k, v in model.moog.state_dict().items()}
    scenes = synthetic_scene_config_for(model, num_points=8)
    assert (scenes.num_frames, scenes.height, scenes.width) == (8, 16, 12)
    data = SyntheticSceneDataset("points", 4, scenes, seed=0)
    ReadoutTrainer(model, _args(tmp_path, max_steps=3, per_device_train_batch_size=2), train_dataset=data).train()
    assert all(torch.equal(v, frozen[k]) for k, v in model.moog.state_dict().items())
    assert 0.0 <= evaluate_readout(model, data, batch_size=2)["average_jaccard"] <= 1.0


# ----------------------------------------------------------------------------------------------
# Fine-tuning: optimizer groups and schedule


class _RecordLearningRates(TrainerCallback):
    """The learning rate of every parameter group for each optimizer step, as the step uses it."""

    def __init__(self):
        self.steps: list[dict[str, float]] = []

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        self.steps.append({group["name"]: group["lr"] for group in optimizer.param_groups})


def test_finetuning_scales_the_backbone_lr_at_every_step_and_follows_the_schedule(depth_data, tmp_path):
    train, _ = depth_data
    model = _model("depth")  # backbone trainable
    before = _backbone_state(model)
    lr, min_lr, steps, warmup = 1e-3, 1e-5, 12, 4
    args = _args(tmp_path, mode="finetune", learning_rate=lr, min_lr=min_lr, max_steps=steps, warmup_steps=warmup,
                 per_device_train_batch_size=4, logging_strategy="steps", logging_steps=1)
    record = _RecordLearningRates()
    trainer = ReadoutTrainer(model, args, train_dataset=train, callbacks=[record])
    trainer.train()

    assert any(not torch.equal(v, before[k]) for k, v in model.fourds.state_dict().items()), "fine-tuning left the backbone unchanged"
    assert len(record.steps) == steps
    assert set(record.steps[0]) == {"head", "head_no_decay", "backbone", "backbone_no_decay"}
    for lrs in record.steps:
        assert lrs["head"] == lrs["head_no_decay"] and lrs["backbone"] == lrs["backbone_no_decay"]
        assert lrs["backbone"] == pytest.approx(0.003 * lrs["head"], rel=1e-12, abs=0.0)
    # Linear warmup from 0, the peak at the end of warmup, cosine down to min_lr at the last step.
    assert record.steps[0]["head"] == 0.0
    assert record.steps[warmup // 2]["head"] == pytest.approx(lr / 2)
    assert record.steps[warmup]["head"] == pytest.approx(lr)
    assert all(a > b for a, b in zip([s["head"] for s in record.steps[warmup:]], [s["head"] for s in record.steps[warmup + 1:]]))
    schedule = trainer.lr_scheduler
    assert [lr * schedule.lr_lambdas[0](step) for step in (0, warmup, steps)] == pytest.approx([0.0, lr, min_lr])
    final = {group["name"]: group["lr"] for group in trainer.optimizer.param_groups}
    assert final["head"] == pytest.approx(min_lr) and final["backbone"] == pytest.approx(0.003 * min_lr)
    # What the Trainer logs as learning_rate is the head's.
    logged = [entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry]
    assert logged and all(any(v == pytest.approx(s["head"]) for s in record.steps + [final]) for v in logged)


def test_protocol_defaults():
    frozen = readout_training_arguments("out")
    assert (frozen.max_steps, frozen.warmup_steps, frozen.learning_rate, frozen.weight_decay) == (40_000, 1_000, 3e-4, 1e-4)
    assert frozen.lr_scheduler_type == "cosine_with_min_lr" and frozen.lr_scheduler_kwargs == {"min_lr": 1e-7}
    assert frozen.per_device_train_batch_size == 32 and frozen.remove_unused_columns is False
    assert (frozen.adam_beta1, frozen.adam_beta2) == (0.9, 0.999)
    finetune = readout_training_arguments("out", mode="finetune", weight_decay=5e-2)
    assert (finetune.max_steps, finetune.warmup_steps, finetune.weight_decay) == (20_000, 3_000, 5e-2)
    # Shorter runs keep the protocol's warmup fraction; overrides pass through.
    short = readout_training_arguments("out", max_steps=400, bf16=False, logging_steps=7)
    assert short.warmup_steps == 10 and short.logging_steps == 7
    assert readout_training_arguments("out", mode="finetune", max_steps=400).warmup_steps == 60


# ----------------------------------------------------------------------------------------------
# Weight decay


def test_no_weight_decay_on_biases_norms_and_position_embeddings():
    model = _model("points")
    names = {id(p): n for n, p in model.named_parameters()}
    groups = readout_parameter_groups(model, learning_rate=1e-3, weight_decay=0.05)
    decayed = {names[id(p)] for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    exempt = {names[id(p)] for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert decayed | exempt == set(names.values()) and not decayed & exempt
    assert "fourds.embeddings.position_embedding" in exempt
    assert {"head.readout.temporal_embedding", "head.temporal_tile_embedding"} <= exempt
    modules = dict(model.named_modules())
    for name in exempt:
        owner = modules[name.rsplit(".", 1)[0]]
        assert name.endswith(("bias", "embedding")) or isinstance(owner, torch.nn.LayerNorm), name
    for name, module in modules.items():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv3d)):
            assert f"{name}.weight" in decayed and (module.bias is None or f"{name}.bias" in exempt)
        if isinstance(module, torch.nn.LayerNorm):
            assert {f"{name}.weight", f"{name}.bias"} <= exempt
    # The groups of the trainer's optimizer are these; frozen parameters are left out.
    frozen_groups = readout_parameter_groups(freeze_backbone(model), 1e-3, 0.05)
    assert [g["name"] for g in frozen_groups] == ["head", "head_no_decay"]
    in_groups = {id(p) for g in frozen_groups for p in g["params"]}
    assert in_groups == {id(p) for p in head_parameters(model)}
    assert not in_groups & {id(p) for p in backbone_parameters(model)}


# ----------------------------------------------------------------------------------------------
# Baselines and model building


def test_baselines_are_perfect_on_static_scenes():
    static = SyntheticSceneConfig(num_frames=4, height=16, width=16, num_points=8, camera_motion=False, object_motion=False)
    assert static_points_baseline(SyntheticSceneDataset("points", 2, static)) == pytest.approx(1.0)
    assert static_boxes_baseline(SyntheticSceneDataset("boxes", 2, static)) == pytest.approx(1.0)
    assert identity_pose_baseline(SyntheticSceneDataset("pose", 2, static)) == pytest.approx(0.0, abs=1e-5)
    labels = [{"labels": torch.tensor(v)} for v in (0, 2, 2, 1)]
    assert majority_class_baseline(labels, [{"labels": torch.tensor(v)} for v in (2, 1)]) == 0.5


def test_readout_model_from_backbone_copies_the_backbone(tmp_path):
    torch.manual_seed(0)
    backbone = FourDSModel(tiny_fourds_config(FRAMES, (SIZE, SIZE)))
    backbone.save_pretrained(tmp_path / "backbone")
    for source in (backbone, str(tmp_path / "backbone")):
        model = readout_model_from_backbone("pose", source, readout=tiny_readout_config("pose"))
        assert type(model).__name__ == "FourDSForCameraPoseEstimation"
        for key, value in backbone.state_dict().items():
            assert torch.equal(model.fourds.state_dict()[key], value), key
        assert all(torch.isfinite(p).all() for p in head_parameters(model))
    classifier = readout_model_from_backbone("classification", backbone, readout=tiny_readout_config("classification"), num_labels=3)
    assert classifier.head.readout.output_proj.out_features == 3
    with pytest.raises(ValueError, match="no MooG 'pose' task model"):
        readout_model_from_backbone("pose", MooGConfig(**tiny_moog_kwargs(num_frames=8)))


# ----------------------------------------------------------------------------------------------
# Errors


def test_bad_inputs_are_refused_with_clear_errors(tmp_path, depth_data):
    with pytest.raises(ValueError, match="mode must be one of"):
        readout_training_arguments(tmp_path, mode="linear-probe")
    with pytest.raises(ValueError, match="warmup_steps"):
        readout_training_arguments(tmp_path, max_steps=10, warmup_steps=20)
    with pytest.raises(ValueError, match="max_steps"):
        readout_training_arguments(tmp_path, max_steps=0)
    with pytest.raises(ValueError, match="min_lr"):
        readout_training_arguments(tmp_path, learning_rate=1e-4, min_lr=1e-3)

    backbone = FourDSModel(tiny_fourds_config(FRAMES, (SIZE, SIZE)))
    with pytest.raises(ValueError, match=r"FourDSModel is a bare backbone without a readout head.*readout_model_from_backbone"):
        freeze_backbone(backbone)
    with pytest.raises(ValueError, match="lacks a backbone"):
        freeze_backbone(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="bare backbone"):
        ReadoutTrainer(backbone, _args(tmp_path), task="depth")

    model = _model("depth")
    with pytest.raises(ValueError, match="does not match the model"):
        ReadoutTrainer(model, _args(tmp_path), task="points")
    with pytest.raises(ValueError, match="unknown readout task"):
        readout_task_of(model, "segmentation")
    with pytest.raises(ValueError, match="backbone_lr_scale"):
        ReadoutTrainer(model, _args(tmp_path), backbone_lr_scale=-1.0)
    with pytest.raises(ValueError, match="metric_kwargs"):
        ReadoutTrainer(model, _args(tmp_path), compute_metrics=lambda p: {}, metric_kwargs={"valid_range": (0, 5)})
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        readout_parameter_groups(model, 1e-3, 0.0)
    with pytest.raises(ValueError, match="lack \\['labels'\\]"):
        evaluate_readout(model, SyntheticSceneDataset("video", 2, SCENES))


# ----------------------------------------------------------------------------------------------
# Examples


EXAMPLES = {
    "train_depth_readout.py": ("FourDSForDepthEstimation", "abs_rel"),
    "train_point_tracking_readout.py": ("FourDSForPointTracking", "average_jaccard"),
    "train_box_tracking_readout.py": ("FourDSForBoxTracking", "mean_iou"),
    "train_camera_pose_readout.py": ("FourDSForCameraPoseEstimation", "end_point_error"),
    "train_video_classification_readout.py": ("FourDSForVideoClassification", "top1"),
}


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_training_example_runs_and_saves_a_loadable_model(script, tmp_path, monkeypatch, capsys):
    class_name, metric = EXAMPLES[script]
    output_dir = tmp_path / "model"
    argv = [script, "--steps", "3", "--batch-size", "2", "--train-scenes", "4", "--eval-scenes", "4", "--output-dir", str(output_dir)]
    if script == "train_depth_readout.py":
        argv.append("--finetune")
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(REPO_ROOT / "examples" / script), run_name="__main__")
    out = capsys.readouterr().out
    assert "RANDOM weights" in out
    for line in ("baseline (", "before training:", "after training:"):
        assert f"{line}" in out and metric in out.split(line, 1)[1].splitlines()[0], (line, out)
    values = [float(v) for v in (line.split(f"{metric} ")[1].split(",")[0] for line in out.splitlines() if f"{metric} " in line)]
    assert len(values) == 3 and all(math.isfinite(v) for v in values)
    loaded = fourd_hub.from_pretrained(output_dir)
    assert type(loaded).__name__ == class_name
    assert ("finetune backbone" if "--finetune" in argv else "frozen backbone") in out


def test_large_outputs_are_exactly_the_fields_the_metrics_do_not_read():
    model = _model("depth")
    assert isinstance(model, FourDSForDepthEstimation)
    output_fields = set(type(model(torch.rand(1, FRAMES, 3, SIZE, SIZE))).__dataclass_fields__)
    assert output_fields - set(LARGE_OUTPUT_KEYS) == {"loss", "predicted_depth"}
