#!/usr/bin/env python
"""Track boxes through a video: pixel (x1, y1, x2, y2) per frame from one box at any frame.

    python examples/box_tracking.py clip.mp4 --boxes "0,40,30,90,80" --output boxes.mp4
"""

import argparse

from fourd_hub import pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--model", default="moog-ego4d-box-tracking")
    parser.add_argument("--backbone", help="backbone directory for a standalone head")
    parser.add_argument("--boxes", required=True, help="'t,x1,y1,x2,y2;...' in pixels")
    parser.add_argument("--output", default="boxes.mp4")
    args = parser.parse_args()

    tracker = pipeline("box-tracking", model=args.model, backbone=args.backbone)
    boxes = [[float(v) for v in item.split(",")] for item in args.boxes.split(";")]
    result = tracker(args.video, boxes=boxes)
    last = result.boxes[-1]
    print(f"boxes {result.boxes.shape}; in the last frame: " + "; ".join(", ".join(f"{v:.1f}" for v in box) for box in last))
    print(f"wrote {result.save(args.output)}")


if __name__ == "__main__":
    main()
