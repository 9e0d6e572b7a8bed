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

import math

import torch
from torch.utils.data import Dataset

from fourd_hub.data.synthetic import SyntheticSceneDataset
from fourd_hub.training.readout import run_readout_example

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


def describe_train(train: Dataset) -> str:
    counts = torch.bincount(torch.stack([train[i]["labels"] for i in range(len(train))]), minlength=len(CLASS_NAMES))
    return f"{len(CLASS_NAMES)} camera motions, train counts {counts.tolist()}"


def main(argv=None) -> None:
    labels = dict(enumerate(CLASS_NAMES))
    run_readout_example(
        TASK, __doc__.splitlines()[0], argv,
        defaults={"eval_scenes": 32},
        backbone_help="4DS backbone: catalog name, directory or Hub repo id (default: tiny random 4DS)",
        config_overrides={"id2label": labels, "label2id": {name: i for i, name in labels.items()}},
        scene_overrides={"num_points": 1},  # no tracks needed
        make_dataset=CameraMotionDataset,
        describe_train=describe_train,
    )


if __name__ == "__main__":
    main()
