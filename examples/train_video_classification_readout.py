#!/usr/bin/env python
"""Train a video-classification readout (paper A.2.1) on synthetic scenes with the Hugging Face Trainer.

    python examples/train_video_classification_readout.py                     # tiny random 4DS, CPU, seconds
    python examples/train_video_classification_readout.py --model 4ds-b-dist-e --steps 40000 --batch-size 32 --lr 3e-4

The paper's classification benchmark is Something-Something v2 (174 actions, not bundled). Here
the classes are how the camera moves over the clip, computed from the exact relative pose of the
last frame's camera to the first's (`relative_pose`): it moves left or right (sign of the
translation along the first camera's x axis) and turns left or right (sign of the yaw), 4
classes, roughly balanced. Telling them apart needs motion, not appearance.

Without --model the backbone is a tiny 4DS with RANDOM weights: the run shows the mechanics
(frozen backbone, the protocol's optimizer and schedule, metrics, saving), not what 4DS features
are worth. --model takes a 4DS catalog name (`fourd-hub list`), a directory or a Hub repo id; the
clips are then rendered at the backbone's frames and resolution, and the head is the paper's.

Prints top-1 accuracy on held-out scenes before and after training, and the accuracy of always
predicting the most frequent training class (the baseline to beat). Saves the trained model with
`save_pretrained` to --output-dir.
"""

from __future__ import annotations

import argparse
import math

import torch
from torch.utils.data import Dataset

from fourd_hub.data.synthetic import SyntheticSceneDataset
from fourd_hub.training.readout import (
    HEADLINE_METRICS,
    ReadoutTrainer,
    baseline_metric,
    evaluate_readout,
    format_metrics,
    freeze_backbone,
    readout_model_from_backbone,
    readout_training_arguments,
    synthetic_scene_config_for,
    tiny_fourds_config,
    tiny_readout_config,
)

TASK = "classification"
CLASS_NAMES = ("move left, turn left", "move left, turn right", "move right, turn left", "move right, turn right")


def camera_motion_class(pose: torch.Tensor) -> int:
    """Class of a (4, 4) relative pose (last camera in the first camera's OpenCV frame: x right, z forward).

    Translation x > 0: the camera moved right. Yaw > 0: its optical axis (the rotation's third
    column, (R02, R12, R22)) swung towards +x, i.e. it turned right.
    """
    moved_right = bool(pose[0, 3] > 0)
    turned_right = math.atan2(float(pose[0, 2]), float(pose[2, 2])) > 0
    return 2 * moved_right + turned_right


class CameraMotionDataset(Dataset):
    """Synthetic clips labelled by camera motion: items ``pixel_values_videos`` (T, 3, H, W), ``labels`` () int64."""

    def __init__(self, num_scenes: int, config, seed: int = 0):
        # The "pose" task renders the same scenes and gives their relative pose as labels.
        self.scenes = SyntheticSceneDataset("pose", num_scenes, config, seed=seed)

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = self.scenes[i]
        label = camera_motion_class(item["labels"])
        return {"pixel_values_videos": item["pixel_values_videos"], "labels": torch.tensor(label, dtype=torch.long)}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="4DS backbone: catalog name, directory or Hub repo id (default: tiny random 4DS)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--frozen", dest="mode", action="store_const", const="frozen", help="train the head only (default)")
    mode.add_argument("--finetune", dest="mode", action="store_const", const="finetune", help="train the backbone too (lr x 0.003)")
    parser.set_defaults(mode="frozen")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps (paper: 40k frozen, 20k fine-tuned)")
    parser.add_argument("--batch-size", type=int, default=8, help="paper: 32")
    parser.add_argument("--lr", type=float, default=1e-3, help="head learning rate (paper sweeps 1e-4, 3e-4, 1e-3)")
    parser.add_argument("--train-scenes", type=int, default=64)
    parser.add_argument("--eval-scenes", type=int, default=32)
    parser.add_argument("--frames", type=int, default=8, help="tiny backbone only: clip length")
    parser.add_argument("--size", type=int, default=32, help="tiny backbone only: frame height and width")
    parser.add_argument("--readout-width", type=int, help="head width (default: 64 for the tiny backbone, the paper's with --model)")
    parser.add_argument("--output-dir", default="readout-classification")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def build_model(args: argparse.Namespace):
    if args.model:
        print(f"backbone: {args.model}")
        backbone = args.model
    else:
        print("!!! backbone: a tiny 4DS with RANDOM weights: this run shows the mechanics only, not what 4DS "
              "features are worth. Pass --model 4ds-b-dist-e (or a directory) for a real backbone.")
        backbone = tiny_fourds_config(args.frames, (args.size, args.size))
    width = args.readout_width or (None if args.model else 64)
    readout = tiny_readout_config(TASK, width) if width else None
    labels = dict(enumerate(CLASS_NAMES))
    return readout_model_from_backbone(
        TASK, backbone, readout=readout, id2label=labels, label2id={name: i for i, name in labels.items()}
    )


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    model = build_model(args)
    if args.mode == "frozen":
        freeze_backbone(model)

    scenes = synthetic_scene_config_for(model, num_points=1)  # no tracks needed
    train = CameraMotionDataset(args.train_scenes, scenes, seed=args.seed)
    val = CameraMotionDataset(args.eval_scenes, scenes, seed=args.seed + 1)  # disjoint scenes
    metric = HEADLINE_METRICS[TASK][0]
    counts = torch.bincount(torch.stack([train[i]["labels"] for i in range(len(train))]), minlength=len(CLASS_NAMES))
    print(f"task {TASK} ({len(CLASS_NAMES)} camera motions, train counts {counts.tolist()}), {args.mode} backbone, "
          f"{args.steps} steps of batch {args.batch_size} at lr {args.lr}, {len(train)} train / {len(val)} eval "
          f"synthetic scenes of {scenes.num_frames}x{scenes.height}x{scenes.width}")

    description, value = baseline_metric(TASK, train, val)
    print(f"baseline ({description}): {metric} {value:.4f}")
    print(f"before training: {format_metrics(evaluate_readout(model, val), [metric, 'loss'])}")

    training_args = readout_training_arguments(
        args.output_dir, mode=args.mode, learning_rate=args.lr, max_steps=args.steps,
        per_device_train_batch_size=args.batch_size, seed=args.seed, save_strategy="no",
        logging_steps=max(1, args.steps // 5), disable_tqdm=True,
    )
    ReadoutTrainer(model, training_args, train_dataset=train).train()

    print(f"after training: {format_metrics(evaluate_readout(model, val), [metric, 'loss'])}")
    model.save_pretrained(args.output_dir)
    print(f"saved {type(model).__name__} to {args.output_dir} (load it with fourd_hub.from_pretrained)")


if __name__ == "__main__":
    main()
