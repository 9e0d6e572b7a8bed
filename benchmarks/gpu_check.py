"""GPU check: throughput and MFU of 4DS, MooG, a pipeline and FSDP2 pretraining on one CUDA device.

What it does
------------
Every model has random weights built from its size preset (nothing is downloaded; the speed does
not depend on the weights' values), is cast to bfloat16 (``.to(torch.bfloat16)``, built in
bfloat16 so that a 3.8B model never holds a float32 copy) and runs with scaled-dot-product
attention restricted to the flash and memory-efficient kernels
(``torch.nn.attention.sdpa_kernel([FLASH_ATTENTION, EFFICIENT_ATTENTION])``; should neither
apply, the section is rerun with the math kernel allowed too, and says so). Four sections
(``--sections``):

* ``fourds``: 4DS-B and 4DS-e backbones (``--fourds-sizes``), 16x224x224 clips (1568 tokens),
  every block, under ``torch.inference_mode()``; batch sizes 1, 2, 4, ... up to ``--max-batch``,
  stopping at the first one that does not fit (``torch.cuda.OutOfMemoryError`` is caught, the
  cache emptied). Per batch: ms per call, clips/s, achieved TFLOP/s, MFU, peak memory.
* ``moog``: the MooG Ego4D backbone (no decoder), 128x128 frames: the recurrent core's step
  (state norm, predictor, corrector: ``MooGModel.step``) per frame, the encoder per frame, and
  a whole 16-frame forward per frame; same batch sweep.
* ``pipeline``: a synthetic H.264 mp4 (``--pipeline-frames`` frames at ``--pipeline-resolution``,
  written with PyAV into a temporary directory) through ``pipeline("depth-estimation")`` of a
  4DS-B depth model: frames/s of the whole call (decoding, preprocessing, model, postprocessing),
  for 1 and ``--pipeline-batch`` windows per model call; and decoding alone for comparison.
* ``pretrain``: the ``4ds-l`` recipe (``--pretrain-recipe``) in one process with FSDP2 over a
  world of one (NCCL on CUDA, gloo on the CPU; the group is initialised here from a file store),
  with the trainer's own pieces (``build_training``: the model with activation checkpointing and
  FSDP2, and its AdamW; ``train_step``), the recipe's clip shape (16x224x224,
  95% masking), mixed precision and micro-batch (16 for 4DS-L; halved on out-of-memory until it
  fits, or ``--pretrain-micro-batch``), one micro-batch per optimiser step (the recipe's 2048-clip
  global batch would be 128 accumulation steps: throughput per clip is the same), a few steps.
  The micro-batch is rendered once by the recipe's data stream and reused (data loading is not
  measured). Prints clips/s, tokens/s and MFU.

How it is measured
------------------
* Timing: ``--warmup`` untimed calls, then ``--steps`` calls between two ``torch.cuda.Event``
  (the GPU's own clock, synchronised at the end); the pipeline (CPU work included) by wall time
  between two ``torch.cuda.synchronize()``. The models check their inputs for NaN and range on
  every call (a host synchronisation per call), as users run them.
* FLOPs: counted, not estimated, by ``torch.utils.flop_counter.FlopCounterMode`` on a
  meta-device copy of the model (no memory, no compute) for one clip (one frame for MooG), then
  multiplied by the batch. The counter counts matrix products (linear, convolution, attention;
  multiply-add = 2 FLOPs), not norms or element-wise ops. For a 4DS backbone this is exactly
  the analytic formula of :func:`vit_forward_flops` (checked by the tests):
  ``2 N (C pt ph pw) D`` (patch embedding) ``+ L [2 N (4 D^2 + 2 D M) + 4 N^2 D]`` with N tokens,
  width D, MLP width M, L blocks (q, k, v, out projections; the MLP; q.k and attention.v).
  4DS-B: 360.7 GFLOP per clip; 4DS-e: 12.9 TFLOP.
* Training FLOPs: ``training_flops_per_clip`` of the trainer (the same counter over the masked
  forward and the backward, no recomputation: what ``metrics.jsonl`` logs as ``mfu``). Also the
  common ``6 * parameters * tokens`` (tokens: the clip's 1568 patches, as the trainer's
  tokens/s): for a masked auto-encoder that sends 5% of the patches through most blocks it
  overstates the work (4DS-L: 2.90 TFLOP per clip against 0.776 counted, 3.7x), so it is printed as
  ``MFU 6ND`` beside the counted one.
* MFU: achieved FLOP/s over the device's dense bf16 peak (``fourd_hub.training.pretrain.PEAK_TFLOPS``, matched against
  ``torch.cuda.get_device_name()``; ``--peak-tflops`` for another device); "unknown" otherwise.

Without a CUDA device it prints one line saying so and exits with status 0 before anything but
torch is imported (CI logs stay clean; nothing was measured). ``--debug`` runs every section with
the families' tiny debug configurations, one step, batch sizes up to 2 (a smoke test of the code
paths; with the hidden ``--device cpu``, on the CPU: the test suite does that).

Exit status: 0 when every section ran (or there is no CUDA device); 1 when a section failed (its
traceback is printed, the other sections still run and ``--json`` records the error); 2 for bad
arguments. ``--json`` is rewritten (atomically) after every section.

Run (from the repository root, on a CUDA machine; a few minutes, estimated: it has not run on a GPU yet):
    python benchmarks/gpu_check.py                                # everything, table on stdout
    python benchmarks/gpu_check.py --json gpu_check.json          # also every number as JSON
    python benchmarks/gpu_check.py --sections fourds moog --max-batch 32
    python benchmarks/gpu_check.py --sections pretrain --pretrain-micro-batch 8 --steps 10
    python benchmarks/gpu_check.py --debug                        # 1-minute smoke test of every section
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

SECTIONS = ("fourds", "moog", "pipeline", "pretrain")

NO_CUDA_MESSAGE = (
    "no CUDA device: gpu_check needs a CUDA GPU (torch {torch} sees none); nothing was measured. "
    "Run it on a machine with an NVIDIA GPU."
)


# ----------------------------------------------------------------------------------------------
# FLOPs, MFU, peaks (pure functions: the tests check them on hand-computed cases)


def vit_forward_flops(tokens: int, hidden: int, layers: int, mlp: int, patch_inputs: int) -> int:
    """Forward FLOPs of one clip through a ViT backbone (4DS), matrix products only.

    ``2 N P D`` for the patch embedding (P = channels x tubelet volume inputs per token) plus,
    per block, ``2 N (4 D^2 + 2 D M)`` for the q, k, v, output and two MLP projections and
    ``4 N^2 D`` for attention (q.k^T and attention.v, over all heads together).

    Args:
        tokens: N, tokens per clip (4DS-B at 16x224x224: 8 x 14 x 14 = 1568).
        hidden: D, token width.
        layers: L, transformer blocks.
        mlp: M, MLP hidden width.
        patch_inputs: P, inputs per token of the patch embedding (3 x 2 x 16 x 16 = 1536).

    Returns:
        FLOPs (a multiply-add counts 2).
    """
    per_block = 2 * tokens * (4 * hidden * hidden + 2 * hidden * mlp) + 4 * tokens * tokens * hidden
    return 2 * tokens * patch_inputs * hidden + layers * per_block


def fourds_forward_flops_analytic(config) -> int:
    """:func:`vit_forward_flops` of a ``FourDSConfig`` at its native clip size."""
    tokens = math.prod(config.token_grid)
    patch_inputs = config.num_channels * math.prod(config.patch_size)
    return vit_forward_flops(tokens, config.hidden_size, config.num_hidden_layers, config.intermediate_size, patch_inputs)


def training_flops_6nd(parameters: int, tokens: int) -> int:
    """The usual estimate of one training pass: ``6 * parameters * tokens`` (2 forward + 4 backward)."""
    return 6 * parameters * tokens


def model_flops_utilization(flops_per_item: float, items_per_second: float, peak_tflops: float | None) -> float | None:
    """MFU: achieved FLOP/s (``flops_per_item * items_per_second``) over the peak (TFLOP/s); None without a peak."""
    if peak_tflops is None or not peak_tflops > 0:
        return None
    return flops_per_item * items_per_second / (peak_tflops * 1e12)


def lookup_peak_tflops(device_name: str, override: float | None = None) -> tuple[float | None, str]:
    """The dense bf16 peak of a device and where it came from.

    Args:
        device_name: ``torch.cuda.get_device_name()``, e.g. ``"NVIDIA H100 80GB HBM3"``.
        override: ``--peak-tflops``; wins when given.

    Returns:
        ``(TFLOP/s or None, source)``: source is ``"--peak-tflops"``, ``"table: <key>"`` or ``"unknown"``.
    """
    if override is not None:
        if not override > 0:
            raise ValueError(f"--peak-tflops must be positive, got {override}")
        return float(override), "--peak-tflops"
    from fourd_hub.training.pretrain import peak_tflops_for  # the one table (not imported without CUDA)

    found = peak_tflops_for(device_name)
    if found is not None:
        return found[0], f"table: {found[1]}"
    return None, "unknown"


def count_flops(function: Callable[[], Any]) -> int:
    """FLOPs of ``function()`` as ``FlopCounterMode`` counts them (run it on meta tensors: no compute)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        function()
    return int(counter.get_total_flops())


def fourds_forward_flops(config) -> tuple[int, int]:
    """(counted FLOPs, parameters) of one clip through a ``FourDSModel`` of ``config``, on the meta device.

    The call is the one timed: every block, ``compute_readout_features=False``.
    """
    import torch

    from fourd_hub import FourDSModel

    with torch.device("meta"):
        model = FourDSModel(config).eval()
    video = torch.zeros(1, config.num_frames, config.num_channels, *config.image_size, device="meta")
    return count_flops(lambda: model(video, compute_readout_features=False, return_dict=True)), count_parameters(model)


def moog_frame_flops(config) -> dict[str, int]:
    """Counted FLOPs of one frame of a ``MooGModel`` (no decoder), batch 1, on the meta device.

    Returns:
        ``{"encoder": ..., "step": ..., "frame": encoder + step, "parameters": ...}``.
    """
    import torch

    from fourd_hub import MooGModel

    with torch.device("meta"):
        model = MooGModel(config, add_decoder=False).eval()
    frame = torch.zeros(1, 1, config.num_channels, *config.image_size, device="meta")
    state = torch.zeros(1, config.num_tokens, config.hidden_size, device="meta")
    tokens = torch.zeros(1, *model.encode(frame).shape[2:], device="meta")
    encoder = count_flops(lambda: model.encode(frame))
    step = count_flops(lambda: model.step(state, tokens))
    return {"encoder": encoder, "step": step, "frame": encoder + step, "parameters": count_parameters(model)}


def count_parameters(model) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


# ----------------------------------------------------------------------------------------------
# Device, timing, batch sweeps


@dataclass
class Env:
    """Where and how the sections run."""

    device: Any  # torch.device
    dtype: Any  # torch.dtype
    debug: bool
    warmup: int
    steps: int
    max_batch: int
    peak_tflops: float | None
    allow_math_attention: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def attention(self):
        """The SDPA kernels the sections may use: flash and memory-efficient (plus math after a fallback)."""
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backends = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
        if self.allow_math_attention:
            backends.append(SDPBackend.MATH)
        return sdpa_kernel(backends)


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory() -> None:
    """Collect garbage and return cached CUDA blocks (after an out-of-memory or between models)."""
    import torch

    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def reset_peak_memory(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def time_per_call(function: Callable[[], Any], device, warmup: int, steps: int) -> float:
    """Seconds per call of ``function``: ``warmup`` untimed calls, then ``steps`` timed ones.

    On CUDA the time is read from two ``torch.cuda.Event`` around the timed calls (the device's
    clock, after the last kernel finished); on the CPU from ``time.perf_counter``.
    """
    import torch

    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    for _ in range(warmup):
        function()
    synchronize(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(steps):
            function()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / steps
    begin = time.perf_counter()
    for _ in range(steps):
        function()
    return (time.perf_counter() - begin) / steps


def batch_sizes(max_batch: int) -> list[int]:
    """1, 2, 4, ... up to ``max_batch`` (powers of two)."""
    if max_batch < 1:
        raise ValueError(f"--max-batch must be at least 1, got {max_batch}")
    return [2**k for k in range(int(math.log2(max_batch)) + 1)]


def sweep_batch_sizes(run: Callable[[int], dict], max_batch: int) -> list[dict]:
    """``run(batch)`` for batch sizes 1, 2, 4, ... until one runs out of CUDA memory.

    Returns:
        One row per batch size tried: ``{"batch": b, **run(b)}``; the batch that did not fit, if
        any, ends the list as ``{"batch": b, "out_of_memory": True}``.
    """
    import torch

    rows = []
    for batch in batch_sizes(max_batch):
        out_of_memory = False
        try:
            rows.append({"batch": batch, **run(batch)})
        except torch.cuda.OutOfMemoryError:
            out_of_memory = True  # freed below, outside the handler (its traceback holds the tensors)
        if out_of_memory:
            free_memory()
            rows.append({"batch": batch, "out_of_memory": True})
            break
    return rows


@contextlib.contextmanager
def default_dtype(dtype):
    """Create parameters in ``dtype`` (a bf16 model never holds a float32 copy)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def build_on_device(factory: Callable[[], Any], env: Env):
    """``factory()`` built on the device in the compute dtype, in eval mode, with seeded random weights."""
    import torch

    torch.manual_seed(0)
    with torch.device(env.device), default_dtype(env.dtype):
        model = factory()
    return model.to(env.dtype).eval()


# ----------------------------------------------------------------------------------------------
# Sections


def _family_debug_config(family: str, **overrides):
    from fourd_hub.registry import get_family

    return get_family(family).load("debug_config")(**overrides)


def bench_fourds(env: Env, args: argparse.Namespace) -> list[dict]:
    """4DS backbone forward throughput per batch size (see the module docstring)."""
    import torch

    from fourd_hub import FourDSConfig, FourDSModel

    if env.debug:
        configs = [("4DS-debug", _family_debug_config("fourds"))]
    else:
        configs = [(f"4DS-{size}", FourDSConfig.from_preset(size)) for size in args.fourds_sizes]
    rows = []
    for name, config in configs:
        flops, parameters = fourds_forward_flops(config)
        analytic = fourds_forward_flops_analytic(config)
        if flops != analytic:
            env.notes.append(f"{name}: counted {flops:.4g} FLOPs/clip, analytic formula {analytic:.4g}")
        clip = (config.num_frames, config.num_channels, *config.image_size)
        common = {"model": name, "parameters": parameters, "tokens": math.prod(config.token_grid), "gflop_per_clip": flops / 1e9}
        print(f"  {name}: {parameters / 1e6:.4g}M parameters, {common['tokens']} tokens, {flops / 1e9:.4g} GFLOP/clip", flush=True)
        try:
            model = build_on_device(lambda: FourDSModel(config), env)
        except torch.cuda.OutOfMemoryError:
            model = None
        if model is None:
            free_memory()
            rows.append({**common, "batch": None, "out_of_memory": True})
            continue

        def run(batch: int) -> dict:
            video = torch.rand(batch, *clip, device=env.device, dtype=env.dtype)
            reset_peak_memory(env.device)
            with torch.inference_mode():
                seconds = time_per_call(
                    lambda: model(video, compute_readout_features=False, return_dict=True), env.device, env.warmup, env.steps
                )
            clips_per_s = batch / seconds
            return {
                "ms_per_call": seconds * 1e3, "clips_per_s": clips_per_s, "tflop_per_s": flops * clips_per_s / 1e12,
                "mfu": model_flops_utilization(flops, clips_per_s, env.peak_tflops), "peak_gib": peak_memory_gib(env.device),
            }

        rows += [{**common, **row} for row in sweep_batch_sizes(run, env.max_batch)]
        model = None  # dropped before the next model is built
        free_memory()
    return rows


def bench_moog(env: Env, args: argparse.Namespace) -> list[dict]:
    """MooG recurrent step, encoder and forward per frame, per batch size."""
    import torch

    from fourd_hub import MooGConfig, MooGModel

    if env.debug:
        name, config, frames = "MooG-debug", _family_debug_config("moog"), 2
    else:
        name, config, frames = f"MooG-{args.moog_preset}", MooGConfig.from_preset(args.moog_preset), args.moog_frames
    flops = moog_frame_flops(config)
    print(
        f"  {name}: {flops['parameters'] / 1e6:.4g}M parameters (no decoder), {config.num_tokens} state tokens, "
        f"{flops['frame'] / 1e9:.4g} GFLOP/frame (step {flops['step'] / 1e9:.4g})", flush=True,
    )
    model = build_on_device(lambda: MooGModel(config, add_decoder=False), env)
    generator = torch.Generator().manual_seed(0)

    def run(batch: int) -> dict:
        video = torch.rand(batch, frames, config.num_channels, *config.image_size, device=env.device, dtype=env.dtype)
        state = model.initial_state(batch, generator=generator)
        reset_peak_memory(env.device)
        with torch.inference_mode():
            tokens = model.encode(video[:, :1])[:, 0]
            step = time_per_call(lambda: model.step(state, tokens), env.device, env.warmup, env.steps)
            encode = time_per_call(lambda: model.encode(video[:, :1]), env.device, env.warmup, env.steps)
            forward = time_per_call(lambda: model(video, initial_state=state, return_dict=True), env.device, env.warmup, env.steps)
        frames_per_s = batch * frames / forward
        return {
            "step_ms": step * 1e3, "encoder_ms_per_frame": encode * 1e3, "forward_ms_per_frame": forward / frames * 1e3,
            "frames_per_s": frames_per_s, "tflop_per_s": flops["frame"] * frames_per_s / 1e12,
            "mfu": model_flops_utilization(flops["frame"], frames_per_s, env.peak_tflops),
            "step_mfu": model_flops_utilization(flops["step"], batch / step, env.peak_tflops),
            "peak_gib": peak_memory_gib(env.device),
        }

    common = {"model": name, "parameters": flops["parameters"], "frames": frames, "gflop_per_frame": flops["frame"] / 1e9}
    rows = [{**common, **row} for row in sweep_batch_sizes(run, env.max_batch)]
    model = None  # dropped before the next model is built
    free_memory()
    return rows


def synthetic_frames(count: int, height: int, width: int):
    """Moving squares on a gradient, (H, W, 3) uint8 frames generated one at a time."""
    import numpy as np

    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) * 127 // (width + height)], -1).astype(np.uint8)
    side = max(4, height // 6)
    for t in range(count):
        frame = background.copy()
        for k, colour in enumerate(((255, 64, 64), (64, 255, 64), (64, 64, 255))):
            x = int((width - side) * (0.5 + 0.45 * math.sin(0.07 * t + 2 * k)))
            y = int((height - side) * (0.5 + 0.45 * math.cos(0.05 * t + k)))
            frame[y : y + side, x : x + side] = colour
        yield frame


def parse_resolution(text: str) -> tuple[int, int]:
    """``"640x360"`` -> (640, 360): width and height of the synthetic video, both even (H.264 4:2:0)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"--pipeline-resolution must be WIDTHxHEIGHT such as 640x360, got {text!r}")
    width, height = (int(part) for part in parts)
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"--pipeline-resolution must be even and at least 16x16 (H.264 4:2:0), got {text!r}")
    return width, height


def bench_pipeline(env: Env, args: argparse.Namespace) -> list[dict]:
    """Depth pipeline of 4DS-B over a real (synthetic, H.264) mp4: frames/s including decoding."""
    from fourd_hub import FourDSConfig, FourDSForDepthEstimation, open_video, pipeline, write_video

    if env.debug:
        name, config, frames, (width, height) = "4DS-debug depth", _family_debug_config("fourds"), 8, (64, 48)
    else:
        name, config, frames = "4DS-B depth", FourDSConfig.from_preset("B"), args.pipeline_frames
        width, height = parse_resolution(args.pipeline_resolution)
    model = build_on_device(lambda: FourDSForDepthEstimation(config), env)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = write_video(Path(tmp) / "synthetic.mp4", synthetic_frames(frames, height, width), fps=30)
        print(f"  video: {frames} frames of {width}x{height} H.264 ({path.stat().st_size / 1e6:.2f} MB)", flush=True)
        begin = time.perf_counter()
        with open_video(path) as reader:
            decoded = sum(1 for _ in reader.iter_frames())
        decode_rate = decoded / (time.perf_counter() - begin)
        for batch in dict.fromkeys((1, 2 if env.debug else args.pipeline_batch)):
            runner = pipeline("depth-estimation", model=model, device=str(env.device), dtype=env.dtype, batch_size=batch, progress=False)
            runner(path)  # warm-up: kernels chosen, caches filled
            synchronize(env.device)
            reset_peak_memory(env.device)
            begin = time.perf_counter()
            result = runner(path)
            synchronize(env.device)
            seconds = time.perf_counter() - begin
            depth_frames = int(result.depth.shape[0])
            if depth_frames != frames:
                raise RuntimeError(f"the depth pipeline returned {depth_frames} frames for a {frames}-frame video")
            rows.append({
                "model": name, "batch": batch, "frames": frames, "resolution": f"{width}x{height}", "seconds": seconds,
                "frames_per_s": frames / seconds, "decode_frames_per_s": decode_rate, "peak_gib": peak_memory_gib(env.device),
            })
    model = None  # dropped before the next model is built
    free_memory()
    return rows


@contextlib.contextmanager
def single_process_group(env: Env):
    """A process group of one rank (NCCL on CUDA, gloo on the CPU) from a file store, for FSDP2.

    An existing group is used as is when it has one rank (and left alone); with more ranks it is
    an error: the check runs in one process.
    """
    import torch.distributed as dist

    if dist.is_initialized():
        if dist.get_world_size() != 1:
            raise RuntimeError(
                f"gpu_check runs in one process but a process group of {dist.get_world_size()} ranks exists; "
                "run it with python, not torchrun"
            )
        yield
        return
    with tempfile.TemporaryDirectory() as tmp:
        store = dist.FileStore(str(Path(tmp) / "store"), 1)
        if env.cuda:
            dist.init_process_group("nccl", store=store, rank=0, world_size=1, device_id=env.device)
        else:
            dist.init_process_group("gloo", store=store, rank=0, world_size=1)
        try:
            yield
        finally:
            dist.destroy_process_group()


def bench_pretrain(env: Env, args: argparse.Namespace) -> list[dict]:
    """FSDP2 pretraining throughput of one recipe on one device: clips/s, tokens/s, MFU."""
    import torch

    from fourd_hub.data.pretraining import pretraining_stream
    from fourd_hub.training.parallel import DistributedContext
    from fourd_hub.training.pretrain import build_model, build_training, tokens_per_clip, train_step, training_flops_per_clip
    from fourd_hub.training.recipes import get_recipe

    base = get_recipe("debug" if env.debug else args.pretrain_recipe)
    micro_batch = args.pretrain_micro_batch or base.micro_batch_size
    if micro_batch < 1:
        raise ValueError(f"--pretrain-micro-batch must be at least 1, got {micro_batch}")
    flops_per_clip = training_flops_per_clip(base)
    parameters = count_parameters(build_model(base, "meta"))
    clip_tokens = tokens_per_clip(base.build_config())
    print(
        f"  recipe {base.name}: {parameters / 1e6:.4g}M parameters, clips {base.num_frames}x{base.crop_size[0]}x{base.crop_size[1]}, "
        f"{clip_tokens} tokens/clip, {flops_per_clip / 1e12:.4g} TFLOP/clip counted (forward + backward), "
        f"activation checkpointing {base.activation_checkpointing}, {base.mixed_precision}", flush=True,
    )
    ctx = DistributedContext(rank=0, world_size=1, local_rank=env.device.index or 0, device=env.device)

    def run(micro: int) -> dict:
        recipe = base.replace(micro_batch_size=micro, global_batch_size=micro, num_workers=0)
        model, optimizer = build_training(recipe, env.device)
        batch = next(iter(pretraining_stream(recipe, 0, 1)))
        if env.cuda:
            batch = {key: value.pin_memory() for key, value in batch.items()}
        model.train()
        losses = []
        step = iter(range(10**9))

        def one_step():
            loss, _ = train_step(model, optimizer, [batch], next(step), recipe, ctx)
            losses.append(loss)

        reset_peak_memory(env.device)
        seconds = time_per_call(one_step, env.device, env.warmup, env.steps)
        if not all(math.isfinite(loss) for loss in losses):
            raise FloatingPointError(f"pretraining losses are not finite: {losses}")
        clips_per_s = micro / seconds
        return {
            "recipe": recipe.name, "micro_batch": micro, "step_ms": seconds * 1e3, "clips_per_s": clips_per_s,
            "tokens_per_s": clips_per_s * clip_tokens, "tflop_per_s": flops_per_clip * clips_per_s / 1e12,
            "mfu": model_flops_utilization(flops_per_clip, clips_per_s, env.peak_tflops),
            "mfu_6nd": model_flops_utilization(training_flops_6nd(parameters, clip_tokens), clips_per_s, env.peak_tflops),
            "parameters": parameters, "tokens_per_clip": clip_tokens, "tflop_per_clip": flops_per_clip / 1e12,
            "first_loss": losses[0], "last_loss": losses[-1], "peak_gib": peak_memory_gib(env.device),
            "activation_checkpointing": recipe.activation_checkpointing,
        }

    rows = []
    with single_process_group(env):
        while True:
            out_of_memory = False
            try:
                rows.append(run(micro_batch))
                break
            except torch.cuda.OutOfMemoryError:
                out_of_memory = True
            if out_of_memory:
                free_memory()
                rows.append({"recipe": base.name, "micro_batch": micro_batch, "out_of_memory": True})
                if micro_batch == 1:
                    break
                micro_batch //= 2
                print(f"  out of memory: retrying with micro-batch {micro_batch}", flush=True)
    free_memory()
    return rows


BENCHMARKS: dict[str, Callable[[Env, argparse.Namespace], list[dict]]] = {
    "fourds": bench_fourds, "moog": bench_moog, "pipeline": bench_pipeline, "pretrain": bench_pretrain,
}


# ----------------------------------------------------------------------------------------------
# Printing


def _cell(value: Any, spec: str) -> str:
    if value is None:
        return "unknown" if spec == "%" else "-"
    if spec == "%":
        return f"{100 * value:.1f}%"
    if spec == "M":
        return f"{value / 1e6:.1f}M"
    return format(value, spec)


def format_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A fixed-width table: ``columns`` are (header, row key, format spec; ``"%"`` percent, ``"M"`` millions).

    A row with ``out_of_memory`` shows the leading columns and "out of memory".
    """
    table = [[header for header, _, _ in columns]]
    for row in rows:
        if row.get("out_of_memory"):
            keep = [_cell(row.get(key), spec) for _, key, spec in columns[:2]]
            table.append(keep + ["out of memory"] + [""] * (len(columns) - 3))
        else:
            table.append([_cell(row.get(key), spec) for _, key, spec in columns])
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = []
    for line in table:
        cells = [line[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(line[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


TABLES = {
    "fourds": [("model", "model", ""), ("batch", "batch", "d"), ("ms/call", "ms_per_call", ".2f"), ("clips/s", "clips_per_s", ".2f"),
               ("TFLOP/s", "tflop_per_s", ".1f"), ("MFU", "mfu", "%"), ("peak GiB", "peak_gib", ".1f")],
    "moog": [("model", "model", ""), ("batch", "batch", "d"), ("step ms", "step_ms", ".3f"), ("encoder ms/frame", "encoder_ms_per_frame", ".3f"),
             ("forward ms/frame", "forward_ms_per_frame", ".3f"), ("frames/s", "frames_per_s", ".1f"),
             ("TFLOP/s", "tflop_per_s", ".2f"), ("MFU", "mfu", "%"), ("step MFU", "step_mfu", "%"), ("peak GiB", "peak_gib", ".1f")],
    "pipeline": [("pipeline", "model", ""), ("windows/call", "batch", "d"), ("frames", "frames", "d"), ("video", "resolution", ""),
                 ("seconds", "seconds", ".2f"), ("frames/s", "frames_per_s", ".1f"), ("decode only frames/s", "decode_frames_per_s", ".1f"),
                 ("peak GiB", "peak_gib", ".1f")],
    "pretrain": [("recipe", "recipe", ""), ("micro-batch", "micro_batch", "d"), ("step ms", "step_ms", ".0f"),
                 ("clips/s", "clips_per_s", ".2f"), ("tokens/s", "tokens_per_s", ".0f"), ("TFLOP/s", "tflop_per_s", ".1f"),
                 ("MFU", "mfu", "%"), ("MFU 6ND", "mfu_6nd", "%"), ("loss first->last", "losses", ""), ("peak GiB", "peak_gib", ".1f")],
}

TITLES = {
    "fourds": "4DS backbones: bf16 forward (every block), inference_mode",
    "moog": "MooG: recurrent step per frame, encoder per frame, whole forward per frame (bf16, inference_mode)",
    "pipeline": "depth pipeline over an H.264 mp4: decoding + preprocessing + model + postprocessing",
    "pretrain": "FSDP2 pretraining, one device (world size 1), one micro-batch per step",
}


def print_section(name: str, rows: list[dict]) -> None:
    shown = [dict(row, losses=f"{row['first_loss']:.4f}->{row['last_loss']:.4f}") if "first_loss" in row else row for row in rows]
    print(format_table(shown, TABLES[name]), flush=True)


# ----------------------------------------------------------------------------------------------
# Main


def run_section(section: str, env: Env, args: argparse.Namespace) -> list[dict]:
    """One section under the flash and memory-efficient SDPA kernels; if neither applies (a
    "No available kernel" error), once more with the math kernel allowed too, noted in ``env.notes``."""
    env.allow_math_attention = False
    try:
        while True:
            try:
                with env.attention():
                    return BENCHMARKS[section](env, args)
            except RuntimeError as error:
                if "No available kernel" not in str(error) or env.allow_math_attention:
                    raise
                message = str(error).splitlines()[0]
            env.allow_math_attention = True
            env.notes.append(f"{section}: flash/efficient attention did not apply ({message}); rerun with the math kernel allowed")
            print(f"  {env.notes[-1]}", flush=True)
            free_memory()
    finally:
        env.allow_math_attention = False


def write_results(path: Path, results: dict) -> None:
    from fourd_hub._files import write_text_atomic

    write_text_atomic(path, json.dumps(results, indent=2) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="what to run (default: all)")
    parser.add_argument("--max-batch", type=int, default=64, help="largest batch size of the sweeps (powers of two up to it; default 64)")
    parser.add_argument("--steps", type=int, default=10, help="timed calls / training steps per measurement (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls before each measurement (default 3)")
    parser.add_argument("--json", type=Path, help="also write every number to this JSON file")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak TFLOP/s for MFU (default: looked up by name)")
    parser.add_argument("--fourds-sizes", nargs="+", default=["B", "e"], help="4DS sizes of the fourds section (default: B e)")
    parser.add_argument("--moog-preset", default="ego4d", help="MooG preset of the moog section (default ego4d)")
    parser.add_argument("--moog-frames", type=int, default=16, help="frames per MooG forward (default 16)")
    parser.add_argument("--pipeline-frames", type=int, default=128, help="frames of the synthetic video (default 128)")
    parser.add_argument("--pipeline-resolution", default="640x360", help="WIDTHxHEIGHT of the synthetic video (default 640x360)")
    parser.add_argument("--pipeline-batch", type=int, default=8, help="windows per model call of the second pipeline run (default 8)")
    parser.add_argument("--pretrain-recipe", default="4ds-l", help="pretraining recipe (default 4ds-l)")
    parser.add_argument("--pretrain-micro-batch", type=int, help="clips per step (default: the recipe's micro-batch, halved on out-of-memory)")
    parser.add_argument("--debug", action="store_true", help="tiny debug models, 1 step, batch <= 2: a smoke test of every section")
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # "cpu" with --debug: the tests' dry run
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch  # the only import before the CUDA check

    try:
        device = torch.device(args.device)
    except RuntimeError:
        print(f"error: --device must be cuda, cuda:N or cpu, got {args.device!r}", file=sys.stderr)
        return 2
    if device.type == "cuda" and not torch.cuda.is_available():
        print(NO_CUDA_MESSAGE.format(torch=torch.__version__), flush=True)
        return 0
    if device.type not in ("cuda", "cpu"):
        print(f"error: --device must be cuda, cuda:N or cpu, got {args.device!r}", file=sys.stderr)
        return 2
    if device.type == "cpu" and not args.debug:
        print("error: --device cpu is a dry run of the code paths: add --debug (the full-size models would take hours)", file=sys.stderr)
        return 2
    for name in ("steps", "max_batch", "pipeline_frames", "pipeline_batch", "moog_frames"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}", file=sys.stderr)
            return 2
    try:
        parse_resolution(args.pipeline_resolution)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.warmup < 0:
        print(f"error: --warmup must be at least 0, got {args.warmup}", file=sys.stderr)
        return 2
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device() if device.index is None else device.index)
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
        memory = torch.cuda.get_device_properties(device).total_memory / 2**30
        header = f"{name} ({memory:.0f} GiB), torch {torch.__version__}, CUDA {torch.version.cuda}"
    else:
        name, header = "cpu", f"CPU dry run (--device cpu --debug), torch {torch.__version__}, {torch.get_num_threads()} threads"
    try:
        peak, source = lookup_peak_tflops(name if device.type == "cuda" else "", args.peak_tflops)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    env = Env(
        device=device, dtype=torch.bfloat16, debug=args.debug, warmup=1 if args.debug else args.warmup,
        steps=1 if args.debug else args.steps, max_batch=min(args.max_batch, 2) if args.debug else args.max_batch, peak_tflops=peak,
    )
    print(f"gpu_check: {header}")
    shown_peak = f"{peak:g} TFLOP/s ({source})" if peak is not None else "unknown (not in the table: MFU needs --peak-tflops)"
    print(f"bf16 peak: {shown_peak}; SDPA: flash and memory-efficient kernels only")
    print(f"timing: {env.warmup} warm-up + {env.steps} timed calls per measurement; batch sizes {batch_sizes(env.max_batch)}", flush=True)

    results: dict[str, Any] = {
        "device": name, "torch": torch.__version__, "cuda": torch.version.cuda, "peak_tflops": peak, "peak_source": source,
        "debug": args.debug, "warmup": env.warmup, "steps": env.steps, "sections": {}, "errors": {}, "section_seconds": {},
        "notes": env.notes,
    }
    for section in args.sections:
        print(f"\n== {TITLES[section]} ==", flush=True)
        begin = time.perf_counter()
        try:
            rows = run_section(section, env, args)
        except Exception as error:  # one failing section must not cost the others' device time
            traceback.print_exc()
            results["errors"][section] = f"{type(error).__name__}: {error}"
            print(f"  section {section} failed: {type(error).__name__}: {error}", flush=True)
            free_memory()
        else:
            results["sections"][section] = rows
            print_section(section, rows)
        results["section_seconds"][section] = time.perf_counter() - begin
        print(f"  ({results['section_seconds'][section]:.0f} s)", flush=True)
        if args.json is not None:  # after every section: a later crash keeps what was measured
            write_results(args.json, results)
    if env.notes:
        print("\nnotes:\n" + "\n".join(f"  {note}" for note in env.notes))
    if args.json is not None:
        write_results(args.json, results)
        print(f"\nwrote {args.json}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
