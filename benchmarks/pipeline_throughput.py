"""Where the time goes in a pipeline: decoding, preprocessing, or the model.

What it does
------------
Writes a synthetic H.264 video (moving squares on a gradient, ``--frames`` at ``--resolution``),
then measures, each on its own and as frames per second of input video:

1. decode: ``open_video(...).iter_frames()`` (PyAV, frames to uint8 RGB);
2. decode + preprocess: the same plus the family's video processor (antialiased resize to the
   model's size, [0, 1] scaling), in windows as the pipelines do it;
3. model: the task model alone on ready tensors, one window after another (random weights: the
   time does not depend on their values) -- 4DS depth (``--fourds-size``, 16x224x224 windows) and
   MooG point tracking (Ego4D architecture, 16x128x128 windows, 64 queries);
4. pipeline: the whole ``pipeline(...)(video)`` call.

The last column divides each stage's rate by the model's: a ratio far above 1 means decoding is
not the bottleneck. Run from the repository root:

    python benchmarks/pipeline_throughput.py                         # 4DS-S, 96 frames of 640x360
    python benchmarks/pipeline_throughput.py --fourds-size B --resolution 1280x720 --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fourd_hub import FourDSConfig, FourDSForDepthEstimation, MooGConfig, MooGForPointTracking, open_video, pipeline, write_video
from fourd_hub.processing import FourDSVideoProcessor, MooGVideoProcessor


def synthetic_frames(count: int, height: int, width: int):
    """Moving squares on a gradient, generated frame by frame (never the whole video in memory)."""
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) * 127 // (width + height)], -1).astype(np.uint8)
    side = max(8, height // 6)
    for t in range(count):
        frame = background.copy()
        for k, colour in enumerate(((255, 64, 64), (64, 255, 64), (64, 64, 255))):
            x = int((width - side) * (0.5 + 0.45 * np.sin(0.07 * t + 2 * k)))
            y = int((height - side) * (0.5 + 0.45 * np.cos(0.05 * t + k)))
            frame[y : y + side, x : x + side] = colour
        yield frame


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def time_decode(path: Path, processor=None, window: int = 16) -> float:
    start = time.perf_counter()
    count, batch = 0, []
    with open_video(path) as reader:
        for _, frame in reader.iter_frames():
            count += 1
            if processor is not None:
                batch.append(frame)
                if len(batch) == window:
                    processor.preprocess_frames(np.stack(batch))
                    batch = []
        if processor is not None and batch:
            processor.preprocess_frames(np.stack(batch))
    return rate(count, time.perf_counter() - start)


def time_model(model, clip: torch.Tensor, windows: int, **kwargs) -> float:
    with torch.inference_mode():
        model(clip, **kwargs)  # warm-up, not counted
        start = time.perf_counter()
        for _ in range(windows):
            model(clip, **kwargs)
    return rate(windows * clip.shape[1], time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--resolution", default="640x360", help="WIDTHxHEIGHT of the synthetic video")
    parser.add_argument("--fourds-size", default="S", help="4DS size of the depth model (S, B, L, ...)")
    parser.add_argument("--windows", type=int, default=2, help="timed model windows per model")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.resolution.lower().split("x"))

    with tempfile.TemporaryDirectory() as tmp:
        path = write_video(Path(tmp) / "synthetic.mp4", synthetic_frames(args.frames, height, width), fps=30)
        print(f"video: {args.frames} frames of {width}x{height} H.264 ({path.stat().st_size / 1e6:.1f} MB); "
              f"torch threads {torch.get_num_threads()}")
        torch.manual_seed(0)
        depth_model = FourDSForDepthEstimation(FourDSConfig.from_preset(args.fourds_size)).eval()
        tracker = MooGForPointTracking(MooGConfig.from_preset("ego4d", readout={"num_params": 1024})).eval()
        queries = torch.rand(1, 64, 2) * 128

        rows = []
        decode = time_decode(path)
        fourds_prep = time_decode(path, FourDSVideoProcessor())
        moog_prep = time_decode(path, MooGVideoProcessor())
        fourds_model = time_model(depth_model, torch.rand(1, 16, 3, 224, 224), args.windows)
        moog_model = time_model(tracker, torch.rand(1, 16, 3, 128, 128), args.windows, query_points=queries)
        start = time.perf_counter()
        pipeline("depth-estimation", model=depth_model, progress=False)(path)
        fourds_pipeline = rate(args.frames, time.perf_counter() - start)
        rows += [
            ("decode (PyAV -> uint8 RGB)", decode, fourds_model),
            ("decode + 4DS preprocess (-> 224x224)", fourds_prep, fourds_model),
            (f"4DS-{args.fourds_size} depth model (16x224x224)", fourds_model, fourds_model),
            (f"4DS-{args.fourds_size} depth pipeline (all of it)", fourds_pipeline, fourds_model),
            ("decode + MooG preprocess (-> 128x128)", moog_prep, moog_model),
            ("MooG point tracking model (16x128x128, 64 queries)", moog_model, moog_model),
        ]
        print(f"\n{'stage':<52}{'frames/s':>12}{'x model':>10}")
        for name, value, model_rate in rows:
            print(f"{name:<52}{value:>12.1f}{value / model_rate:>10.1f}")
        bottleneck = "the model" if min(decode, fourds_prep, moog_prep) > max(fourds_model, moog_model) else "decoding"
        print(f"\nbottleneck: {bottleneck}")


if __name__ == "__main__":
    main()
