"""RVM-S and RVM-B throughput and peak memory vs video length (random weights, 256x256, CPU).

What it does
------------
For each model size (default S and B) and each video length (default 16, 64 and 256 frames) a
fresh subprocess builds ``RVMModel`` at that released size (random weights: the numbers do not
depend on their values; no decoder, which feature extraction does not run), then streams the
video through it in chunks of ``--chunk`` frames under ``torch.inference_mode()``, passing the
returned ``state`` back in. Each chunk's frames are drawn just before use, its features are
reduced (a mean, standing in for a consumer) and dropped: the state is the only thing carried
from one chunk to the next, which is how a long video is processed in constant memory.

A baseline subprocess per size and dtype builds the same model and runs nothing, so the numbers
separate the weights and torch's import from what processing the video costs. With ``--bf16``
(on by default; ``--no-bf16`` skips it) each size also streams ``--bf16-frames`` frames with the
weights in bfloat16 (the state, tokens and features are then bfloat16 too).

How it is measured
------------------
* frames/s: wall time of the streaming loop only (model construction excluded), after one
  warm-up call on 2 frames that is not counted; "best chunk f/s" is the fastest chunk's rate. The
  load average is printed at the start and the end. On a 2-core machine that other work shares,
  use ``--threads 1``: with 2 threads, a process holding one core makes torch's OpenMP threads wait
  for each other (RVM-S fell from ~7 to below 1 frame/s), while 1 thread gives the same rate run
  after run.
* peak memory: the child's ``ru_maxrss`` from ``os.wait4`` (the kernel's high-water mark of its
  resident set; nothing can be missed), as ``benchmarks/moog_streaming.py`` measures it. Printed
  absolute, minus the baseline, and relative to the first length's figure ("vs first").
* growth in run: inside each child, ``ru_maxrss`` after the last chunk minus after the first
  timed chunk. With memory flat this is ~0 however long the video: a per-chunk leak (an autograd
  graph, a cache, kept outputs) shows up here even within one run.
* the verdict ("flat" or "GROWS"): every longer float32 video within 25% or 64 MiB of the
  shortest one's peak above baseline. The allocator alone moves a peak by up to ~60 MiB from one
  run to the next (glibc's dynamic mmap threshold decides whether a chunk's freed activations go
  back to the system); ``MALLOC_MMAP_THRESHOLD_=131072`` in the environment (the children
  inherit it) pins the threshold and shrinks that jitter to a few MiB.

``--grad`` streams without ``inference_mode`` (the contrast: the returned state then carries the
autograd graph of every earlier chunk, so memory grows with the video; keep ``--frames`` small).

Run (from the repository root):
    python benchmarks/rvm_speed_memory.py --threads 1      # the README's table: S and B, 16/64/256 frames (~8 min)
    python benchmarks/rvm_speed_memory.py --quick          # S and B, 8/32 frames in chunks of 8 (~2 min)
    python benchmarks/rvm_speed_memory.py --sizes S --frames 16 64 256 --no-bf16
    python benchmarks/rvm_speed_memory.py --sizes S --frames 4 8 16 --image-size 64 --grad    # memory grows
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

# Run with ``python -c``; argv[1] is a JSON dict. Every mode does the same imports and builds the
# same model, so the baseline differs from a run only by the video processed.
CHILD = r"""
import contextlib, json, resource, sys, time, torch
from fourd_hub import RVMConfig, RVMModel
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
torch.manual_seed(0)
dtype = getattr(torch, args["dtype"])
# Built directly in the dtype (a float32 model cast to bfloat16 would leave the float32 weights'
# high-water mark in ru_maxrss, above anything the bfloat16 run does).
torch.set_default_dtype(dtype)
model = RVMModel(RVMConfig.from_preset(args["size"]), add_decoder=False).eval()
torch.set_default_dtype(torch.float32)
assert model.compute_dtype == dtype
size = args["image_size"]
result = {"frames": args["frames"]}
maxrss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if args["frames"] > 0:
    generator = torch.Generator().manual_seed(1)
    context = contextlib.nullcontext() if args["grad"] else torch.inference_mode()
    with context:
        warm = model(torch.rand(1, 2, 3, size, size, generator=generator))
        del warm
        state = model.initial_state(1, image_size=(size, size))
        checksum, peaks, rates = 0.0, [], []
        start = time.perf_counter()
        for first in range(0, args["frames"], args["chunk"]):
            count = min(args["chunk"], args["frames"] - first)
            begin = time.perf_counter()
            clip = torch.rand(1, count, 3, size, size, generator=generator)
            out = model(clip, initial_state=state)
            state = out.state
            checksum += float(out.patch_features.detach().float().mean())
            del out, clip
            rates.append(count / (time.perf_counter() - begin))
            peaks.append(maxrss())
        result["seconds"] = time.perf_counter() - start
        result["best_chunk_fps"] = max(rates)
        result["checksum"] = checksum
        result["growth_kib"] = peaks[-1] - peaks[0]
print(json.dumps(result))
"""


def _maxrss_bytes(ru_maxrss: int) -> int:
    return ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024


def run_child(payload: dict) -> dict:
    """Run ``CHILD`` in a fresh interpreter; its JSON report plus ``peak_mib`` (its ``ru_maxrss``)."""
    process = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(payload)], stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    # Reap the child ourselves: wait4 returns this child's own rusage (ru_maxrss = its peak RSS).
    _, status, usage = os.wait4(process.pid, 0)
    process.stdout.close()
    if status != 0:
        raise SystemExit(f"child {payload} failed with exit code {os.waitstatus_to_exitcode(status)} (traceback above)")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_mib"] = _maxrss_bytes(usage.ru_maxrss) / 2**20
    result["growth_mib"] = _maxrss_bytes(result.get("growth_kib", 0)) / 2**20
    return result


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["S", "B"], choices=["S", "B", "L", "H"])
    parser.add_argument("--frames", type=int, nargs="+", default=None, help="video lengths (default 16 64 256)")
    parser.add_argument("--chunk", type=int, default=16, help="frames per streamed call")
    parser.add_argument("--image-size", type=int, default=256, help="frame height and width (a multiple of 16)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True, help="also stream in bfloat16")
    parser.add_argument("--bf16-frames", type=int, default=None, help="frames of the bfloat16 run (default: the shortest length)")
    parser.add_argument("--quick", action="store_true", help="8 and 32 frames, chunks of 8 (about 2 minutes)")
    parser.add_argument("--grad", action="store_true", help="no inference_mode (contrast: memory grows; keep --frames small)")
    args = parser.parse_args()
    if args.frames is None:
        args.frames = [8, 32] if args.quick else [16, 64, 256]
        if args.quick:
            args.chunk = 8
    if args.bf16_frames is None:
        args.bf16_frames = min(args.frames)

    started = time.perf_counter()
    mode = "autograd on (no inference_mode)" if args.grad else "inference_mode"
    print(
        f"RVMModel (random weights, no decoder), {args.image_size}x{args.image_size}, batch 1, streamed in chunks of "
        f"{args.chunk}, {mode}, {args.threads} threads"
    )
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d')}; load average {os.getloadavg()[0]:.1f} at start")
    header = (
        f"{'model':>5} {'dtype':>8} {'frames':>7} {'seconds':>8} {'frames/s':>9} {'peak MiB':>9} {'- baseline':>11} "
        f"{'vs first':>9} {'growth in run':>14} {'best chunk f/s':>15}"
    )
    header_printed = False
    flat = True
    for size in args.sizes:
        settings = [("float32", frames) for frames in args.frames]
        if args.bf16:
            settings.append(("bfloat16", args.bf16_frames))
        baselines: dict[str, float] = {}
        first: dict[str, float] = {}
        for dtype, frames in settings:
            common = dict(size=size, dtype=dtype, chunk=args.chunk, image_size=args.image_size, threads=args.threads, grad=args.grad)
            if dtype not in baselines:
                baselines[dtype] = run_child(dict(common, frames=0))["peak_mib"]
                print(f"RVM-{size} {dtype} baseline (imports + model, no video): peak RSS {baselines[dtype]:.0f} MiB")
                if not header_printed:
                    print(header)
                    header_printed = True
            result = run_child(dict(common, frames=frames))
            extra = result["peak_mib"] - baselines[dtype]
            first.setdefault(dtype, extra)
            ratio = extra / first[dtype] if first[dtype] > 0 else float("nan")
            if dtype == "float32" and frames > min(args.frames):
                # Flat: a longer video costs no more than the shortest, up to allocator jitter (glibc's
                # dynamic mmap threshold puts one chunk's freed activations on the heap or not, run to
                # run: up to ~60 MiB for RVM-B; MALLOC_MMAP_THRESHOLD_=131072 pins it to a few MiB).
                flat &= extra - first[dtype] <= max(0.25 * first[dtype], 64)
            row = (
                f"{'RVM-' + size:>5} {dtype:>8} {frames:>7} {result['seconds']:>8.1f} {frames / result['seconds']:>9.2f} "
                f"{result['peak_mib']:>9.0f} {extra:>11.0f} {ratio:>8.2f}x {result['growth_mib']:>10.0f} MiB "
                f"{result['best_chunk_fps']:>15.2f}"
            )
            print(row, flush=True)
    verdict = "flat" if flat else "GROWS with video length"
    print(f"float32 peak memory above baseline across {args.frames} frames: {verdict}")
    # frames/s are only comparable on an otherwise idle machine: the load says whether it was.
    print(f"total {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
