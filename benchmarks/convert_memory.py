"""Peak-memory benchmark of the streaming checkpoint converter (``fourd_hub.conversion.convert_checkpoint``).

What it does
------------
1. Writes a synthetic checkpoint in the *original* ``.npz`` layout of a 4DS backbone (exact key
   names and shapes: ``params/encoder/...``, ``params/processor/layers_{i}/...``) for the chosen
   Table 1 size (S, B or H). The file is written in a streaming way -- a ``zipfile`` opened for
   writing (``ZIP_STORED``), one ``.npy`` member at a time, each array drawn from a seeded numpy
   ``Generator`` just before it is written -- so the generator never holds more than one array.
2. Runs ``convert_checkpoint(..., preset=SIZE)`` in a fresh subprocess (``python -c``), with
   ``verify=False``, ``compute_sha256=False`` and ``progress=False`` unless asked otherwise.
3. Runs a *baseline* subprocess that performs exactly the same imports (``torch``, ``fourd_hub``,
   ``fourd_hub.conversion``) and nothing else, so the converter's own memory can be separated
   from the cost of the interpreter and of importing torch.

How memory is measured
----------------------
* **Peak RSS (kernel)**: each subprocess is reaped with ``os.wait4``, which returns *that child's*
  ``rusage``; ``ru_maxrss`` is the kernel's high-water mark of its resident set (KiB on Linux).
  This is exact: no peak can be missed. ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` (the
  maximum over every child reaped so far) is printed as a cross-check.
* **Sampled RSS (psutil)**: while a subprocess runs, a thread samples its RSS (split into
  anonymous memory and file-backed/shared pages) and its read/written bytes every
  ``--sample-interval`` seconds. Sampling can miss short spikes; it is used for the timeline that
  shows *when* memory grows (planning, writing, verifying), and for the peak of the *anonymous*
  part alone: ``ru_maxrss`` also counts clean file-backed pages of memory-mapped files (e.g. the
  safetensors files that ``verify`` reads through ``safe_open``), which the kernel can reclaim.

The interesting numbers are ``peak - baseline`` (what the conversion itself holds) compared with
the largest single tensor: a streaming converter should stay within a small multiple of it,
whatever the checkpoint size.

How to run (from the repository root)
-------------------------------------
    python benchmarks/convert_memory.py                  # 4DS-H, ~2.5 GB checkpoint
    python benchmarks/convert_memory.py --size S         # quick run (~90 MB)
    python benchmarks/convert_memory.py --size H --dtype bfloat16 --max-shard-size 1GB --verify

Everything is written to a temporary directory (or under ``--workdir``) and deleted at the end
unless ``--keep`` is given. ``--checkpoint FILE`` reuses a previously kept synthetic checkpoint
instead of generating one (it is never deleted). Linux is assumed (``/proc``-based RSS split,
``ru_maxrss`` in KiB).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

# ----------------------------------------------------------------------------------------------
# Synthetic original-format checkpoint


@dataclass(frozen=True)
class BackboneSize:
    """A Table 1 size of 4DS; ``num_parameters`` is the published count, used as a check."""

    hidden: int
    layers: int
    mlp: int
    heads: int
    head_dim: int
    num_parameters: int


SIZES: dict[str, BackboneSize] = {
    "S": BackboneSize(hidden=384, layers=12, mlp=1536, heads=6, head_dim=64, num_parameters=22_485_888),
    "B": BackboneSize(hidden=768, layers=12, mlp=3072, heads=12, head_dim=64, num_parameters=87_439_104),
    "H": BackboneSize(hidden=1280, layers=32, mlp=5120, heads=16, head_dim=80, num_parameters=633_652_480),
}
PATCH = (2, 16, 16)  # (t, h, w) tubelet
CHANNELS = 3
POSITION_GRID = (8, 14, 14)  # 16 frames at 224x224 in 2x16x16 patches
ROOT = "params/"


def checkpoint_arrays(size: BackboneSize) -> list[tuple[str, tuple[int, ...]]]:
    """(original key, shape) of every array of a 4DS backbone checkpoint, in file order."""
    d, h, k, m = size.hidden, size.heads, size.head_dim, size.mlp
    arrays: list[tuple[str, tuple[int, ...]]] = [
        (f"{ROOT}encoder/patch_embedding/Conv_0/kernel", (*PATCH, CHANNELS, d)),
        (f"{ROOT}encoder/patch_embedding/Conv_0/bias", (d,)),
        (f"{ROOT}encoder/posenc/embeddings", (*POSITION_GRID, d)),
    ]
    for i in range(size.layers):
        layer = f"{ROOT}processor/layers_{i}"
        arrays += [
            (f"{layer}/attention_norm/scale", (d,)),
            (f"{layer}/attention_norm/bias", (d,)),
        ]
        for projection in ("query", "key", "value"):
            arrays += [
                (f"{layer}/attention/{projection}/kernel", (d, h, k)),
                (f"{layer}/attention/{projection}/bias", (h, k)),
            ]
        arrays += [
            (f"{layer}/attention/out/kernel", (h, k, d)),
            (f"{layer}/attention/out/bias", (d,)),
            (f"{layer}/mlp_norm/scale", (d,)),
            (f"{layer}/mlp_norm/bias", (d,)),
            (f"{layer}/mlp/dense_in/kernel", (d, m)),
            (f"{layer}/mlp/dense_in/bias", (m,)),
            (f"{layer}/mlp/dense_out/kernel", (m, d)),
            (f"{layer}/mlp/dense_out/bias", (d,)),
        ]
    return arrays


def write_synthetic_npz(path: Path, arrays: list[tuple[str, tuple[int, ...]]], seed: int) -> None:
    """Write ``arrays`` as float32 ``.npy`` members of an uncompressed zip, one array in memory at a time."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, shape in arrays:
            array = rng.standard_normal(shape, dtype=np.float32)
            array *= 0.02  # small values, like trained weights
            with archive.open(key + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
            del array


# ----------------------------------------------------------------------------------------------
# Measured subprocesses

# Run with ``python -c``; argv[1] is a JSON dict. Both modes do the same imports, so the baseline
# accounts for the interpreter, numpy, torch and fourd_hub; "convert" then runs the conversion.
CHILD_CODE = r"""
import json, resource, sys, time
import psutil
import torch
import fourd_hub
from fourd_hub.conversion import convert_checkpoint

args = json.loads(sys.argv[1])
report = {
    "rss_after_imports": psutil.Process().memory_info().rss,
    "maxrss_after_imports_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}
if args["mode"] == "convert":
    start = time.perf_counter()
    result = convert_checkpoint(args["source"], args["output_dir"], **args["options"])
    report["convert_s"] = time.perf_counter() - start
    report["num_parameters"] = result.num_parameters
    report["files"] = result.files
report["maxrss_self_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("BENCHMARK-RESULT " + json.dumps(report), flush=True)
"""


@dataclass
class Sample:
    t: float  # seconds since the subprocess started
    rss: int
    file_backed: int  # RssFile + RssShmem (psutil's "shared" on Linux)
    read_bytes: int  # bytes read through read() and friends (rchar)
    written_bytes: int  # bytes written (wchar)


@dataclass
class ChildRun:
    report: dict
    maxrss: int  # bytes, from wait4
    wall_s: float
    samples: list[Sample] = field(default_factory=list)

    @property
    def sampled_peak(self) -> Sample | None:
        return max(self.samples, key=lambda s: s.rss) if self.samples else None

    @property
    def sampled_peak_anon(self) -> int:
        """Peak of the anonymous part of RSS (heap, numpy/torch buffers), excluding file-backed pages."""
        return max((s.rss - s.file_backed for s in self.samples), default=0)


def _maxrss_bytes(ru_maxrss: int) -> int:
    return ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024


def _sample_loop(process: psutil.Process, start: float, interval: float, out: list[Sample], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with process.oneshot():
                memory = process.memory_info()
                io = process.io_counters()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            break
        out.append(
            Sample(
                t=time.perf_counter() - start,
                rss=memory.rss,
                file_backed=getattr(memory, "shared", 0),
                read_bytes=getattr(io, "read_chars", io.read_bytes),
                written_bytes=getattr(io, "write_chars", io.write_bytes),
            )
        )
        stop.wait(interval)


def run_child(args: dict, sample_interval: float) -> ChildRun:
    """Run ``CHILD_CODE`` in a fresh interpreter; return its report, exact peak RSS and RSS samples."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD_CODE, json.dumps(args)], stdout=subprocess.PIPE, text=True)
    samples: list[Sample] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_loop, args=(psutil.Process(proc.pid), start, sample_interval, samples, stop))
    sampler.start()
    try:
        stdout = proc.stdout.read()
        # Reap the child ourselves: wait4 returns this child's own rusage (ru_maxrss = its peak RSS).
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        stop.set()
        sampler.join()
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    sys.stdout.write("".join(line + "\n" for line in stdout.splitlines() if not line.startswith("BENCHMARK-RESULT ")))
    if proc.returncode != 0:
        raise SystemExit(f"the {args['mode']} subprocess failed with exit code {proc.returncode} (traceback above)")
    lines = [line for line in stdout.splitlines() if line.startswith("BENCHMARK-RESULT ")]
    report = json.loads(lines[-1][len("BENCHMARK-RESULT ") :])
    return ChildRun(report=report, maxrss=_maxrss_bytes(usage.ru_maxrss), wall_s=wall, samples=samples)


# ----------------------------------------------------------------------------------------------
# Reporting


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def size_text(n: int) -> str:
    return f"{n:,} bytes ({n / 1e9:.3f} GB, {n / 2**30:.3f} GiB)"


def print_timeline(run: ChildRun, rows: int, source_bytes: int) -> None:
    if rows <= 0 or not run.samples:
        return
    samples = run.samples
    peak = run.sampled_peak
    picks = {round(i * (len(samples) - 1) / max(rows - 1, 1)) for i in range(rows)}
    picks.add(samples.index(peak))
    print(f"\nRSS timeline of the conversion subprocess ({len(samples)} samples; {rows} shown + the sampled peak):")
    print(f"  {'t [s]':>7}  {'RSS':>12}  {'anon':>12}  {'file-backed':>12}  {'read':>10}  {'written':>10}")
    for index in sorted(picks):
        s = samples[index]
        mark = "  <- sampled peak" if s is peak else ""
        print(
            f"  {s.t:7.2f}  {mib(s.rss):>12}  {mib(s.rss - s.file_backed):>12}  {mib(s.file_backed):>12}  "
            f"{s.read_bytes / 1e9:8.3f}GB  {s.written_bytes / 1e9:8.3f}GB{mark}"
        )
    print(f"  (read/written count all I/O of the child: imports, header pass, data, any verify/sha256 pass; source file is {source_bytes / 1e9:.3f} GB)")


# ----------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="H", help="4DS backbone size to synthesise (default: H)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="output dtype (default: float32)")
    parser.add_argument("--max-shard-size", default="2GB", help="safetensors shard size (default: 2GB)")
    parser.add_argument("--verify", action="store_true", help="let the converter re-read and compare every tensor")
    parser.add_argument("--sha256", action="store_true", help="let the converter hash the source file")
    parser.add_argument("--workdir", type=Path, help="directory for the temporary files (default: system temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic checkpoint and the converted output")
    parser.add_argument("--checkpoint", type=Path, help="reuse this synthetic .npz (of --size) instead of generating one")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic weights (default: 0)")
    parser.add_argument("--sample-interval", type=float, default=0.05, help="psutil sampling period in seconds (default: 0.05)")
    parser.add_argument("--timeline", type=int, default=12, metavar="ROWS", help="RSS timeline rows to print (0: none)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    size = SIZES[args.size]
    arrays = checkpoint_arrays(size)
    num_parameters = sum(math.prod(shape) for _, shape in arrays)
    assert num_parameters == size.num_parameters, (
        f"synthetic 4DS-{args.size} has {num_parameters:,} parameters, Table 1 says {size.num_parameters:,}"
    )
    largest_key, largest_shape = max(arrays, key=lambda a: math.prod(a[1]))
    largest_bytes = math.prod(largest_shape) * 4  # source arrays are float32

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="fourd-convert-memory-", dir=args.workdir))
    try:
        print(f"4DS-{args.size} backbone: {len(arrays)} arrays, {num_parameters:,} float32 parameters")
        print(f"work directory: {workdir}")
        if args.checkpoint is not None:
            source = args.checkpoint
            print(f"reusing checkpoint {source}")
        else:
            source = workdir / f"synthetic_4ds_{args.size.lower()}.npz"
            start = time.perf_counter()
            write_synthetic_npz(source, arrays, args.seed)
            print(f"generated {source.name} in {time.perf_counter() - start:.1f} s (streaming, one array at a time)")
        checkpoint_bytes = source.stat().st_size

        options = dict(
            preset=args.size,
            dtype=args.dtype,
            max_shard_size=args.max_shard_size,
            verify=args.verify,
            compute_sha256=args.sha256,
            progress=False,
        )
        print("running baseline subprocess (same imports, no conversion) ...")
        baseline = run_child({"mode": "baseline"}, args.sample_interval)
        print(f"running conversion subprocess: convert_checkpoint(source, output_dir, {', '.join(f'{k}={v!r}' for k, v in options.items())}) ...")
        output_dir = workdir / "converted"
        conversion = run_child(
            {"mode": "convert", "source": str(source), "output_dir": str(output_dir), "options": options},
            args.sample_interval,
        )
        children_maxrss = _maxrss_bytes(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        assert conversion.report["num_parameters"] == num_parameters, "converter reports a different parameter count"
        output_bytes = sum(f.stat().st_size for f in output_dir.iterdir() if f.is_file())

        peak, base = conversion.maxrss, baseline.maxrss
        overhead = peak - base
        sampled = conversion.sampled_peak
        print()
        print("=" * 78)
        print(f"4DS-{args.size} conversion memory  (dtype={args.dtype}, max_shard_size={args.max_shard_size}, "
              f"verify={args.verify}, sha256={args.sha256})")
        print("=" * 78)
        print(f"checkpoint size           : {size_text(checkpoint_bytes)}")
        print(f"parameters                : {num_parameters:,} in {len(arrays)} arrays")
        print(f"largest tensor            : {size_text(largest_bytes)}  {largest_key} {largest_shape}")
        print(f"output written            : {size_text(output_bytes)} in {len(conversion.report['files'])} "
              f"safetensors file(s)")
        print(f"peak RSS (conversion)     : {mib(peak)}   [ru_maxrss of the child, via os.wait4]")
        print(f"peak RSS (baseline)       : {mib(base)}   [same imports, no conversion]")
        print(f"peak - baseline           : {mib(overhead)}")
        print(f"RSS after imports         : conversion child {mib(conversion.report['rss_after_imports'])}, "
              f"baseline child {mib(baseline.report['rss_after_imports'])}")
        if sampled is not None:
            print(f"sampled peak RSS (psutil) : {mib(sampled.rss)} (anon {mib(sampled.rss - sampled.file_backed)}, "
                  f"file-backed {mib(sampled.file_backed)}) at t={sampled.t:.2f} s, "
                  f"{len(conversion.samples)} samples every {args.sample_interval} s")
            anon_overhead = conversion.sampled_peak_anon - baseline.sampled_peak_anon
            print(f"sampled peak anon RSS     : {mib(conversion.sampled_peak_anon)} (baseline {mib(baseline.sampled_peak_anon)}, "
                  f"difference {mib(anon_overhead)} = {anon_overhead / largest_bytes:.2f} x largest tensor)")
        print(f"RUSAGE_CHILDREN ru_maxrss : {mib(children_maxrss)}   [max over both children; cross-check]")
        print("ratios:")
        print(f"  peak RSS / largest tensor            : {peak / largest_bytes:8.2f}")
        print(f"  (peak - baseline) / largest tensor   : {overhead / largest_bytes:8.2f}")
        print(f"  peak RSS / checkpoint size           : {peak / checkpoint_bytes:8.4f}")
        print(f"  (peak - baseline) / checkpoint size  : {overhead / checkpoint_bytes:8.4f}")
        print(f"conversion wall time      : {conversion.report['convert_s']:.2f} s inside convert_checkpoint "
              f"({checkpoint_bytes / 1e6 / conversion.report['convert_s']:,.0f} MB/s); "
              f"{conversion.wall_s:.2f} s for the whole subprocess")
        print_timeline(conversion, args.timeline, checkpoint_bytes)
    finally:
        if args.keep:
            print(f"\nkept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
