#!/usr/bin/env python
"""Convert the released ScanNet depth checkpoint (once) and predict depth for a clip.

    python examples/fourds_depth.py scaling4d_dist_b_depth.npz [--output ./4ds-b-dist-e-scannet-depth]

Download the .npz from the URL that `fourd-hub list` prints for 4ds-b-dist-e-scannet-depth. The
clip here is random; the pipeline for video files comes with fourd_hub's pipeline() facade.
"""

import argparse
from pathlib import Path

import torch

from fourd_hub import FourDSForDepthEstimation
from fourd_hub.conversion import convert_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="scaling4d_dist_b_depth.npz")
    parser.add_argument("--output", default="4ds-b-dist-e-scannet-depth", help="converted directory")
    args = parser.parse_args()

    output = Path(args.output)
    if not output.exists():
        convert_checkpoint(args.checkpoint, output)
    model = FourDSForDepthEstimation.from_pretrained(output).eval()
    frames, (height, width) = model.config.num_frames, model.config.image_size
    video = torch.rand(1, frames, 3, height, width)
    with torch.no_grad():
        depth = model(video).predicted_depth
    print(f"depth {tuple(depth.shape)} in metres: min {depth.min():.3f}, median {depth.median():.3f}, max {depth.max():.3f}")


if __name__ == "__main__":
    main()
