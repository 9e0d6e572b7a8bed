"""MooG reconstruction (pixel decoder) speed per frame and peak memory: before vs now.

"Before" is the decoder as it was: every pixel query of the frame through the whole decoder
transformer at once (``decoder.transformer(queries, context=state)``), frame by frame. "Now" is
``MooGModel.decode``: pixel queries in chunks of ``DECODER_PIXEL_CHUNK`` and the first block's
state-independent self-attention computed once per grid; both give the same frames (the max
difference is printed). ``resolution=`` (decode at a smaller grid) is timed too, and so is the
attention floor: the per-pixel self-attention of the blocks after the first, which reads the
state and so runs every frame over all P = H * W pixels (P^2 scores per head). No exact
full-grid decode is faster than that floor; ``before / floor`` bounds the full-grid gain.

Default model: the tiny reference MooG (``shared/reference/cases.json``, case ``moog_tiny``;
random weights, the architecture is what matters for time), at its own 32x24 and at larger grids.
``--memory`` also measures, in a fresh subprocess per variant, the peak RSS a one-frame decode
adds (``ru_maxrss`` after minus before), for the tiny model and the Ego4D decoder at 128x128.

Usage::

    python benchmarks/moog_reconstruction.py                    # 32x24, 64x64, 128x128; 8 frames
    python benchmarks/moog_reconstruction.py --sizes 128x128 --frames 4 --memory
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from fourd_hub import MooGConfig, MooGModel

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "shared" / "reference" / "cases.json"


def tiny_reference_config() -> MooGConfig:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import moog_config_kwargs  # the tests' reading of cases.json

    path = CASES if CASES.exists() else Path("/work/shared/reference/cases.json")
    return MooGConfig(**moog_config_kwargs(json.loads(path.read_text())["moog_tiny"]))


def build(preset: str) -> MooGModel:
    torch.manual_seed(0)
    config = tiny_reference_config() if preset == "tiny" else MooGConfig.from_preset(preset)
    return MooGModel(config).eval()


def decode_before(model: MooGModel, states: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The decoder before chunking: (B, T, N, D) -> (B, T, C, H, W), all pixels of a frame at once."""
    decoder, frames = model.decoder, []
    for t in range(states.shape[1]):
        state = states[:, t]
        table = decoder.position_embedding.table(*size, state.device, state.dtype).unsqueeze(0)
        queries = decoder.position_embedding(state.new_zeros(state.shape[0], *size, decoder.state_dim), table).flatten(1, 2)
        out = decoder.output_proj(decoder.transformer(queries, context=state)).unflatten(1, size)
        frames.append(out.permute(0, 3, 1, 2))
    return torch.stack(frames, dim=1)


def attention_floor(model: MooGModel, size: tuple[int, int]) -> callable:
    """The work no exact decoder can skip: SDPA over every pixel for each state-dependent self-attention.

    Block 0's self-attention reads only the position queries (cached per grid); every later
    block's reads the pixels' hidden states after a cross-attention into the state, so each frame
    pays a (P x P) attention per head for them, P = H * W: P^2 exponentials, whatever the rest
    of the decoder costs. Returns a function running just those SDPA calls on random inputs.
    """
    pixels = size[0] * size[1]
    shapes = [
        (1, layer.self_attention.num_heads, pixels, layer.self_attention.head_dim)
        for layer in model.decoder.transformer.layers[1:]
        if layer.self_attention is not None
    ]
    inputs = [[torch.randn(shape) for _ in range(3)] for shape in shapes]
    return lambda: [torch.nn.functional.scaled_dot_product_attention(q, k, v) for q, k, v in inputs]


def seconds(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def memory_child(preset: str, size: tuple[int, int], variant: str) -> None:
    """One decode of one frame; prints the MiB its peak RSS adds to what was resident before."""
    model = build(preset)
    states = torch.randn(1, 1, model.config.num_tokens, model.config.hidden_size)
    with torch.inference_mode():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if variant == "before":
            decode_before(model, states, size)
        else:
            model.decode(states, size)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["32x24", "64x64", "128x128"], help="HxW grids to decode")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs per variant")
    parser.add_argument("--memory", action="store_true", help="also measure peak RSS per variant (subprocesses)")
    parser.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        preset, size, variant = args._child
        memory_child(preset, tuple(int(v) for v in size.split("x")), variant)
        return

    model = build("tiny")
    config = model.config
    print(f"MooG tiny reference architecture (random weights), decoder {config.decoder}")
    print(f"batch 1, {args.frames} frames, best of {args.repeats}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'grid':>9} {'before s/frame':>15} {'now s/frame':>12} {'ratio':>6} {'max diff':>9}   "
          f"{'resolution=half s/frame':>24} {'ratio vs before':>16}   {'attention floor s/frame':>24} {'max ratio':>10}")
    states = torch.randn(1, args.frames, config.num_tokens, config.hidden_size, generator=torch.Generator().manual_seed(0))
    for text in args.sizes:
        size = tuple(int(v) for v in text.split("x"))
        half = (max(1, size[0] // 2), max(1, size[1] // 2))
        with torch.inference_mode():
            reference, ours = decode_before(model, states, size), model.decode(states, size)  # also warms up
            model.decode(states, size, resolution=half)
            before = seconds(lambda: decode_before(model, states, size), args.repeats) / args.frames
            now = seconds(lambda: model.decode(states, size), args.repeats) / args.frames
            low = seconds(lambda: model.decode(states, size, resolution=half), args.repeats) / args.frames
            floor = seconds(attention_floor(model, size), args.repeats)
        diff = (reference - ours).abs().max().item()
        print(f"{text:>9} {before:15.4f} {now:12.4f} {before / now:5.2f}x {diff:9.1e}   "
              f"{low:24.4f} {before / low:15.1f}x   {floor:24.4f} {before / max(floor, 1e-9):9.1f}x")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print("attention floor: SDPA alone over every pixel for each self-attention that depends on the state "
          "(decoder blocks after the first); max ratio = before / floor, the most any exact full-grid decode can gain")

    if args.memory:
        print("\npeak RSS added by decoding one frame (MiB, fresh subprocess each)")
        for preset, text in (("tiny", "256x256"), ("ego4d", "128x128")):
            row = []
            for variant in ("before", "now"):
                out = subprocess.run(
                    [sys.executable, __file__, "--_child", preset, text, variant], capture_output=True, text=True, check=True
                )
                row.append(float(out.stdout.split()[-1]))
            print(f"  {preset:>6} {text:>8}: before {row[0]:7.1f}   now {row[1]:7.1f}")


if __name__ == "__main__":
    main()
