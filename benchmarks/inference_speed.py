"""Inference speed as a fraction of the machine's GEMM rate: 4DS-B forward and the MooG step, fp32 and bf16.

What it measures (random weights; the speed does not depend on their values):

* ``4DS-B``: ``FourDSModel`` of the B preset on one 16x224x224 clip (1568 tokens, 12 blocks);
* ``MooG step``: ``MooGModel.step`` of the Ego4D preset (1024 state tokens x 512, 3 predictor and
  2 corrector blocks) on the encoder tokens of one 128x128 frame (1024 tokens), ``--moog-steps``
  steps per timing;

each as float32, as bfloat16 via ``model.to(torch.bfloat16)`` (the bf16 attention path of
``fourd_hub.layers.scaled_dot_product_attention``), as bfloat16 with that path switched off
(``layers.CPU_BF16_ATTENTION = False``: torch's SDPA), as bfloat16 with the fused oneDNN ops
switched off (``layers.CPU_BF16_FUSED_OPS = False``: ``F.linear`` then the bias and tanh-GELU as
separate ops, ``nn.RMSNorm`` output left for the attention GEMMs to copy), and as the float32 model under
``torch.autocast("cpu", dtype=torch.bfloat16)``; and the machine's GEMM rate: a 1568x768 @ 768x3072
matmul (the 4DS-B MLP's, large and well shaped) in float32 and in bfloat16, repeated for about a
second per measurement (``--gemm-seconds``) so that it samples the load as long as a model call.

How: every variant runs once per round, the rounds alternate the variants (load changes from other
work then hit all of them alike), and each variant's median over the rounds is used. FLOPs are
counted once per variant with ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, convolutions
and attention, 2 FLOPs per multiply-add; norms, activations and softmax not counted; SDPA counted
through its math backend, as the counter has no formula for the CPU flash kernel), so
"GFLOP/s" is matmul work per second and "fraction" is that over the GEMM rate of the same dtype
measured in the same rounds (fp32 variants: the fp32 GEMM; bf16 and autocast: the bf16 GEMM);
"fraction, CPU time" divides rates per second of this process's CPU time
(``time.process_time``, medians) instead of wall time: with ``--threads 1`` it hardly depends on
the load, so on a shared machine it is the column to read (with more threads it also counts the
time OpenMP threads spin while waiting for each other). The
load average is printed before and after. On a machine other work shares, run with
``OMP_WAIT_POLICY=PASSIVE`` or ``--threads 1``: with torch's default OpenMP waiting, a thread
whose partner was descheduled spins, and the models (hundreds of ops, each an OpenMP parallel
region) slow down several fold, unlike the GEMM they are compared with.

Usage::

    python benchmarks/inference_speed.py               # 5 rounds, about 1-2 minutes on 2 idle cores
    OMP_WAIT_POLICY=PASSIVE python benchmarks/inference_speed.py     # on a shared machine
    python benchmarks/inference_speed.py --threads 1 --rounds 5
    python benchmarks/inference_speed.py --skip-moog --frames 8
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import statistics
import time
from typing import Callable

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from fourd_hub import FourDSConfig, FourDSModel, MooGConfig, MooGModel, layers


@contextlib.contextmanager
def sdpa_attention():
    """Switch the bf16 CPU attention path off (torch's SDPA everywhere) inside the block."""
    previous = layers.CPU_BF16_ATTENTION
    layers.CPU_BF16_ATTENTION = False
    try:
        yield
    finally:
        layers.CPU_BF16_ATTENTION = previous


@contextlib.contextmanager
def unfused_ops():
    """Switch the fused bf16 CPU linears / q-k norm layout off inside the block."""
    previous = layers.CPU_BF16_FUSED_OPS
    layers.CPU_BF16_FUSED_OPS = False
    try:
        yield
    finally:
        layers.CPU_BF16_FUSED_OPS = previous


def autocast_bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def build(args: argparse.Namespace) -> tuple[dict[str, Callable[[], object]], dict[str, str]]:
    """name -> zero-argument callable, and name -> which GEMM rate ("fp32" / "bf16") it is compared with."""
    torch.manual_seed(0)
    x32, w32 = torch.randn(1568, 768), torch.randn(3072, 768)
    x16, w16 = x32.bfloat16(), w32.bfloat16()

    def gemms(x: torch.Tensor, w: torch.Tensor) -> Callable[[], object]:
        # Repeated to about --gemm-seconds, so that the rate samples the load as long as a model call does.
        with torch.inference_mode():
            x @ w.t()
            start = time.perf_counter()
            x @ w.t()
            repeats = max(1, round(args.gemm_seconds / (time.perf_counter() - start)))
        return lambda: [x @ w.t() for _ in range(repeats)]

    calls: dict[str, Callable[[], object]] = {"GEMM fp32": gemms(x32, w32), "GEMM bf16": gemms(x16, w16)}
    kinds = {"GEMM fp32": "fp32", "GEMM bf16": "bf16"}

    def add(name: str, kind: str, fn: Callable[[], object], context: Callable = contextlib.nullcontext) -> None:
        def call():
            with context():
                return fn()

        calls[name], kinds[name] = call, kind

    config = FourDSConfig.from_preset("B", num_frames=args.frames, image_size=[args.size, args.size])
    fourds32 = FourDSModel(config).eval()
    fourds16 = copy.deepcopy(fourds32).to(torch.bfloat16)
    video = torch.rand(1, args.frames, 3, args.size, args.size)
    label = f"4DS-B {args.frames}x{args.size}x{args.size}"
    add(f"{label} fp32", "fp32", lambda: fourds32(video).last_hidden_state)
    add(f"{label} bf16 (.to)", "bf16", lambda: fourds16(video).last_hidden_state)
    add(f"{label} bf16 (.to), SDPA attention", "bf16", lambda: fourds16(video).last_hidden_state, sdpa_attention)
    add(f"{label} bf16 (.to), unfused ops", "bf16", lambda: fourds16(video).last_hidden_state, unfused_ops)
    add(f"{label} autocast bf16", "bf16", lambda: fourds32(video).last_hidden_state, autocast_bf16)

    if not args.skip_moog:
        moog32 = MooGModel(MooGConfig.from_preset("ego4d"), add_decoder=False).eval()
        moog16 = copy.deepcopy(moog32).to(torch.bfloat16)
        generator = torch.Generator().manual_seed(1)
        frame = torch.rand(1, 1, 3, 128, 128, generator=generator)
        with torch.inference_mode():
            state32 = moog32.initial_state(1, generator=generator)
            tokens32 = moog32.encode(frame)[:, 0]
        state16, tokens16 = state32.bfloat16(), tokens32.bfloat16()

        def steps(model: MooGModel, state: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
            for _ in range(args.moog_steps):
                state = model.step(state, tokens)
            return state

        label = f"MooG step x{args.moog_steps}"
        add(f"{label} fp32", "fp32", lambda: steps(moog32, state32, tokens32))
        add(f"{label} bf16 (.to)", "bf16", lambda: steps(moog16, state16, tokens16))
        add(f"{label} bf16 (.to), SDPA attention", "bf16", lambda: steps(moog16, state16, tokens16), sdpa_attention)
        add(f"{label} bf16 (.to), unfused ops", "bf16", lambda: steps(moog16, state16, tokens16), unfused_ops)
        add(f"{label} autocast bf16", "bf16", lambda: steps(moog32, state32, tokens32), autocast_bf16)
    return calls, kinds


def count_flops(fn: Callable[[], object]) -> int:
    """Matmul FLOPs of one call. SDPA runs its math backend here: FlopCounterMode has no formula for
    the CPU flash kernel (it would count no attention at all), and the math backend's bmm's are the
    same 4 * B * heads * L * S * d as the bf16 path's baddbmm / bmm."""
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):
        fn()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224, help="square frame size of the 4DS clip (multiple of 16)")
    parser.add_argument("--moog-steps", type=int, default=4, help="MooG steps per timing")
    parser.add_argument("--skip-moog", action="store_true")
    parser.add_argument("--gemm-seconds", type=float, default=1.0, help="length of one GEMM-rate measurement")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    calls, kinds = build(args)
    with torch.inference_mode():
        flops = {name: count_flops(fn) for name, fn in calls.items()}  # also the warm-up
        times: dict[str, list[float]] = {name: [] for name in calls}
        cpu_times: dict[str, list[float]] = {name: [] for name in calls}
        load_before = os.getloadavg()
        for _ in range(args.rounds):
            for name, fn in calls.items():
                start, cpu_start = time.perf_counter(), time.process_time()
                fn()
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - cpu_start)
        load_after = os.getloadavg()

    median = {name: statistics.median(values) for name, values in times.items()}
    cpu = {name: statistics.median(values) for name, values in cpu_times.items()}
    cpu_rate = {kind: flops[f"GEMM {kind}"] / cpu[f"GEMM {kind}"] for kind in ("fp32", "bf16")}
    rate = {kind: flops[f"GEMM {kind}"] / median[f"GEMM {kind}"] / 1e9 for kind in ("fp32", "bf16")}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, bf16 attention path: "
        f"{'on' if layers._cpu_has_fast_bf16_gemm_only() else 'off (SDPA)'}, fused ops: "
        f"{'on' if layers.CPU_BF16_FUSED_OPS and layers._cpu_has_fast_bf16_gemm_only() else 'off'}; {args.rounds} rounds; "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; "
        f"load average {load_before[0]:.2f} {load_before[1]:.2f} -> {load_after[0]:.2f} {load_after[1]:.2f}"
    )
    print(f"GEMM rate (1568x768 @ 768x3072), same rounds: fp32 {rate['fp32']:.0f} GFLOP/s, bf16 {rate['bf16']:.0f} GFLOP/s\n")
    print("| run | s/call | GFLOP/call | GFLOP/s | fraction of GEMM rate | fraction, CPU time |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in calls:
        kind = kinds[name]
        gflops = flops[name] / median[name] / 1e9
        cpu_fraction = flops[name] / cpu[name] / cpu_rate[kind]
        print(f"| {name} | {median[name]:.3f} | {flops[name] / 1e9:.1f} | {gflops:.0f} | "
              f"{gflops / rate[kind]:.2f} ({kind}) | {cpu_fraction:.2f} |")
    print()
    for prefix in sorted({name.rsplit(" fp32", 1)[0] for name in calls if name.endswith(" fp32") and not name.startswith("GEMM")}):
        to, sdpa, auto = (median[f"{prefix} {suffix}"] for suffix in ("bf16 (.to)", "bf16 (.to), SDPA attention", "autocast bf16"))
        cpu_to, cpu_sdpa, cpu_auto = (cpu[f"{prefix} {suffix}"] for suffix in ("bf16 (.to)", "bf16 (.to), SDPA attention", "autocast bf16"))
        unfused, cpu_unfused = median[f"{prefix} bf16 (.to), unfused ops"], cpu[f"{prefix} bf16 (.to), unfused ops"]
        print(f"{prefix}: fused ops {unfused / to:.2f}x ({cpu_unfused / cpu_to:.2f}x CPU time) as fast as unfused; "
              f"bf16 attention path {sdpa / to:.2f}x ({cpu_sdpa / cpu_to:.2f}x CPU time) as fast as SDPA in bf16; autocast "
              f"{100 * (auto / to - 1):+.0f}% time ({100 * (cpu_auto / cpu_to - 1):+.0f}% CPU time) vs .to(bfloat16); "
              f"fp32 -> bf16 {median[prefix + ' fp32'] / to:.2f}x")


if __name__ == "__main__":
    main()
