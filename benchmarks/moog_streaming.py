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
  and a maximum that rises over the first few chunks, came from while a chunk's frames were
  encoded in one call (held free: 36-67 MiB after 16 frames, 110-155 MiB after 64 or 256; the
  median peak rose 1.19x from 16 to 256 frames). ``MooGModel`` now encodes each frame just before
  its recurrent step at inference, so those activations are one frame's size: the peak halved
  and is flat (1.07x; benchmarks/README.md). ``MALLOC_MMAP_THRESHOLD_=131072`` in the environment
  (the children inherit it) pins the threshold: held free stays at 1 MiB, at some speed (every
  large activation is then a fresh mmap).

What the child does about freed memory (``--release``, one row per mode and length, the modes
interleaved length by length; default ``none``):

* ``none``: nothing (glibc's defaults).
* ``trim``: glibc's ``malloc_trim(0)`` (through ctypes) after every
  chunk; "trim ms" is its time per call (mean/max), counted in the loop's time.
* ``inner``: as ``trim``, and also after MooG's encoder and after every recurrent step inside each chunk (instance
  attributes wrap ``model.encode`` / ``model.step``; the computation is unchanged): an experiment
  on where the model itself could release memory.
* ``mmap=BYTES``: ``mallopt(M_MMAP_THRESHOLD, BYTES)`` once, after the model is built and before
  streaming (what a library call could do in process; it switches the dynamic threshold off for
  the rest of the process, and no later ``mallopt`` brings it back).
* ``env=BYTES``: the child is started with ``MALLOC_MMAP_THRESHOLD_=BYTES``.
* several joined by ``+`` (``mmap=33554432+trim``).

"cpu s" (user + system time of the loop) and "faults/frame" (minor page faults per frame: every
fresh mmap'd or trimmed page costs one when touched) show the cost of a mode on a shared machine
better than frames/s. "RSS at end" is the resident set at chunk ends (max): what a chunk leaves
resident. The peak of a single process varies by ~40 MiB from run to run under glibc's heap (the
same 16-frame run: 184-226 MiB above baseline with the defaults), so compare "growth in run" (the
same process, first chunk to last) or repeat a length (``--frames 16 16 16``) before reading a
"vs first" ratio.

Run (from the repository root):
    python benchmarks/moog_streaming.py                     # 16, 64, 256 frames, chunks of 16
    python benchmarks/moog_streaming.py --frames 16 64 --chunk 8 --threads 2
    python benchmarks/moog_streaming.py --single-call       # memory grows with length (contrast)
    python benchmarks/moog_streaming.py --threads 1 --release none trim mmap=131072 env=131072
    MALLOC_MMAP_THRESHOLD_=131072 python benchmarks/moog_streaming.py   # glibc's threshold pinned: no fragmentation
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import ctypes, json, os, resource, sys, time, torch
from fourd_hub import MooGConfig, MooGModel
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
torch.manual_seed(0)
model = MooGModel(MooGConfig.from_preset("ego4d"), add_decoder=False).eval()
size = args["size"]
result = {"frames": args["frames"], "release": args["release"]}
maxrss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib():
    # The resident set now (not the high-water mark): what a chunk leaves resident when it ends.
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * PAGE / 2**20
    except OSError:  # no /proc (macOS)
        return None


release = args["release"].split("+")  # e.g. ["trim"], ["mmap=33554432", "trim"]
trims = []  # (seconds, bytes released) per malloc_trim(0) call


def timed_release():
    # glibc's malloc_trim(0): free pages inside its heaps go back to the system (madvise), not only the top.
    before, start = rss_mib(), time.perf_counter()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        return
    after = rss_mib()
    released = 0.0 if before is None or after is None else max(0.0, before - after)
    trims.append((time.perf_counter() - start, released * 2**20))


def between_chunks():
    if "trim" in release or "inner" in release:
        timed_release()


if "inner" in release:
    # An experiment on where the model could release memory inside a chunk: after the encoder (its
    # activations over every frame of the chunk are the largest blocks) and after every recurrent step.
    # Instance attributes shadow the methods that MooGModel.forward calls; the computation is unchanged.
    encode, step = model.encode, model.step

    def encode_then_release(frames):
        tokens = encode(frames)
        timed_release()
        return tokens

    def step_then_release(state, tokens):
        state = step(state, tokens)
        timed_release()
        return state

    model.encode, model.step = encode_then_release, step_then_release


for part in release:
    if part.startswith("mmap="):
        # mallopt(M_MMAP_THRESHOLD = -3, value), once, after the model is built and before streaming
        # (where a library call would set it). It also switches glibc's dynamic threshold off for good.
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        result["mallopt_ok"] = bool(libc.mallopt(-3, int(part.split("=", 1)[1])))


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
        between_chunks()
        trims.clear()
        usage = resource.getrusage(resource.RUSAGE_SELF)
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
                between_chunks()
                samples.append((maxrss(), malloc_mib(), rss_mib()))
        result["seconds"] = time.perf_counter() - start
        end = resource.getrusage(resource.RUSAGE_SELF)
        # CPU time hardly depends on other work on the machine (with 1 thread); minor faults count the
        # pages touched afresh (what mmap'd activations or trimmed pages cost when used again).
        result["cpu_seconds"] = end.ru_utime + end.ru_stime - usage.ru_utime - usage.ru_stime
        result["minor_faults"] = end.ru_minflt - usage.ru_minflt
        result["checksum"] = checksum
if samples:
    result["growth_in_run_mib"] = samples[-1][0] - samples[0][0]
    if all(s[2] is not None for s in samples):
        result["rss_at_chunk_end_mib"] = max(s[2] for s in samples)
    if all(s[1] is not None for s in samples):
        result["malloc_in_use_mib"] = max(s[1][0] for s in samples)
        result["malloc_held_free_mib"] = max(s[1][1] for s in samples)
if trims:
    result["trim_ms_mean"] = 1000 * sum(t for t, _ in trims) / len(trims)
    result["trim_ms_max"] = 1000 * max(t for t, _ in trims)
    result["trim_released_mib_mean"] = sum(b for _, b in trims) / len(trims) / 2**20
print(json.dumps(result))
"""


def run_child(frames: int, release: str, args: argparse.Namespace) -> dict:
    payload = json.dumps(
        dict(
            frames=frames,
            chunk=args.chunk,
            size=args.size,
            threads=args.threads,
            single_call=args.single_call,
            release=release,
        )
    )
    env = dict(os.environ)
    for part in release.split("+"):
        if part.startswith("env="):
            # glibc reads MALLOC_MMAP_THRESHOLD_ at startup: only a child's environment can carry it.
            env["MALLOC_MMAP_THRESHOLD_"] = part.split("=", 1)[1]
    process = subprocess.Popen([sys.executable, "-c", CHILD, payload], stdout=subprocess.PIPE, text=True, env=env)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"child for {frames} frames ({release}) failed with status {status}")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_mib"] = usage.ru_maxrss / 1024
    return result


def release_mode(text: str) -> str:
    """``--release`` values: ``none``, ``trim``, ``inner``, ``mmap=BYTES``, ``env=BYTES``, or several joined by ``+``."""
    parts = []
    for part in text.split("+"):
        name, _, value = part.partition("=")
        if part in ("none", "trim", "inner"):
            parts.append(part)
        elif name in ("mmap", "env") and value.isdigit():
            parts.append(f"{name}={int(value)}")
        else:
            raise argparse.ArgumentTypeError(
                f"--release takes none, trim, inner, mmap=BYTES or env=BYTES (or several joined by +), not {text!r}"
            )
    return "+".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--chunk", type=int, default=16, help="frames per streamed call")
    parser.add_argument("--size", type=int, default=128, help="frame height and width")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--single-call", action="store_true", help="one call on the whole video (memory grows)")
    parser.add_argument(
        "--release",
        type=release_mode,
        nargs="+",
        default=["none"],
        help="what the child does about freed memory, one row per mode and length, interleaved: none; trim "
        "(glibc's malloc_trim(0) after every chunk); mmap=BYTES (mallopt(M_MMAP_THRESHOLD, "
        "BYTES) once before streaming); inner (as trim, and also after MooG's encoder and after every recurrent step, "
        "inside each chunk); env=BYTES (the child started with MALLOC_MMAP_THRESHOLD_=BYTES); "
        "several joined by + (mmap=33554432+trim). Default: none",
    )
    parser.add_argument("--repeats", type=int, default=1,
                        help="run every (mode, length) this many times, each in a fresh process, interleaved; "
                        "a summary gives the median peak per length (one process's peak varies by ~40 MiB)")
    args = parser.parse_args()

    baseline = run_child(0, "none", args)
    mode = "one call" if args.single_call else f"streamed in chunks of {args.chunk}"
    print(f"MooG ego4d preset (random weights), {args.size}x{args.size}, batch 1, {mode}, {args.threads} threads")
    allocator = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    print(f"allocator settings: {allocator or 'glibc defaults'}; load average at start {os.getloadavg()[0]:.2f}")
    print(f"baseline (imports + model, no video): peak RSS {baseline['peak_mib']:.0f} MiB")
    header = (
        f"{'release':>13} {'frames':>7} {'seconds':>9} {'frames/s':>9} {'peak MiB':>9} {'- baseline':>11} "
        f"{'vs first':>9} {'cpu s':>7} {'faults/frame':>13} {'growth in run':>14} {'RSS at end':>11} {'malloc in use':>14} {'held free':>10} "
        f"{'trim ms':>12}"
    )
    print(header)
    first: dict[str, float] = {}
    extras: dict[tuple[str, int], list[float]] = {}
    for _, frames, release in [(r, f, m) for r in range(args.repeats) for f in args.frames for m in args.release]:
        result = run_child(frames, release, args)
        extra = result["peak_mib"] - baseline["peak_mib"]
        extras.setdefault((release, frames), []).append(extra)
        first.setdefault(release, extra)
        ratio = extra / first[release] if first[release] > 0 else float("nan")
        in_use = result.get("malloc_in_use_mib")
        held = result.get("malloc_held_free_mib")
        rss_end = result.get("rss_at_chunk_end_mib")
        trim = "-" if "trim_ms_mean" not in result else f"{result['trim_ms_mean']:.1f}/{result['trim_ms_max']:.1f}"
        print(
            f"{release:>13} {frames:>7} {result['seconds']:>9.1f} {frames / result['seconds']:>9.2f} "
            f"{result['peak_mib']:>9.0f} {extra:>11.0f} {ratio:>8.2f}x {result['cpu_seconds']:>7.1f} "
            f"{result['minor_faults'] / frames:>13.0f} "
            f"{result.get('growth_in_run_mib', float('nan')):>14.0f} "
            f"{'-' if rss_end is None else f'{rss_end:.0f}':>11} "
            f"{'-' if in_use is None else f'{in_use:.0f}':>14} {'-' if held is None else f'{held:.0f}':>10} "
            f"{trim:>12}",
            flush=True,
        )
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    if args.repeats > 1:
        print(f"\nmedian over {args.repeats} processes of the peak above baseline (min - max), and vs the first length's median")
        for release in args.release:
            reference = statistics.median(extras[(release, args.frames[0])])
            for frames in args.frames:
                values = extras[(release, frames)]
                middle = statistics.median(values)
                print(f"{release:>13} {frames:>7} frames: {middle:6.0f} MiB ({min(values):.0f} - {max(values):.0f})  "
                      f"{middle / reference if reference > 0 else float('nan'):5.2f}x")
    print(
        "vs first: peak above baseline relative to the same release mode's first length. cpu s: the loop's CPU "
        "time (user + system). faults/frame: minor page faults in the loop per frame. growth in run: ru_maxrss "
        "after the last chunk minus after the first. RSS at end: the resident set at chunk ends (max). malloc in "
        "use / held free: glibc's mallinfo2 at chunk ends (max): bytes allocated and not freed (weights, state, "
        "caches) and bytes freed but kept by malloc (trimmed pages still count as held free: they are free "
        "blocks, no longer resident). trim ms: malloc_trim(0) per chunk, mean/max. Set "
        "MALLOC_MMAP_THRESHOLD_=131072 to pin glibc's mmap threshold (see benchmarks/README.md)."
    )


if __name__ == "__main__":
    main()
