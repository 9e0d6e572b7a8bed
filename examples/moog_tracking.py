#!/usr/bin/env python
"""Track points with MooG through a long video, streaming 16-frame chunks.

    python examples/moog_tracking.py                                   # random Ego4D-architecture weights
    python examples/moog_tracking.py --backbone ./moog-ego4d --head ./moog-ego4d-point-tracking

(``--backbone`` / ``--head``: directories written by ``fourd-hub convert`` from the released files.)
The synthetic video is a bright square moving right on a dark background; each chunk's queries are
the previous chunk's last predicted positions, and the MooG state is carried from chunk to chunk,
so memory stays constant whatever the length.
"""

import argparse

import torch

from fourd_hub import MooGConfig, MooGForPointTracking, MooGModel
from fourd_hub.readout import track_points


def moving_square(frames: int, size: int) -> torch.Tensor:
    """(1, T, 3, size, size) in [0, 1]: a square of side size/4 moving one pixel per frame."""
    video = torch.full((1, frames, 3, size, size), 0.1)
    side = size // 4
    for t in range(frames):
        left = (size // 8 + t) % (size - side)
        video[0, t, :, size // 2 - side // 2 : size // 2 + side // 2, left : left + side] = 0.9
    return video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", help="converted MooG backbone directory (default: random weights)")
    parser.add_argument("--head", help="converted point-tracking head directory (default: a fresh head)")
    parser.add_argument("--frames", type=int, default=48, help="video length (a multiple of 16)")
    parser.add_argument("--size", type=int, default=128, help="frame height and width")
    args = parser.parse_args()

    torch.manual_seed(0)
    backbone = args.backbone or MooGModel(MooGConfig.from_preset("ego4d"), add_decoder=False)
    model = MooGForPointTracking.from_backbone(backbone, head=args.head).eval()
    chunk = model.config.num_frames  # the head's clip length (16)
    video = moving_square(args.frames, args.size)
    queries = torch.tensor([[[args.size / 8 + args.size / 8, args.size / 2.0], [5.0, 5.0]]])  # pixel (x, y)

    state = model.moog.initial_state(1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for start in range(0, args.frames - chunk + 1, chunk):
            clip = video[:, start : start + chunk]
            # One backbone pass per chunk: the features feed the head, the state goes on.
            features = model.moog(clip, initial_state=state)
            out = track_points(model.head, features.last_hidden_state, queries, clip.shape[-2:])
            state = features.state
            print(
                f"frames {start:3d}-{start + chunk - 1:3d}: tracks {tuple(out.tracks.shape)}, "
                f"last position of query 0 {[round(v, 1) for v in out.tracks[0, -1, 0].tolist()]}, "
                f"visible {out.visible[0, -1].tolist()}"
            )
            queries = out.tracks[:, -1]  # re-query from the last frame of this chunk


if __name__ == "__main__":
    main()
