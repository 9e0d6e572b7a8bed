"""Pretraining throughput and peak memory: debug and 4DS-B recipes, one process vs 2-process FSDP2.

What it does
------------
For each recipe (default ``debug`` and ``4ds-b``) and each process count (default 1 and 2), a
fresh ``torchrun`` job runs ``fourd_hub.training.pretrain.pretrain`` for a few steps on synthetic
clips, without checkpoints or export. The B recipe keeps the paper's model and clip size (16 x
224 x 224, 95% masking, bf16 compute) with a small batch so that a CPU finishes in minutes.

How it is measured
------------------
* clips/s and tokens/s: from the run's ``metrics.jsonl``, steps after the first ``--warmup``
  ones (which include start-up and first-touch costs) averaged as total clips / total time.
  Data loading runs in the training process (``num_workers=0``), as on a busy CPU box; rendering
  the synthetic clips is part of the time (on an accelerator, use workers).
* peak memory: each rank's ``ru_maxrss`` (the kernel's high-water mark of the resident set) at
  the end of the run; the table shows the largest rank's. On CUDA also the peak allocated memory.
* ratio: 2-process throughput over 1-process throughput for the same recipe (same global batch).

Run (from the repository root):
    python benchmarks/training_throughput.py                       # debug and 4ds-b, 1 and 2 processes
    python benchmarks/training_throughput.py --recipes debug --steps 20
    python benchmarks/training_throughput.py --recipes 4ds-b --global-batch 4 --micro-batch 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

# Small batches so a 2-core CPU finishes: the global batch is split over the processes.
DEFAULT_BATCH = {"debug": (8, 2), "4ds-b": (2, 1)}


def worker(args: argparse.Namespace) -> None:
    """One rank: train, then print this rank's peak memory as a JSON line."""
    import torch

    from fourd_hub.training.pretrain import pretrain
    from fourd_hub.training.recipes import get_recipe

    recipe = get_recipe(
        args.recipe, max_steps=args.steps, global_batch_size=args.global_batch, micro_batch_size=args.micro_batch,
        checkpoint_every=0, num_workers=0, log_every=1, data="synthetic",
    )
    pretrain(recipe, args.output_dir, resume=False, export=False, progress=False)
    report = {"rank": int(os.environ.get("RANK", 0)), "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        report["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print("REPORT " + json.dumps(report), flush=True)


def run(recipe: str, processes: int, steps: int, global_batch: int, micro_batch: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        output_dir = Path(tmp) / "run"
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
            __file__, "--worker", "--recipe", recipe, "--steps", str(steps), "--global-batch", str(global_batch),
            "--micro-batch", str(micro_batch), "--output-dir", str(output_dir),
        ]
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // processes))}
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode:
            raise RuntimeError(f"{recipe} x{processes} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
        reports = [json.loads(line[7:]) for line in result.stdout.splitlines() if line.startswith("REPORT ")]
        records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in records if r["step"] > warmup]
    seconds = sum(global_batch / r["clips_per_s"] for r in timed)
    clips_per_s = len(timed) * global_batch / seconds
    tokens_per_clip = timed[0]["tokens_per_s"] / timed[0]["clips_per_s"]
    return {
        "recipe": recipe, "processes": processes, "clips_per_s": clips_per_s, "tokens_per_s": clips_per_s * tokens_per_clip,
        "peak_rss_mib": max(r["max_rss_mib"] for r in reports),
        "cuda_peak_mib": max((r.get("cuda_peak_mib", 0.0) for r in reports), default=0.0),
        "first_loss": records[0]["loss"], "last_loss": records[-1]["loss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["debug", "4ds-b"])
    parser.add_argument("--processes", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: debug 12, others 4)")
    parser.add_argument("--warmup", type=int, default=1, help="first steps not timed")
    parser.add_argument("--global-batch", type=int, help="clips per step (default per recipe)")
    parser.add_argument("--micro-batch", type=int, help="clips per process per forward (default per recipe)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--recipe", help=argparse.SUPPRESS)
    parser.add_argument("--output-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, CUDA: {torch.cuda.is_available()}")
    print(f"{'recipe':8} {'procs':>5} {'clips/s':>9} {'tokens/s':>10} {'peak RSS MiB':>13} {'CUDA MiB':>9} "
          f"{'loss first->last':>18} {'vs 1 proc':>9}")
    for recipe in args.recipes:
        global_batch, micro_batch = DEFAULT_BATCH.get(recipe, (max(args.processes), 1))
        global_batch = args.global_batch or global_batch
        micro_batch = args.micro_batch or micro_batch
        steps = args.steps or (12 if recipe.startswith("debug") else 4)
        baseline = None
        for processes in args.processes:
            if global_batch % (micro_batch * processes):
                print(f"{recipe:8} {processes:>5}   skipped: global batch {global_batch} does not split over {processes} x {micro_batch}")
                continue
            row = run(recipe, processes, steps, global_batch, micro_batch, args.warmup)
            baseline = baseline or row["clips_per_s"]
            print(f"{recipe:8} {processes:>5} {row['clips_per_s']:>9.3f} {row['tokens_per_s']:>10.0f} {row['peak_rss_mib']:>13.0f} "
                  f"{row['cuda_peak_mib']:>9.0f} {row['first_loss']:>8.4f}->{row['last_loss']:<8.4f} "
                  f"{row['clips_per_s'] / baseline:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()
