"""Pretraining under torchrun: FSDP2, mixed precision, sharded checkpoints, resume, export.

Launch (one process per device; several nodes with torchrun's own ``--nnodes`` / rendezvous flags)::

    torchrun --nproc-per-node 8 -m fourd_hub.training.pretrain --recipe 4ds-b --data videos/ --output-dir runs/b
    python -m fourd_hub.training.pretrain --recipe debug --output-dir runs/debug      # one process, CPU ok
    python -m fourd_hub.training.pretrain export runs/b runs/b-hf                      # checkpoint -> save_pretrained

A run is a function of its recipe (:mod:`fourd_hub.training.recipes`): the weights are seeded,
the data stream's content depends only on (seed, sample index), and so do each clip's random
inputs (4DS mask, MooG initial state: :func:`clip_random_inputs`), whatever micro-batch or rank
the clip lands in. So a run killed and resumed from a checkpoint continues with exactly the losses
of an uninterrupted one, and a resume with another micro-batch size or number of processes feeds
every clip the same inputs bit for bit (the losses then agree up to float rounding: batched
kernels and sums run in another order). The one draw the models do not take per clip, MooG's
pixel subsample offsets, comes from a generator seeded with (seed, step, rank, micro-batch).

Nothing is written before the recipe's model and data have been checked (the model is built, the
data source opened and the first step's clips read): a run that fails there leaves its output
directory as it found it.

Output directory: ``recipe.json``, ``metrics.jsonl`` (one JSON line per logged step),
``checkpoints/step_*/`` (:mod:`fourd_hub.training.checkpoint`), ``final/`` (``save_pretrained``
of the trained model, loadable with ``from_pretrained``) and, with ``--tensorboard``, ``tensorboard/``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .._files import write_text_atomic
from . import checkpoint as ckpt
from .parallel import (
    DistributedContext,
    any_rank,
    apply_activation_checkpointing,
    apply_compile,
    apply_fsdp,
    init_distributed,
)
from .optim import parameter_groups
from .recipes import RECIPES, PretrainingRecipe, get_recipe

# Dense (no sparsity) bfloat16 peak TFLOP/s per device, from the vendors' datasheets. Matched in
# order as case-insensitive substrings of torch.cuda.get_device_name(): more specific names first
# ("H100 PCIe" before "H100", "A100" before "A10", "L40S" before "L40" before "L4"). The one table:
# benchmarks/gpu_check.py reads it too.
PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("B200", 2250.0),
    ("H200 NVL", 835.0),
    ("H200", 989.0),  # also GH200
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM ("NVIDIA H100 80GB HBM3")
    ("H800", 989.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("A10G", 70.0),
    ("A10", 125.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
)


def peak_tflops_for(device_name: str) -> tuple[float, str] | None:
    """(dense bf16 peak TFLOP/s, matching table key) of a device called ``device_name``, or None if unknown."""
    for key, value in PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return value, key
    return None

# Fields a resumed run may change: they do not alter the trajectory (the step's data are the same
# set of clips whatever the micro-batching, see BatchStream, and each clip's random inputs depend on
# its sample index only, see clip_random_inputs), only speed, memory, logging and float rounding.
RESUMABLE_CHANGES = frozenset({
    "micro_batch_size", "num_workers", "log_every", "checkpoint_every", "keep_checkpoints", "activation_checkpointing",
    "compile", "peak_tflops",
})

# Test hook: seconds to sleep after each checkpoint, so a test can kill the run at a known point.
_PAUSE_AFTER_CHECKPOINT = "FOURD_HUB_TEST_PAUSE_AFTER_CHECKPOINT"


# ----------------------------------------------------------------------------------------------
# Schedule, seeds, model


def learning_rate_at(step: int, recipe: PretrainingRecipe) -> float:
    """Learning rate of optimiser step ``step`` (0-based): linear warm-up from 0, then cosine to the floor."""
    if step < recipe.warmup_steps:
        return recipe.learning_rate * step / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.max_steps - recipe.warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return recipe.min_learning_rate + (recipe.learning_rate - recipe.min_learning_rate) * cosine


# Mixed into the per-clip seeds so that a clip's mask noise is not drawn from the same entropy as
# its content (the data stream uses numpy.random.default_rng([seed, index])). ASCII "clip".
_CLIP_STREAM = 0x636C6970


def _seeded_generator(entropy: list[int]) -> torch.Generator:
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def micro_batch_generator(seed: int, step: int, rank: int, micro_batch: int) -> torch.Generator:
    """The generator of the draws a model makes per micro-batch rather than per clip.

    Only MooG's pixel subsample offsets come from it (the model draws them inside ``forward``);
    they depend on how clips are grouped into micro-batches and ranks. Everything else random is
    per clip: :func:`clip_generator`.
    """
    return _seeded_generator([seed, step, rank, micro_batch])


def clip_generator(seed: int, sample_index: int) -> torch.Generator:
    """The generator of one clip's random inputs: seeded with (seed, global sample index) only."""
    return _seeded_generator([seed, int(sample_index), _CLIP_STREAM])


def clip_random_inputs(model: torch.nn.Module, sample_indices: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """The random inputs of a micro-batch, drawn clip by clip and stacked (CPU tensors).

    Clip ``i`` of the micro-batch gets what its pretraining model class's static
    ``clip_random_inputs(config, generator)`` draws from :func:`clip_generator`
    ``(seed, sample_indices[i])`` (4DS: its patch mask; MooG: its initial state and pixel
    subsample offsets), so its inputs are the same bits whichever micro-batch, rank or step size
    it is trained in.

    Args:
        model: the pretraining model (FSDP-wrapped or not).
        sample_indices: (B,) global sample indices of the micro-batch's clips (the stream's
            ``"sample_index"``).
        seed: the recipe's seed.

    Returns:
        Keyword arguments for the model's ``forward``.

    Raises:
        TypeError: the model's class does not draw per-clip random inputs.
    """
    config = model.config
    model_class = ckpt.pretraining_model_class(config)
    draw = getattr(model_class, "clip_random_inputs", None)
    if draw is None:
        raise TypeError(f"{model_class.__name__} has no per-clip random inputs: give it a static clip_random_inputs(config, generator)")
    per_clip = [draw(config, clip_generator(seed, index)) for index in sample_indices.tolist()]
    return {key: torch.cat([inputs[key] for inputs in per_clip]) for key in per_clip[0]} if per_clip else {}


def build_model(recipe: PretrainingRecipe, device: torch.device | str = "cpu") -> torch.nn.Module:
    """The recipe's pretraining model with fresh, seeded float32 weights on ``device``."""
    config = recipe.build_config()
    model_class = ckpt.pretraining_model_class(config)
    torch.manual_seed(recipe.seed)
    with torch.device(device):
        return model_class(config)


def tokens_per_clip(config) -> int:
    """Input tokens of one clip (4DS patches, MooG encoder tokens over all frames): the pretraining model's count."""
    return ckpt.pretraining_model_class(config).tokens_per_clip(config)


def training_flops_per_clip(recipe: PretrainingRecipe) -> float:
    """FLOPs of one clip's forward + backward, counted by torch on the meta device (no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    config = recipe.build_config()
    with torch.device("meta"):
        model = ckpt.pretraining_model_class(config)(config).train()
    video = torch.zeros(1, recipe.num_frames, 3, *recipe.crop_size, device="meta")
    generator = torch.Generator().manual_seed(0)
    # Inputs the model draws itself at random (4DS: a real CPU mask: its patch count is data-dependent).
    kwargs: dict[str, Any] = {"generator": generator, **ckpt.pretraining_model_class(config).meta_device_inputs(config, generator)}
    counter = FlopCounterMode(display=False)
    with counter:
        model(video, **kwargs).loss.backward()
    return float(counter.get_total_flops())


def device_peak_tflops(recipe: PretrainingRecipe, device: torch.device) -> float | None:
    if recipe.peak_tflops is not None:
        return recipe.peak_tflops
    if device.type == "cuda":
        found = peak_tflops_for(torch.cuda.get_device_name(device))
        if found is not None:
            return found[0]
    return None


def build_training(recipe: PretrainingRecipe, device: torch.device) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The recipe's model on ``device`` with its parallelism applied, and its optimiser.

    Activation checkpointing and ``torch.compile`` where the recipe asks, then FSDP2 over the
    process group (a world of one without torchrun), then AdamW over the recipe's parameter groups
    (the learning rate is set per step by :func:`train_step`'s caller). The trainer and
    ``benchmarks/gpu_check.py`` share it.
    """
    model = build_model(recipe, device)
    if recipe.activation_checkpointing:
        apply_activation_checkpointing(model)
    if recipe.compile:
        apply_compile(model)
    apply_fsdp(model, recipe.mixed_precision)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, recipe.weight_decay), lr=0.0, betas=recipe.betas, eps=recipe.eps,
        foreach=torch.device(device).type == "cuda",
    )
    return model, optimizer


# ----------------------------------------------------------------------------------------------
# The training step


def train_step(model, optimizer, micro_batches, step: int, recipe: PretrainingRecipe, ctx: DistributedContext) -> tuple[float, float | None]:
    """One optimiser step over this rank's micro-batches; returns (mean loss over all ranks, grad norm)."""
    losses = []
    for i, batch in enumerate(micro_batches):
        model.set_requires_gradient_sync(i == len(micro_batches) - 1)  # reduce-scatter once per step
        video = batch["pixel_values_videos"].to(ctx.device, non_blocking=True)
        # Per clip, so regrouping clips (another micro-batch size or world size) keeps every input.
        inputs = clip_random_inputs(model, batch["sample_index"], recipe.seed)
        # Every random input is per clip (above); the generator only serves a model that would draw more.
        generator = micro_batch_generator(recipe.seed, step, ctx.rank, i)
        loss = model(video, generator=generator, return_dict=True, **inputs).loss  # float32
        (loss / len(micro_batches)).backward()
        losses.append(loss.detach())
    grad_norm = None
    if recipe.grad_clip is not None:
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        grad_norm = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm)
    for group in optimizer.param_groups:
        group["lr"] = learning_rate_at(step, recipe)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    loss = torch.stack(losses).mean()
    if ctx.distributed:
        dist.all_reduce(loss, op=dist.ReduceOp.AVG if dist.get_backend() == "nccl" else dist.ReduceOp.SUM)
        if dist.get_backend() != "nccl":  # gloo has no AVG
            loss /= ctx.world_size
    return loss.item(), grad_norm


# ----------------------------------------------------------------------------------------------
# The run


@dataclass
class PretrainingResult:
    """What :func:`pretrain` returns (rank 0 has the losses of every step it ran)."""

    output_dir: Path
    start_step: int
    end_step: int
    losses: dict[int, float] = field(default_factory=dict)
    export_dir: Path | None = None


class _Logger:
    """Rank 0's progress bar, metrics.jsonl and optional TensorBoard."""

    def __init__(self, output_dir: Path, start_step: int, max_steps: int, enabled: bool, tensorboard: bool, progress: bool):
        self.enabled = enabled
        self.writer = None
        self.bar = None
        if not enabled:
            return
        self.metrics = output_dir / "metrics.jsonl"
        # A resumed run rewrites history from its checkpoint on: drop lines of steps not kept.
        if self.metrics.is_file():
            kept = [line for line in self.metrics.read_text().splitlines() if line and json.loads(line)["step"] <= start_step]
            write_text_atomic(self.metrics, "".join(line + "\n" for line in kept))
        if tensorboard:
            self.writer = self.summary_writer_class()(str(output_dir / "tensorboard"), purge_step=start_step)
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=max_steps, initial=start_step, desc="pretraining", unit="step", dynamic_ncols=True)

    @staticmethod
    def summary_writer_class() -> type:
        """TensorBoard's ``SummaryWriter`` (checked before the run writes anything)."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise ImportError("--tensorboard needs the tensorboard package: pip install tensorboard") from error
        return SummaryWriter

    def log(self, step: int, values: dict[str, float], write_line: bool) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{values['loss']:.4g}", lr=f"{values['lr']:.2e}")
        if write_line:
            with self.metrics.open("a") as stream:
                stream.write(json.dumps({"step": step, **values}) + "\n")
            text = " | ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
            message = f"step {step}: {text}"
            if self.bar is not None:
                self.bar.write(message)
            else:
                print(message, flush=True)
            if self.writer is not None:
                for key, value in values.items():
                    self.writer.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()


def _check_resume(saved: dict[str, Any], recipe: PretrainingRecipe) -> None:
    current = recipe.to_dict()
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and json.loads(json.dumps(current[k])) != saved.get(k))
    if changed:
        raise ValueError(
            f"cannot resume: the checkpoint was trained with another recipe ({', '.join(changed)} differ: "
            f"{ {k: saved.get(k) for k in changed} }); use the same recipe, or a new --output-dir"
        )


def _write_run_record(output_dir: Path, recipe: PretrainingRecipe) -> None:
    """Create the output directory and write ``recipe.json``; on failure, remove what was created."""
    created = []
    for directory in reversed([output_dir, *output_dir.parents]):
        if not directory.exists():
            created.append(directory)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(output_dir / "recipe.json", json.dumps(recipe.to_dict(), indent=2) + "\n")
    except BaseException:
        for directory in reversed(created):  # only empty ones: write_text_atomic removes its own temporary
            try:
                directory.rmdir()
            except OSError:
                break
        raise


def pretrain(
    recipe: PretrainingRecipe,
    output_dir: str | os.PathLike,
    *,
    resume: bool = True,
    device: str | None = None,
    export: bool = True,
    tensorboard: bool = False,
    progress: bool = True,
) -> PretrainingResult:
    """Run (or resume) a pretraining recipe in this process, as one rank of torchrun's job.

    Args:
        recipe: what to train and how.
        output_dir: the run's directory (created; shared by all ranks).
        resume: continue from the latest complete checkpoint in ``output_dir`` if there is one; with
            False, an output directory holding checkpoints is an error (never mixed with a new run).
        device: ``"cuda"`` / ``"cpu"`` (default: CUDA when available).
        export: at the end, write ``output_dir/final`` with ``save_pretrained``.
        tensorboard: also log to ``output_dir/tensorboard`` (needs the tensorboard package).
        progress: show a progress bar on rank 0.

    Nothing is written (``output_dir`` not even created) until the model has been built, the data
    source opened and the first step's clips read: an invalid recipe, model configuration or data
    source leaves ``output_dir`` as it was. ``recipe.json`` is then written, for a new run only.

    Raises:
        ValueError: the recipe does not fit (batch split, another recipe's checkpoints), the model
            configuration or the data source is invalid.
        FileNotFoundError: the data source does not exist.
        ImportError: ``tensorboard=True`` without the tensorboard package.
        CheckpointError: (a ``ValueError``) the checkpoint to resume from is truncated or corrupt.
        OSError: writing failed; a full disk while saving a checkpoint says "disk full" and names it.
        FloatingPointError: the loss is not finite.
    """
    ctx = init_distributed(device)
    owns_group = False
    if not dist.is_initialized():
        # One process without torchrun: a world of one, so the same FSDP2 code path (and its
        # mixed-precision policy) serves both.
        # NCCL on CUDA: gloo has no reduce-scatter of CUDA tensors, which FSDP2 needs.
        backend = "nccl" if ctx.device.type == "cuda" else "gloo"
        dist.init_process_group(
            backend, store=dist.HashStore(), rank=0, world_size=1, device_id=ctx.device if backend == "nccl" else None
        )
        owns_group = True
    try:
        return _pretrain(recipe, Path(output_dir), ctx, resume, export, tensorboard, progress)
    finally:
        if owns_group:
            dist.destroy_process_group()


def _pretrain(recipe, output_dir: Path, ctx: DistributedContext, resume, export, tensorboard, progress) -> PretrainingResult:
    from torch.utils.data import DataLoader

    from ..data.pretraining import pretraining_stream

    accumulation = recipe.gradient_accumulation_steps(ctx.world_size)
    latest = ckpt.latest_checkpoint(output_dir)
    if latest is not None and not resume:
        # Starting over beside another run's checkpoints would mix the two on the next resume.
        raise ValueError(
            f"{output_dir} already holds checkpoints ({latest.name}); resume it, or use a new --output-dir "
            "(or delete its checkpoints folder) to start fresh"
        )
    if tensorboard and ctx.is_main:
        _Logger.summary_writer_class()
    saved_state = None
    if latest is not None:
        saved_state = ckpt.read_trainer_state(latest)
        _check_resume(saved_state["recipe"], recipe)

    model, optimizer = build_training(recipe, ctx.device)  # validates the model configuration

    start_step = 0
    if latest is not None:
        ckpt.load_checkpoint(latest, model, optimizer)
        start_step = saved_state["step"]
        if ctx.is_main:
            print(f"resumed from {latest} at step {start_step}", flush=True)

    # Step s reads micro-batches [s * accumulation, (s + 1) * accumulation) of this rank's stream:
    # the global clips [s * global_batch, (s + 1) * global_batch), whatever the world size.
    stream = pretraining_stream(recipe, ctx.rank, ctx.world_size, start_batch=start_step * accumulation)  # validates the source
    loader = DataLoader(
        stream, batch_size=None, num_workers=recipe.num_workers, pin_memory=ctx.device.type == "cuda",
        persistent_workers=recipe.num_workers > 0,
    )
    batches = iter(loader)
    # The first step's clips are read before anything is written: unreadable videos fail here.
    first_step = [next(batches) for _ in range(accumulation)] if start_step < recipe.max_steps else []

    peak = device_peak_tflops(recipe, ctx.device)
    flops_per_clip = training_flops_per_clip(recipe) if peak is not None else None
    clip_tokens = tokens_per_clip(model.config)

    # Validated: only now does the run write (rank 0; the others wait, and all fail together).
    failure = None
    if ctx.is_main and latest is None:
        try:
            _write_run_record(output_dir, recipe)
        except OSError as error:
            failure = error
    if any_rank(failure is not None):
        raise failure if failure is not None else RuntimeError(f"rank 0 could not write {output_dir / 'recipe.json'}")

    logger = _Logger(output_dir, start_step, recipe.max_steps, ctx.is_main, tensorboard, progress)
    result = PretrainingResult(output_dir, start_step, start_step)
    model.train()
    window_start, window_steps = time.perf_counter(), 0
    try:
        for step in range(start_step, recipe.max_steps):
            micro_batches = first_step if step == start_step else [next(batches) for _ in range(accumulation)]
            loss, grad_norm = train_step(model, optimizer, micro_batches, step, recipe, ctx)
            if not math.isfinite(loss):
                raise FloatingPointError(f"the loss is {loss} at step {step}; lower the learning rate or check the data")
            result.losses[step] = loss
            result.end_step = step + 1
            window_steps += 1
            write_line = (step + 1) % recipe.log_every == 0 or step + 1 == recipe.max_steps
            values: dict[str, float] = {"loss": loss, "lr": learning_rate_at(step, recipe)}
            if grad_norm is not None:
                values["grad_norm"] = grad_norm
            if write_line:
                if ctx.device.type == "cuda":
                    torch.cuda.synchronize(ctx.device)
                elapsed = time.perf_counter() - window_start
                clips_per_second = window_steps * recipe.global_batch_size / elapsed
                values.update({"clips_per_s": clips_per_second, "tokens_per_s": clips_per_second * clip_tokens})
                if flops_per_clip is not None:
                    values["mfu"] = clips_per_second * flops_per_clip / (peak * 1e12 * ctx.world_size)
                window_start, window_steps = time.perf_counter(), 0
            logger.log(step + 1, values, write_line)

            done = step + 1 == recipe.max_steps
            if (recipe.checkpoint_every and (step + 1) % recipe.checkpoint_every == 0) or done:
                trainer_state = {
                    "step": step + 1, "micro_batches_consumed": (step + 1) * accumulation,
                    "clips_consumed": (step + 1) * recipe.global_batch_size, "world_size": ctx.world_size,
                    "learning_rate": learning_rate_at(step, recipe), "loss": loss, "recipe": recipe.to_dict(),
                }
                ckpt.save_checkpoint(ckpt.checkpoint_dir(output_dir, step + 1), model, optimizer, trainer_state, recipe.keep_checkpoints)
                pause = float(os.environ.get(_PAUSE_AFTER_CHECKPOINT, "0") or 0)
                if pause and not done:
                    time.sleep(pause)
    finally:
        logger.close()

    if export and result.end_step == recipe.max_steps:
        full_state = ckpt.gather_full_state_dict(model)
        if ctx.is_main:
            result.export_dir = ckpt.save_pretrained_from_state(ckpt.pretraining_model_class(model.config), model.config, full_state, output_dir / "final")
            print(f"saved the trained model to {result.export_dir}", flush=True)
        dist.barrier()
    return result


# ----------------------------------------------------------------------------------------------
# Command line


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fourd_hub.training.pretrain",
        description="Pretrain 4DS (masked auto-encoding), MooG (next-frame prediction) or RVM (masked reconstruction) with FSDP2. "
        "Run under torchrun for several processes. `... export CHECKPOINT OUTPUT` turns a checkpoint into a "
        "save_pretrained directory.",
    )
    parser.add_argument("--recipe", default="debug", choices=sorted(RECIPES), help="preset (default: debug)")
    parser.add_argument("--output-dir", required=True, help="run directory: checkpoints, logs, final model")
    parser.add_argument("--data", help="videos: a directory, glob, .txt list or file; or 'synthetic'")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--global-batch-size", type=int)
    parser.add_argument("--micro-batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="any other recipe field (JSON values), e.g. --set grad_clip=1.0 --set compile=true")
    parser.add_argument("--device", choices=("cuda", "cpu"))
    parser.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run (an output dir with checkpoints is an error)")
    parser.add_argument("--no-export", action="store_true", help="do not write output_dir/final at the end")
    parser.add_argument("--tensorboard", action="store_true", help="log to output_dir/tensorboard")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    return parser


def recipe_from_args(args: argparse.Namespace) -> PretrainingRecipe:
    overrides: dict[str, Any] = {}
    for name in ("data", "max_steps", "global_batch_size", "micro_batch_size", "learning_rate", "seed"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set takes FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = _parse_value(value)
    return get_recipe(args.recipe, **overrides)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] == "export":
            parser = argparse.ArgumentParser(prog="python -m fourd_hub.training.pretrain export")
            parser.add_argument("checkpoint", help="a checkpoints/step_* directory or a run directory (its latest)")
            parser.add_argument("output_dir")
            args = parser.parse_args(argv[1:])
            print(f"exported to {ckpt.export_checkpoint(args.checkpoint, args.output_dir)}")
            return 0
        args = build_parser().parse_args(argv)
        recipe = recipe_from_args(args)
        pretrain(recipe, args.output_dir, resume=not args.no_resume, device=args.device, export=not args.no_export,
                 tensorboard=args.tensorboard, progress=not args.no_progress)
        return 0
    except (ValueError, OSError, ImportError, FloatingPointError) as error:  # OSError: disk full, permissions
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
