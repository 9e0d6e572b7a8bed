"""Attention on the CPU: SDPA float32 vs bfloat16 vs the alternatives, in GFLOP/s.

Why this exists: on a CPU with AVX-512-BF16 but no AMX (e.g. AMD Zen 4), torch's SDPA runs its
flash kernel (``_scaled_dot_product_flash_attention_for_cpu``, q blocks of 256 x kv blocks of 512
for long sequences) whose block GEMMs go to ``cpublas::gemm`` -> MKL ``cblas_gemm_bf16bf16f32``
(see it with ``MKL_VERBOSE=1``: ``GEMM_BF16BF16F32(T,N,512,256,64,...)``), and MKL does not use the
bf16 dot-product instructions on these CPUs, so bf16 attention runs at the float32 rate. torch's
``bmm`` / ``baddbmm`` on bf16 go to oneDNN instead (``ONEDNN_VERBOSE=1``:
``brg_matmul:avx512_core_bf16``), which does. ``fourd_hub.layers.scaled_dot_product_attention``
uses that for bf16 inference (score blocks of at most ``CPU_BF16_SCORE_BLOCK`` entries).

What it measures, per attention shape (default: 4DS-B on a 16x224x224 clip, 12 heads x 1568
tokens x 64, and the MooG corrector, 8 heads x 1024 x 64), alternating the variants round by
round (the machine may be shared: load changes then hit all of them alike) and taking medians:

* ``sdpa fp32`` / ``sdpa bf16`` / ``sdpa math bf16``: ``F.scaled_dot_product_attention`` (flash
  kernel; the math backend through ``sdpa_kernel(SDPBackend.MATH)``);
* ``explicit bf16``: ``q @ k^T``, softmax, ``p @ v`` as whole bmm's over all heads (the scores of
  every head at once: 59 MB for 4DS-B); ``... softmax fp32``: the softmax in float32;
* ``chunked c=128``: all heads, 128 queries per step (scores in a fresh tensor each step);
* ``online softmax``: flash-style, per head and query block, kv blocks of 512 with a running max
  and sum (what SDPA's kernel does, from Python with oneDNN GEMMs);
* ``fourd_hub``: the library's path (score blocks of at most ``CPU_BF16_SCORE_BLOCK`` entries, in place, ``baddbmm``
  with the scale folded in);
* its three parts alone on the same blocks (``q@k^T``, ``softmax``, ``p@v``), and the reference
  GEMMs: ``gemm bf16`` / ``gemm fp32`` = the model's MLP GEMM (1568 x 768 -> 3072, a large,
  well-shaped GEMM: the machine's GEMM rate), and ``torch.compile`` of the explicit form
  (``--compile``, about 20 s more).

Attention FLOPs are ``4 * B * heads * L * S * d`` (two GEMMs; softmax not counted). Each row
prints milliseconds, GFLOP/s, the fraction of the bf16 GEMM rate measured in the same rounds
(fp32 variants: of the fp32 GEMM rate) and the max-abs error against float32 SDPA.

On a machine other work shares, run with ``OMP_WAIT_POLICY=PASSIVE`` (or ``--threads 1``): with
torch's default OpenMP waiting, a thread whose partner was descheduled spins, and code made of many
ops (each an OpenMP parallel region: the explicit variants, the model's layers) slows down several
fold while one fused kernel (SDPA) does not, which says nothing about an idle machine. The header
prints the load average and ``OMP_WAIT_POLICY``.

Usage::

    python benchmarks/attention_bf16.py                 # both shapes, 7 rounds (about a minute)
    OMP_WAIT_POLICY=PASSIVE python benchmarks/attention_bf16.py   # on a shared machine
    python benchmarks/attention_bf16.py --threads 1 --rounds 11
    python benchmarks/attention_bf16.py --shapes 1x12x1568x64 --compile
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from fourd_hub import layers


def variants(shape: tuple[int, int, int, int], compile_too: bool) -> tuple[dict[str, Callable], dict[str, tuple[int, str]]]:
    """name -> callable, and name -> (FLOPs, which GEMM rate it is compared with)."""
    batch, heads, tokens, dim = shape
    generator = torch.Generator().manual_seed(0)
    qf, kf, vf = (torch.randn(shape, generator=generator) for _ in range(3))
    q, k, v = (t.bfloat16() for t in (qf, kf, vf))
    scale = dim**-0.5
    attention_flops = 4 * batch * heads * tokens * tokens * dim
    bh = batch * heads
    q3, k3, v3 = (t.reshape(bh, tokens, dim) for t in (q, k, v))

    def explicit(softmax_fp32: bool = False) -> torch.Tensor:
        scores = torch.bmm(q3 * scale, k3.transpose(1, 2))
        probs = scores.softmax(-1, dtype=torch.float32).bfloat16() if softmax_fp32 else scores.softmax(-1)
        return torch.bmm(probs, v3).view(shape)

    def chunked(chunk: int = 128) -> torch.Tensor:
        qs, kt, out = q3 * scale, k3.transpose(1, 2), torch.empty_like(q3)
        for start in range(0, tokens, chunk):
            scores = torch.bmm(qs[:, start : start + chunk], kt)
            torch.bmm(scores.softmax(-1), v3, out=out[:, start : start + chunk])
        return out.view(shape)

    def online(kv_chunk: int = 512) -> torch.Tensor:
        # Flash-style: per head and block of queries, kv blocks with a running max and sum (fp32).
        qs, kt, out = q3 * scale, k3.transpose(1, 2), torch.empty_like(q3)
        q_chunk = max(1, layers.CPU_BF16_SCORE_BLOCK // tokens)
        for head in range(bh):
            for q0 in range(0, tokens, q_chunk):
                rows = qs[head, q0 : q0 + q_chunk]
                top = torch.full((rows.shape[0], 1), -math.inf)
                total = torch.zeros(rows.shape[0], 1)
                acc = torch.zeros(rows.shape[0], dim)
                for k0 in range(0, tokens, kv_chunk):
                    scores = rows @ kt[head, :, k0 : k0 + kv_chunk]
                    new_top = torch.maximum(top, scores.amax(-1, keepdim=True).float())
                    probs = (scores - new_top.bfloat16()).exp_()
                    rescale = (top - new_top).exp_()
                    total = total * rescale + probs.sum(-1, keepdim=True, dtype=torch.float32)
                    acc = acc * rescale + probs @ v3[head, k0 : k0 + kv_chunk]
                    top = new_top
                out[head, q0 : q0 + q_chunk] = acc / total
        return out.view(shape)

    def math_backend() -> torch.Tensor:
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v)

    plan = layers.cpu_bf16_score_blocks(bh, tokens, tokens)
    kt = k3.transpose(1, 2)
    blocks = [torch.empty(h1 - h0, q1 - q0, tokens, dtype=torch.bfloat16) for h0, h1, q0, q1 in plan]
    out = torch.empty_like(q3)

    def part_qk() -> None:
        for (h0, h1, q0, q1), block in zip(plan, blocks):
            torch.baddbmm(block, q3[h0:h1, q0:q1], kt[h0:h1], beta=0.0, alpha=scale, out=block)

    def part_softmax() -> None:
        for block in blocks:
            torch.softmax(block, dim=-1, out=block)

    def part_pv() -> None:
        for (h0, h1, q0, q1), block in zip(plan, blocks):
            torch.bmm(block, v3[h0:h1], out=out[h0:h1, q0:q1])

    x16, w16 = torch.randn(1568, 768, generator=generator).bfloat16(), torch.randn(3072, 768, generator=generator).bfloat16()
    x32, w32 = x16.float(), w16.float()
    gemm_flops = 2 * 1568 * 768 * 3072
    fns: dict[str, Callable] = {
        "gemm bf16": lambda: x16 @ w16.t(),
        "gemm fp32": lambda: x32 @ w32.t(),
        "sdpa fp32": lambda: F.scaled_dot_product_attention(qf, kf, vf),
        "sdpa bf16": lambda: F.scaled_dot_product_attention(q, k, v),
        "sdpa math bf16": math_backend,
        "explicit bf16": explicit,
        "explicit bf16, softmax fp32": lambda: explicit(True),
        "chunked c=128 bf16": chunked,
        "online softmax, kv 512 bf16": online,
        "fourd_hub bf16": lambda: layers._cpu_bf16_attention(q, k, v),
        "  its q@k^T": part_qk,
        "  its softmax": part_softmax,
        "  its p@v": part_pv,
    }
    meta = {name: (attention_flops, "bf16") for name in fns}
    meta.update({"gemm bf16": (gemm_flops, "bf16"), "gemm fp32": (gemm_flops, "fp32"), "sdpa fp32": (attention_flops, "fp32")})
    meta.update({"  its q@k^T": (attention_flops // 2, "bf16"), "  its p@v": (attention_flops // 2, "bf16"), "  its softmax": (0, "bf16")})
    if compile_too:
        compiled = torch.compile(lambda a, b, c: ((a * scale) @ b.transpose(-1, -2)).softmax(-1) @ c)
        fns["torch.compile explicit bf16"] = lambda: compiled(q, k, v)
        meta["torch.compile explicit bf16"] = (attention_flops, "bf16")
    fns["_reference"] = lambda: F.scaled_dot_product_attention(qf, kf, vf)
    return fns, meta


def run_shape(shape: tuple[int, int, int, int], rounds: int, compile_too: bool) -> list[str]:
    fns, meta = variants(shape, compile_too)
    reference = fns.pop("_reference")()
    errors = {}
    with torch.inference_mode():
        for name, fn in fns.items():  # warm-up (and torch.compile), errors
            result = fn()
            if isinstance(result, torch.Tensor) and result.shape == reference.shape:
                errors[name] = (result.float() - reference).abs().max().item()
        times: dict[str, list[float]] = {name: [] for name in fns}
        load_before = os.getloadavg()[0]
        for _ in range(rounds):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        load_after = os.getloadavg()[0]
    median = {name: statistics.median(values) for name, values in times.items()}
    rate = {kind: meta[f"gemm {kind}"][0] / median[f"gemm {kind}"] / 1e9 for kind in ("bf16", "fp32")}
    batch, heads, tokens, dim = shape
    lines = [
        f"\nattention {batch}x{heads} heads x {tokens} tokens x {dim}: {meta['sdpa bf16'][0] / 1e9:.2f} GFLOP, "
        f"{torch.get_num_threads()} threads, {rounds} rounds, load average {load_before:.2f} -> {load_after:.2f}",
        f"GEMM rate (1568x768 @ 768x3072) in the same rounds: bf16 {rate['bf16']:.0f} GFLOP/s, fp32 {rate['fp32']:.0f} GFLOP/s",
        "",
        "| variant | ms | GFLOP/s | fraction of GEMM rate | max error vs fp32 SDPA |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in fns:
        flops, kind = meta[name]
        seconds = median[name]
        gflops = flops / seconds / 1e9 if flops else float("nan")
        fraction = f"{gflops / rate[kind]:.2f} ({kind})" if flops else "-"
        error = f"{errors[name]:.2g}" if name in errors else "-"
        lines.append(f"| {name} | {seconds * 1e3:.1f} | {gflops:.0f} | {fraction} | {error} |".replace("| nan |", "| - |"))
    speedup = median["sdpa bf16"] / median["fourd_hub bf16"]
    lines.append(f"\nfourd_hub bf16 vs sdpa bf16: {speedup:.2f}x; vs sdpa fp32: {median['sdpa fp32'] / median['fourd_hub bf16']:.2f}x")
    return lines


def parse_shape(text: str) -> tuple[int, int, int, int]:
    parts = tuple(int(p) for p in text.lower().split("x"))
    if len(parts) != 4 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"a shape is BxHEADSxTOKENSxDIM, e.g. 1x12x1568x64; got {text!r}")
    return parts  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=parse_shape, nargs="+", default=[(1, 12, 1568, 64), (1, 8, 1024, 64)],
                        help="BxHEADSxTOKENSxDIM (default: 4DS-B 16x224x224 and the MooG corrector)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument("--compile", action="store_true", help="also torch.compile the explicit form")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"AVX-512-BF16 {torch.cpu._is_avx512_bf16_supported()}, AMX {torch.cpu._is_amx_tile_supported()}, "
          f"bf16 path active: {layers._cpu_has_fast_bf16_gemm_only()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    for shape in args.shapes:
        print("\n".join(run_shape(shape, args.rounds, args.compile)), flush=True)


if __name__ == "__main__":
    main()
