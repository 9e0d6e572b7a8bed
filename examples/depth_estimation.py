#!/usr/bin/env python
"""Depth for every frame of a video, in metres, at the video's resolution.

    python examples/depth_estimation.py clip.mp4 --model ./4ds-b-dist-e-scannet-depth --output depth.mp4

--model: a catalog name (`4ds-b-dist-e-scannet-depth`: its original file is downloaded and
converted into the Hugging Face cache once), a Hub repo id, or a converted directory
(`fourd-hub convert scaling4d_dist_b_depth.npz ./4ds-b-dist-e-scannet-depth`; the file lives under
https://storage.googleapis.com/representations4d/checkpoints/, see the README's Models table).
The output video shows the input beside its coloured depth; --arrays also saves the depth maps as .npz.
"""

import argparse

from fourd_hub import pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--model", default="4ds-b-dist-e-scannet-depth")
    parser.add_argument("--output", default="depth.mp4")
    parser.add_argument("--arrays", help="also save the depth maps here (.npz)")
    args = parser.parse_args()

    estimator = pipeline("depth-estimation", model=args.model)
    result = estimator(args.video)  # 16-frame windows, a progress bar, every frame predicted once
    depth = result.depth  # (T, H, W) float32 metres
    print(f"depth {depth.shape}: mean {float(depth.mean()):.3f} m over {len(result.frame_indices)} frames")
    print(f"wrote {result.save(args.output)}")
    if args.arrays:
        print(f"wrote {result.save(args.arrays)}")


if __name__ == "__main__":
    main()
