"""4DS task models stop the backbone after the block their readout reads: time saved.

A depth task model (random weights) runs one clip twice per round, interleaved: as shipped (the
backbone stops after block ``readout_feature_index - 2``: 10 of 12 blocks at ``readout_depth``
0.95) and with the backbone forced to run every block. Both give bit-identical depth (checked
here too). Prints the median seconds per clip of each, the saving and the blocks run.

Usage::

    python benchmarks/fourds_early_stop.py                      # 4DS-S widths, 12 blocks, 16x112x112
    python benchmarks/fourds_early_stop.py --preset B --size 224 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from fourd_hub import FourDSConfig, FourDSForDepthEstimation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="S", help="Table 1 size (default S)")
    parser.add_argument("--size", type=int, default=112, help="square frame size (multiple of 16)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--readout-depth", type=float, default=0.95)
    args = parser.parse_args()

    torch.manual_seed(0)
    config = FourDSConfig.from_preset(
        args.preset, num_frames=args.frames, image_size=[args.size, args.size], readout_depth=args.readout_depth,
        readout={"num_params": 64, "num_heads": 4},
    )
    model = FourDSForDepthEstimation(config).eval()
    video = torch.rand(1, args.frames, 3, args.size, args.size)
    calls: list[int] = []
    for layer in model.fourds.layers:
        layer.register_forward_hook(lambda *_: calls.append(1))

    shipped = model.backbone_features

    def full(pixel_values_videos):  # every block, as before the early stop
        return model.fourds(pixel_values_videos, return_dict=True).readout_features

    def run(backbone) -> tuple[float, torch.Tensor, int]:
        model.backbone_features = backbone
        calls.clear()
        start = time.perf_counter()
        with torch.inference_mode():
            depth = model(video).predicted_depth
        return time.perf_counter() - start, depth, len(calls)

    run(shipped), run(full)  # warm-up
    times = {"early stop": [], "all blocks": []}
    for _ in range(args.rounds):  # interleaved, so that load changes hit both alike
        seconds, early_depth, early_blocks = run(shipped)
        times["early stop"].append(seconds)
        seconds, full_depth, full_blocks = run(full)
        times["all blocks"].append(seconds)
    assert torch.equal(early_depth, full_depth), "early stop changed the depth"

    print(f"4DS-{args.preset} depth task model, 1x{args.frames}x{args.size}x{args.size}, readout_depth {args.readout_depth}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}, {args.rounds} rounds")
    early, every = (statistics.median(times[k]) for k in ("early stop", "all blocks"))
    print(f"  all blocks : {every:.3f} s/clip ({full_blocks} blocks)")
    print(f"  early stop : {early:.3f} s/clip ({early_blocks} blocks)")
    print(f"  saved      : {every - early:.3f} s/clip ({100 * (1 - early / every):.1f}%), outputs bit-identical")


if __name__ == "__main__":
    main()
