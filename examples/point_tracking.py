#!/usr/bin/env python
"""Track points through a video: queries at any frame, tracks and visibility in pixels.

    python examples/point_tracking.py clip.mp4 --model moog-ego4d-point-tracking --output tracks.mp4

Queries are (t, x, y): t a frame index, x, y pixels. Without --points an 8 x 8 grid in the first
frame is tracked. A standalone head (moog-ego4d-point-tracking) needs its backbone: catalog heads
find it themselves, converted directories take --backbone.
"""

import argparse

import numpy as np

from fourd_hub import pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--model", default="moog-ego4d-point-tracking")
    parser.add_argument("--backbone", help="backbone directory for a standalone head")
    parser.add_argument("--points", help="'t,x,y;t,x,y' (default: an 8 x 8 grid in the first frame)")
    parser.add_argument("--output", default="tracks.mp4")
    args = parser.parse_args()

    tracker = pipeline("point-tracking", model=args.model, backbone=args.backbone)
    if args.points:
        points = [[float(v) for v in item.split(",")] for item in args.points.split(";")]
        result = tracker(args.video, points=points)
    else:
        result = tracker(args.video, grid=8)
    moved = np.linalg.norm(result.tracks[-1] - result.tracks[0], axis=-1)
    print(f"tracks {result.tracks.shape}, visible in {result.visible.mean():.0%} of frames, median motion {np.median(moved):.1f} px")
    print(f"wrote {result.save(args.output)}")


if __name__ == "__main__":
    main()
