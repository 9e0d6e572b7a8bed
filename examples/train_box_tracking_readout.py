#!/usr/bin/env python
"""Train a box-tracking readout (paper A.2.4) on synthetic scenes with the Hugging Face Trainer.

    python examples/train_box_tracking_readout.py                                   # tiny random 4DS, CPU, seconds
    python examples/train_box_tracking_readout.py --model 4ds-b-dist-e --steps 40000 --batch-size 32 --lr 3e-4

Without --model the backbone is a tiny 4DS with RANDOM weights: the run shows the mechanics
(frozen backbone, the protocol's optimizer and schedule, metrics, saving), not what 4DS features
are worth. --model takes a catalog name (`fourd-hub list`; MooG backbones such as moog-ego4d work
too), a directory or a Hub repo id; the clips are then rendered at the backbone's frames and
resolution, and the head is the paper's.

Prints the mean IoU (frames after the first, where the query boxes are given) on held-out
scenes before and after training, and the IoU of "static boxes" (every box stays where it was
queried): the baseline to beat. Saves the trained model with `save_pretrained` to --output-dir.
"""

from __future__ import annotations

import argparse

import torch

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

TASK = "boxes"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="backbone: catalog name, directory or Hub repo id (default: tiny random 4DS)")
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
    parser.add_argument("--output-dir", default="readout-boxes")
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
    return readout_model_from_backbone(TASK, backbone, readout=readout)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    model = build_model(args)
    if args.mode == "frozen":
        freeze_backbone(model)

    scenes = synthetic_scene_config_for(model)
    train = SyntheticSceneDataset(TASK, args.train_scenes, scenes, seed=args.seed)
    val = SyntheticSceneDataset(TASK, args.eval_scenes, scenes, seed=args.seed + 1)  # disjoint scenes
    metric = HEADLINE_METRICS[TASK][0]
    print(f"task {TASK}, {args.mode} backbone, {args.steps} steps of batch {args.batch_size} at lr {args.lr}, "
          f"{len(train)} train / {len(val)} eval synthetic scenes of {scenes.num_frames}x{scenes.height}x{scenes.width}")

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
