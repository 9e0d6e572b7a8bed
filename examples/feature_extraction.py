#!/usr/bin/env python
"""Per-frame features of a whole video, for your own readouts or retrieval.

    python examples/feature_extraction.py clip.mp4 --model 4ds-b-dist-e --output features.npz

4DS gives (T, h, w, D) patch features (the readout layer, one entry per frame); MooG (T, N, D)
scene tokens, streamed through the video with the state carried.
"""

import argparse

from fourd_hub import pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--model", default="4ds-b-dist-e")
    parser.add_argument("--output", default="features.npz")
    parser.add_argument("--fps", type=float, help="sample the video at this rate first")
    args = parser.parse_args()

    result = pipeline("video-feature-extraction", model=args.model)(args.video, fps=args.fps)
    print(f"features {result.features.shape} {result.layout} for frames {result.frame_indices[0]}..{result.frame_indices[-1]}")
    print(f"wrote {result.save(args.output)}")


if __name__ == "__main__":
    main()
