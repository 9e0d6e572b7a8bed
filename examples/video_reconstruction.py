#!/usr/bin/env python
"""MooG's next-frame predictions: how well the scene tokens explain each upcoming frame.

    python examples/video_reconstruction.py clip.mp4 --model moog-ego4d --output reconstruction.mp4
"""

import argparse

import numpy as np

from fourd_hub import load_video, pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--model", default="moog-ego4d")
    parser.add_argument("--output", default="reconstruction.mp4")
    args = parser.parse_args()

    result = pipeline("video-reconstruction", model=args.model)(args.video)
    original, _ = load_video(args.video)
    error = np.mean((result.frames.astype(np.float64) - original[result.frame_indices]) ** 2, axis=(1, 2, 3))
    psnr = 10 * np.log10(255.0**2 / np.maximum(error, 1e-12))
    print(f"predicted {result.frames.shape}; PSNR per frame: first {psnr[0]:.1f} dB, mean {psnr.mean():.1f} dB")
    print(f"wrote {result.save(args.output)}")


if __name__ == "__main__":
    main()
