"""Peak memory of ``FourDSModel.from_pretrained`` on a float32 checkpoint, loaded in float32 and in bfloat16.

What it does
------------
1. Writes a random-weight float32 checkpoint of a 4DS size (default H: 633M parameters, 2.5 GB)
   with the project's own streaming writer (``fourd_hub.conversion.safetensors_io``: one tensor
   in memory at a time, the sha256 of each file's data in its header, as a conversion writes it)
   and the size's ``config.json``.
2. For each setting (float32 / bfloat16, and the reader: ``plain`` = fourd_hub's plain-read
   loader, ``mmap`` = transformers' own memory-mapped reading; ``from_pretrained`` uses the
   first when it casts, the second otherwise) a fresh subprocess runs
   ``FourDSModel.from_pretrained(directory, dtype=...)``, then checks the model's dtype.
3. A baseline subprocess does the same imports (python, torch, fourd_hub) and loads nothing.

How it is measured
------------------
* peak RSS: each child's ``ru_maxrss`` from ``os.wait4`` (the kernel's high-water mark of its
  resident set, file-backed pages of memory-mapped files included; no peak can be missed), minus
  the baseline's. It is compared with the loaded model's own bytes (parameters and buffers in the
  dtype it was loaded in): the plain-read loader's target is at most 1.3x in bfloat16.
* sampled RSS (psutil, every ``--sample-interval`` s): the peak split into anonymous memory and
  file-backed pages (what a memory map keeps resident), to show where the memory is.
* seconds: wall time of ``from_pretrained`` inside the child (checksum verification included;
  the file is in the page cache after writing, so this is not a cold-disk read), and its CPU
  time (user + system, all threads), steadier than wall time on a shared machine.

Run (from the repository root):
    python benchmarks/load_memory.py                    # 4DS-H, ~2.5 GB checkpoint (a few minutes)
    python benchmarks/load_memory.py --size S           # quick run (~90 MB)
    python benchmarks/load_memory.py --size L --readers plain --max-shard-size 500MB
    python benchmarks/load_memory.py --size L --another-task --readers default   # a task model from another task's checkpoint

Everything is written to a temporary directory (or under ``--workdir``) and deleted at the end
unless ``--keep``; ``--checkpoint DIR`` reuses a kept directory. Linux is assumed (``ru_maxrss``
in KiB, psutil's ``shared`` = file-backed resident pages).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

CHILD = r"""
import json, resource, sys, time
import torch
import fourd_hub
import fourd_hub
from fourd_hub import modeling_utils

args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
report = {}
if args["mode"] == "load":
    modeling_utils._PLAIN_READS = {"plain": "always", "mmap": "never", "default": "when-casting"}[args["reader"]]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start, cpu = time.perf_counter(), usage.ru_utime + usage.ru_stime
    model = getattr(fourd_hub, args["load_class"]).from_pretrained(args["directory"], dtype=getattr(torch, args["dtype"]))
    report["seconds"] = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report["cpu_seconds"] = usage.ru_utime + usage.ru_stime - cpu
    tensors = [*model.parameters(), *model.buffers()]
    report["model_bytes"] = sum(t.numel() * t.element_size() for t in tensors)
    report["num_parameters"] = sum(p.numel() for p in model.parameters())
    report["dtypes"] = sorted({str(t.dtype) for t in tensors if t.is_floating_point()})
print("BENCHMARK-RESULT " + json.dumps(report), flush=True)
"""


def write_checkpoint(directory: Path, size: str, max_shard_bytes: int, seed: int, saved_class: str = "FourDSModel") -> int:
    """A random-weight float32 4DS-``size`` directory saved as ``saved_class``, one tensor in memory at a time; returns its parameter count."""
    import torch

    import fourd_hub
    from fourd_hub import FourDSConfig
    from fourd_hub.conversion.safetensors_io import TensorPlan, write_sharded_safetensors

    config = FourDSConfig.from_preset(size)
    config.architectures = [saved_class]
    with torch.device("meta"):
        model = getattr(fourd_hub, saved_class)(config)
    config = model.config  # a task model's copy, with its head's hyper-parameters
    plans = [TensorPlan(name, tuple(tensor.shape), torch.float32) for name, tensor in model.state_dict().items()]
    generator = torch.Generator().manual_seed(seed)

    def produce(plan: TensorPlan) -> torch.Tensor:
        return torch.randn(plan.shape, generator=generator) * 0.02  # small values, like trained weights

    directory.mkdir(parents=True, exist_ok=True)
    write_sharded_safetensors(directory, plans, produce, max_shard_bytes)
    config.save_pretrained(directory)
    return sum(p.numel() for p in model.parameters())


def _sample(process: psutil.Process, out: list[tuple[int, int]], stop: threading.Event, interval: float) -> None:
    while not stop.is_set():
        try:
            memory = process.memory_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            break
        out.append((memory.rss, getattr(memory, "shared", 0)))
        stop.wait(interval)


def run_child(args: dict, interval: float) -> dict:
    """Run ``CHILD`` in a fresh interpreter: its report, exact peak RSS (bytes) and sampled peak split."""
    process = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], stdout=subprocess.PIPE, text=True)
    samples: list[tuple[int, int]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(psutil.Process(process.pid), samples, stop, interval))
    sampler.start()
    try:
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        stop.set()
        sampler.join()
    process.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the {args} subprocess failed (traceback above)")
    lines = [line for line in output.splitlines() if line.startswith("BENCHMARK-RESULT ")]
    report = json.loads(lines[-1][len("BENCHMARK-RESULT ") :])
    report["peak"] = usage.ru_maxrss * 1024
    rss, file_backed = max(samples, default=(0, 0))
    report["sampled_anon"], report["sampled_file"] = rss - file_backed, file_backed
    return report


def _bytes(text: str) -> int:
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
    text = text.strip().upper()
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="H", help="4DS size (S, B, L, H, ...; default H)")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--readers", nargs="+", default=["plain", "mmap"], choices=["plain", "mmap", "default"],
                        help="plain: fourd_hub's plain-read loader; mmap: transformers' memory-mapped reading (the old "
                        "path); default: what from_pretrained does (plain reads when it casts, else the memory map)")
    parser.add_argument("--max-shard-size", default="50GB", help="shard size of the written checkpoint (default: one file)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--checkpoint", type=Path, help="reuse this directory (written by --keep) instead of writing one")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--another-task", action="store_true",
                        help="save the checkpoint as FourDSForDepthEstimation and load FourDSForVideoClassification from "
                        "it (the backbone loaded, the depth head never read, a fresh classification head)")
    parser.add_argument("--sample-interval", type=float, default=0.05)
    args = parser.parse_args(argv)

    saved_class, load_class = ("FourDSForDepthEstimation", "FourDSForVideoClassification") if args.another_task else ("FourDSModel",) * 2
    workdir = Path(tempfile.mkdtemp(prefix="fourd-load-memory-", dir=args.workdir))
    try:
        if args.checkpoint is not None:
            directory = args.checkpoint
        else:
            directory = workdir / f"4ds-{args.size.lower()}"
            start = time.perf_counter()
            count = write_checkpoint(directory, args.size, _bytes(args.max_shard_size), args.seed, saved_class)
            print(f"wrote a random float32 4DS-{args.size} ({count:,} parameters) in {time.perf_counter() - start:.1f} s")
        files = sorted(directory.glob("*.safetensors"))
        file_bytes = sum(f.stat().st_size for f in files)
        print(f"{directory}: {len(files)} safetensors file(s), {file_bytes / 2**20:,.0f} MiB; {args.threads} threads")
        print(f"saved as {saved_class}, loaded as {load_class}")
        baseline = run_child({"mode": "baseline", "threads": args.threads}, args.sample_interval)
        print(f"baseline (python + torch + fourd_hub imported): peak RSS {baseline['peak'] / 2**20:,.0f} MiB")
        header = f"{'dtype':>9} {'reader':>7} {'seconds':>8} {'CPU s':>6} {'model MiB':>10} {'peak MiB':>9} {'- baseline':>11} {'/ model':>8} {'anon MiB':>9} {'mapped MiB':>11}"
        print(header)
        for dtype in args.dtypes:
            for reader in args.readers:
                report = run_child(
                    {"mode": "load", "directory": str(directory), "dtype": dtype, "reader": reader, "threads": args.threads, "load_class": load_class},
                    args.sample_interval,
                )
                assert report["dtypes"] == [f"torch.{dtype}"], report["dtypes"]
                extra = report["peak"] - baseline["peak"]
                print(
                    f"{dtype:>9} {reader:>7} {report['seconds']:>8.2f} {report['cpu_seconds']:>6.2f} {report['model_bytes'] / 2**20:>10,.0f} "
                    f"{report['peak'] / 2**20:>9,.0f} {extra / 2**20:>11,.0f} {extra / report['model_bytes']:>7.2f}x "
                    f"{report['sampled_anon'] / 2**20:>9,.0f} {report['sampled_file'] / 2**20:>11,.0f}"
                )
        print("anon / mapped: RSS split at the sampled peak (anonymous memory; file-backed pages, e.g. a memory-mapped checkpoint)")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
