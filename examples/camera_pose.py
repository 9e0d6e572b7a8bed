#!/usr/bin/env python
"""Relative camera poses through a video (4DS with a camera-pose readout, e.g. fine-tuned on RE10k).

    python examples/camera_pose.py clip.mp4 --model ./my-4ds-camera-pose --output poses.json

Windows overlap by one frame; each predicts its last frame's camera relative to its first, and the
key-frame poses are their running product (4x4 camera-to-first-frame transforms).
"""

import argparse

import numpy as np

from fourd_hub import pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--model", required=True, help="a FourDSForCameraPoseEstimation directory (no released weights)")
    parser.add_argument("--output", default="poses.json", help=".json, .npz or .mp4 (frames beside a top-down trajectory)")
    args = parser.parse_args()

    result = pipeline("camera-pose-estimation", model=args.model)(args.video)
    path_length = np.linalg.norm(np.diff(result.poses[:, :3, 3], axis=0), axis=-1).sum()
    print(f"{len(result.poses)} key frames {result.pose_frames.tolist()}; camera path length {path_length:.3f} (model units)")
    print(f"wrote {result.save(args.output)}")


if __name__ == "__main__":
    main()
