"""MooG throughput and peak memory vs video length (Ego4D preset, random weights, 128x128).

What it does
------------
For each video length (default 16, 64 and 256 frames) a fresh subprocess builds ``MooGModel``
with the released Ego4D architecture (random weights; the numbers do not depend on their values),
then streams the video through it in chunks of ``--chunk`` frames, passing the returned ``state``
back in, under ``torch.inference_mode()``. Each chunk's frames are drawn just before use and its
features are reduced (a mean, standing in for a consumer) and dropped, which is how a long video
is processed in constant memory. With ``--single-call`` the whole video is fed in one call
instead (features of every frame are returned, so memory then grows with length: the contrast).

A baseline subprocess builds the same model and runs nothing, so the numbers separate the
model's weights and torch's import from what processing the video costs.

How it is measured
------------------
* frames/s: wall time of the streaming loop only (model construction excluded), after one
  warm-up chunk that is not counted.
* peak memory: the child's ``ru_maxrss`` from ``os.wait4`` (the kernel's high-water mark of its
  resident set; nothing can be missed). Printed absolute and minus the baseline.

Run (from the repository root):
    python benchmarks/moog_streaming.py                     # 16, 64, 256 frames, chunks of 16
    python benchmarks/moog_streaming.py --frames 16 64 --chunk 8 --threads 2
    python benchmarks/moog_streaming.py --single-call       # memory grows with length (contrast)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, time, torch
from fourd_hub import MooGConfig, MooGModel
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
torch.manual_seed(0)
model = MooGModel(MooGConfig.from_preset("ego4d"), add_decoder=False).eval()
size = args["size"]
result = {"frames": args["frames"]}
if args["frames"] > 0:
    generator = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        state = model.initial_state(1, generator=generator)
        warm = model(torch.rand(1, min(args["chunk"], 4), 3, size, size, generator=generator), initial_state=state)
        start = time.perf_counter()
        if args["single_call"]:
            clip = torch.rand(1, args["frames"], 3, size, size, generator=generator)
            out = model(clip, initial_state=state)
            checksum = float(out.last_hidden_state.mean())
        else:
            checksum = 0.0
            for first in range(0, args["frames"], args["chunk"]):
                count = min(args["chunk"], args["frames"] - first)
                clip = torch.rand(1, count, 3, size, size, generator=generator)
                out = model(clip, initial_state=state)
                state = out.state
                checksum += float(out.last_hidden_state.mean())
                del out, clip
        result["seconds"] = time.perf_counter() - start
        result["checksum"] = checksum
print(json.dumps(result))
"""


def run_child(frames: int, args: argparse.Namespace) -> dict:
    payload = json.dumps(
        dict(frames=frames, chunk=args.chunk, size=args.size, threads=args.threads, single_call=args.single_call)
    )
    process = subprocess.Popen([sys.executable, "-c", CHILD, payload], stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"child for {frames} frames failed with status {status}")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_mib"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--chunk", type=int, default=16, help="frames per streamed call")
    parser.add_argument("--size", type=int, default=128, help="frame height and width")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--single-call", action="store_true", help="one call on the whole video (memory grows)")
    args = parser.parse_args()

    baseline = run_child(0, args)
    mode = "one call" if args.single_call else f"streamed in chunks of {args.chunk}"
    print(f"MooG ego4d preset (random weights), {args.size}x{args.size}, batch 1, {mode}, {args.threads} threads")
    print(f"baseline (imports + model, no video): peak RSS {baseline['peak_mib']:.0f} MiB")
    print(f"{'frames':>7} {'seconds':>9} {'frames/s':>9} {'peak MiB':>9} {'- baseline':>11} {'vs first':>9}")
    first = None
    for frames in args.frames:
        result = run_child(frames, args)
        extra = result["peak_mib"] - baseline["peak_mib"]
        first = extra if first is None else first
        ratio = extra / first if first > 0 else float("nan")
        print(
            f"{frames:>7} {result['seconds']:>9.1f} {frames / result['seconds']:>9.2f} {result['peak_mib']:>9.0f} "
            f"{extra:>11.0f} {ratio:>8.2f}x"
        )


if __name__ == "__main__":
    main()
