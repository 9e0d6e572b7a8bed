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
* growth in run: inside each child, ``ru_maxrss`` after the last chunk minus after the first.
* malloc in use / held free (glibc only): ``mallinfo2`` at each chunk's end, the maximum over
  the run. "In use" is what is allocated and not freed (weights, the carried state, caches): it
  is the same whatever the video's length (226 MiB here, 16 or 256 frames), so the model keeps
  nothing per chunk. "Held free" is what was freed but is kept by malloc inside its heaps, which
  is fragmentation. With glibc's defaults the dynamic mmap threshold rises to the size of the
  largest block freed (up to 32 MiB), so a chunk's 2 to 32 MiB activations move from mmap, which
  returns memory on free, into the heap. From then on, whether a chunk's activations fit the
  holes left by the previous ones decides the peak. That is where the spread from run to run,
  and a maximum that rises over the first few chunks, come from (held free: 36-67 MiB after 16
  frames, 110-155 MiB after 64 or 256). ``MALLOC_MMAP_THRESHOLD_=131072`` in the environment (the
  children inherit it) pins the threshold: held free stays at 1 MiB and the peak is flat in video
  length, at some speed (every large activation is then a fresh mmap).

Run (from the repository root):
    python benchmarks/moog_streaming.py                     # 16, 64, 256 frames, chunks of 16
    python benchmarks/moog_streaming.py --frames 16 64 --chunk 8 --threads 2
    python benchmarks/moog_streaming.py --single-call       # memory grows with length (contrast)
    MALLOC_MMAP_THRESHOLD_=131072 python benchmarks/moog_streaming.py   # glibc's threshold pinned: no fragmentation
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import ctypes, json, resource, sys, time, torch
from fourd_hub import MooGConfig, MooGModel
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
torch.manual_seed(0)
model = MooGModel(MooGConfig.from_preset("ego4d"), add_decoder=False).eval()
size = args["size"]
result = {"frames": args["frames"]}
maxrss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def malloc_mib():
    # glibc's own accounting, over every arena: (bytes handed out and not freed, bytes free but kept).
    try:
        libc = ctypes.CDLL("libc.so.6")
        fields = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
        info = type("mallinfo2", (ctypes.Structure,), {"_fields_": [(f, ctypes.c_size_t) for f in fields]})
        libc.mallinfo2.restype = info
        m = libc.mallinfo2()
    except (OSError, AttributeError):
        return None
    return ((m.uordblks + m.hblkhd) / 2**20, m.fordblks / 2**20)


samples = []
if args["frames"] > 0:
    generator = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        state = model.initial_state(1, generator=generator)
        warm = model(torch.rand(1, min(args["chunk"], 4), 3, size, size, generator=generator), initial_state=state)
        del warm
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
                samples.append((maxrss(), malloc_mib()))
        result["seconds"] = time.perf_counter() - start
        result["checksum"] = checksum
if samples:
    result["growth_in_run_mib"] = samples[-1][0] - samples[0][0]
    if all(m is not None for _, m in samples):
        result["malloc_in_use_mib"] = max(m[0] for _, m in samples)
        result["malloc_held_free_mib"] = max(m[1] for _, m in samples)
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
    allocator = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    print(f"allocator settings: {allocator or 'glibc defaults'}")
    print(f"baseline (imports + model, no video): peak RSS {baseline['peak_mib']:.0f} MiB")
    print(
        f"{'frames':>7} {'seconds':>9} {'frames/s':>9} {'peak MiB':>9} {'- baseline':>11} {'vs first':>9} "
        f"{'growth in run':>14} {'malloc in use':>14} {'held free':>10}"
    )
    first = None
    for frames in args.frames:
        result = run_child(frames, args)
        extra = result["peak_mib"] - baseline["peak_mib"]
        first = extra if first is None else first
        ratio = extra / first if first > 0 else float("nan")
        in_use = result.get("malloc_in_use_mib")
        held = result.get("malloc_held_free_mib")
        print(
            f"{frames:>7} {result['seconds']:>9.1f} {frames / result['seconds']:>9.2f} {result['peak_mib']:>9.0f} "
            f"{extra:>11.0f} {ratio:>8.2f}x {result.get('growth_in_run_mib', float('nan')):>14.0f} "
            f"{'-' if in_use is None else f'{in_use:.0f}':>14} {'-' if held is None else f'{held:.0f}':>10}"
        )
    print(
        "growth in run: ru_maxrss after the last chunk minus after the first. malloc in use / held free: glibc's "
        "mallinfo2 at chunk ends (max): bytes allocated and not freed (weights, state, caches) and bytes freed but "
        "kept by malloc (fragmentation). Set MALLOC_MMAP_THRESHOLD_=131072 to pin glibc's mmap threshold (see benchmarks/README.md)."
    )


if __name__ == "__main__":
    main()
