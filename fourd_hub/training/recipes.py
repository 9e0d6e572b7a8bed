"""Pretraining recipes: every setting of a run as data, one preset per paper model plus debug ones.

A recipe says what to build (model family and configuration), what to read (clips), how to
optimise (AdamW, warmup + cosine, batch, clipping) and how to run (mixed precision, activation
checkpointing, compile, checkpoint cadence). ``get_recipe("4ds-b", max_steps=1000)`` returns a
copy with overrides; the trainer (:mod:`fourd_hub.training.pretrain`) takes nothing else.

Sources: 4DS, paper Table 4 / section A.1 (architecture.md section 3); MooG, the public MOVi
training config (architecture.md section 5); RVM, what rvm.md section 5 knows of the paper (its
abstract, the notebooks and, marked "secondary", public summaries). Values that no source gives
are marked "ours" (RVM: "not known", with what stands in for them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..registry import FAMILIES, get_family

MIXED_PRECISION = ("bf16", "fp32")


@dataclass(frozen=True)
class PretrainingRecipe:
    """One pretraining run's settings.

    Args:
        name: recipe name (recorded in checkpoints and logs).
        family: the model family (registry name): its ``pretraining_model`` is trained
            (``"fourds"``: masked auto-encoding, ``"moog"``: next-frame prediction, ``"rvm"``:
            masked reconstruction of target frames from source frames).
        preset: size preset of the family's config (``FourDSConfig.from_preset`` /
            ``MooGConfig.from_preset`` / ``RVMConfig.from_preset``), or None to build the config
            from ``model`` alone.
        model: config keyword arguments (overrides of the preset).
        data: ``"synthetic"`` (rendered moving-shapes scenes, no files needed) or the videos: a
            directory, a glob pattern, a ``.txt`` list of files, or a single file.
        num_frames: clip length (frames). RVM: the span a clip's source and target frames are
            drawn from (its first ``num_source_frames`` are the sources, the targets are drawn
            after them, each target's delta = its index in the clip).
        frame_stride: temporal stride of the sampled frames (2 in the paper).
        crop_size: (height, width) of the random crop.
        min_resize_factor: the shortest side is resized to this times the crop (1.15).
        random_flip: random horizontal flips.
        global_batch_size: clips per optimiser step over all processes.
        micro_batch_size: clips per forward/backward per process; the trainer accumulates
            ``global_batch_size / (micro_batch_size * world_size)`` of them per step.
        max_steps: optimiser steps of the whole run (sets the cosine schedule's length).
        warmup_steps: linear warm-up from 0 to ``learning_rate``.
        learning_rate: peak learning rate.
        min_learning_rate: the cosine's floor.
        weight_decay: AdamW decoupled weight decay (not on norms, biases, position embeddings
            or the latent decoding grid).
        betas: AdamW (b1, b2).
        eps: AdamW epsilon (optax's default 1e-8).
        grad_clip: global-norm gradient clipping, None for none.
        mixed_precision: ``"bf16"`` (bf16 compute, float32 weights, optimiser and gradient
            reductions, loss in float32) or ``"fp32"``.
        activation_checkpointing: recompute each block in the backward pass (memory for compute).
        compile: ``torch.compile`` each block.
        num_workers: data-loader worker processes per training process.
        seed: seeds weights, data and masks; a run is a function of its recipe and seed.
        log_every: steps between log lines.
        checkpoint_every: steps between sharded checkpoints (0: only at the end).
        keep_checkpoints: how many recent checkpoints to keep (older ones are deleted).
        peak_tflops: accelerator peak (dense bf16 TFLOP/s per device) for MFU; None: looked up
            from the device name when known (no MFU on CPU).
    """

    name: str
    family: str
    preset: str | None = None
    model: dict[str, Any] = field(default_factory=dict)
    data: str = "synthetic"
    num_frames: int = 16
    frame_stride: int = 2
    crop_size: tuple[int, int] = (224, 224)
    min_resize_factor: float = 1.15
    random_flip: bool = True
    global_batch_size: int = 2048
    micro_batch_size: int = 8
    max_steps: int = 488_282
    warmup_steps: int = 10_000
    learning_rate: float = 1e-4
    min_learning_rate: float = 0.0
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    grad_clip: float | None = None
    mixed_precision: str = "bf16"
    activation_checkpointing: bool = False
    compile: bool = False
    num_workers: int = 2
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    peak_tflops: float | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"recipe family must be one of {tuple(FAMILIES)}, got {self.family!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        object.__setattr__(self, "crop_size", tuple(self.crop_size))
        object.__setattr__(self, "betas", tuple(self.betas))
        for name in ("num_frames", "frame_stride", "global_batch_size", "micro_batch_size", "max_steps", "log_every", "keep_checkpoints"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"recipe {name} must be a positive integer, got {value!r}")
        for name in ("warmup_steps", "checkpoint_every", "num_workers", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"recipe {name} must be a non-negative integer, got {value!r}")
        if len(self.crop_size) != 2 or any(not isinstance(s, int) or s < 1 for s in self.crop_size):
            raise ValueError(f"crop_size must be (height, width) positive integers, got {self.crop_size!r}")
        if not self.learning_rate > 0 or not 0 <= self.min_learning_rate <= self.learning_rate:
            raise ValueError(
                f"need learning_rate > 0 and 0 <= min_learning_rate <= learning_rate, got {self.learning_rate}, "
                f"{self.min_learning_rate}"
            )
        if self.weight_decay < 0 or not all(0 <= b < 1 for b in self.betas) or self.eps <= 0:
            raise ValueError(f"bad AdamW settings: weight_decay={self.weight_decay}, betas={self.betas}, eps={self.eps}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None, got {self.grad_clip}")
        if self.min_resize_factor < 1:
            raise ValueError(f"min_resize_factor must be >= 1 (the crop must fit), got {self.min_resize_factor}")

    def replace(self, **overrides) -> "PretrainingRecipe":
        """A copy with some fields changed (validated again)."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown recipe fields {sorted(unknown)}; see PretrainingRecipe")
        return dataclasses.replace(self, **overrides)

    def gradient_accumulation_steps(self, world_size: int) -> int:
        """Micro-batches per optimiser step and process; the global batch must split evenly."""
        per_step = self.micro_batch_size * world_size
        if self.global_batch_size % per_step:
            raise ValueError(
                f"global_batch_size {self.global_batch_size} is not a multiple of micro_batch_size "
                f"{self.micro_batch_size} x {world_size} processes; change one of them"
            )
        return self.global_batch_size // per_step

    def build_config(self):
        """The model configuration (FourDSConfig / MooGConfig / RVMConfig), sized to the recipe's clips."""
        config_class = get_family(self.family).load("config_class")
        values = dict(self.model)
        values.setdefault("num_frames", self.num_frames)
        values.setdefault("image_size", list(self.crop_size))
        if self.preset is not None:
            return config_class.from_preset(self.preset, **values)
        return config_class(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "PretrainingRecipe":
        return cls(**values)


# 4DS, paper Table 4: AdamW (0.9, 0.95), wd 0.05, lr 1e-4 with 10k warm-up and cosine, batch 2048,
# 488,282 steps, mask 0.95, bf16; 22B: lr 2e-4, 100k warm-up, 1M steps, 256x256 clips. The
# micro-batch sizes and activation checkpointing are ours (what fits an 80 GB accelerator).
_FOURDS_PAPER = dict(family="fourds", num_frames=16, frame_stride=2, crop_size=(224, 224), global_batch_size=2048,
                     max_steps=488_282, warmup_steps=10_000, learning_rate=1e-4, weight_decay=0.05)
_FOURDS_MICRO_BATCH = {"S": 64, "B": 32, "L": 16, "H": 8, "G": 4, "e": 2}

# RVM (rvm.md section 5: the paper's method section could not be read; "secondary" = public
# summaries of the paper, unchecked). Known: 256 x 256 clips (the released files' 16 x 16 base
# grid), 4 source + 4 target frames (secondary; also the demo's), 95% of the target patches masked
# with one mask per clip for all its targets (the model's default; section 3.5), a plain pixel L2
# without patch normalisation (secondary), 1M-4M steps (secondary: 1M here), video data only.
# Source/target sampling, secondary: "targets at a random gap of 4 to 48 frames", read here as
# each target's offset from the first source frame (the delta the decoder embeds; the demo's
# targets [4, 5, 6, 7] are offsets 4..7) being in [4, 48]: clips of 49 consecutive frames (stride
# 1: a delta counts video frames), the 4 sources are frames 0..3, the 4 targets 4 distinct
# frames drawn uniformly among 4..48 (RVMForMaskedVideoReconstruction.clip_random_inputs), so the
# gaps between sources and targets and between targets are random.
# NOT KNOWN (section 5), assumed: the optimiser, learning rate, schedule and batch size are 4DS
# Table 4's (same group and codebase: AdamW (0.9, 0.95), wd 0.05, lr 1e-4, 10k warm-up, cosine to
# 0, batch 2048), the augmentation is 4DS's (shortest side to 1.15 x the crop, random crop and
# flip), no gradient clipping, bf16 compute (the notebooks run their LayerNorms in bf16), and the
# loss covers every target pixel (reconstruction_loss="all"; "masked" is the other reading).
# Ours: the micro-batch sizes (estimated for an 80 GB device, not measured) and activation
# checkpointing from L up.
_RVM_PAPER = dict(family="rvm", num_frames=49, frame_stride=1, crop_size=(256, 256), global_batch_size=2048,
                  max_steps=1_000_000, warmup_steps=10_000, learning_rate=1e-4, weight_decay=0.05)
_RVM_PAPER_MODEL = dict(num_source_frames=4, num_target_frames=4, masking_ratio=0.95, reconstruction_loss="all")
_RVM_MICRO_BATCH = {"S": 128, "B": 64, "L": 32, "H": 16}

RECIPES: dict[str, PretrainingRecipe] = {
    # CI: a few-second 4DS run on CPU (2 accumulation steps with 2 processes).
    "debug": PretrainingRecipe(
        name="debug", family="fourds",
        model=dict(hidden_size=64, num_hidden_layers=4, intermediate_size=128, num_attention_heads=4,
                   patch_size=[2, 8, 8], mask_ratio=0.75, num_decoder_layers=2),
        data="synthetic", num_frames=8, crop_size=(32, 32), global_batch_size=8, micro_batch_size=2,
        max_steps=30, warmup_steps=3, learning_rate=2e-3, weight_decay=0.05, grad_clip=1.0,
        mixed_precision="bf16", num_workers=0, log_every=1, checkpoint_every=10,
    ),
    # CI: a tiny MooG trained by next-frame prediction on CPU.
    "debug-moog": PretrainingRecipe(
        name="debug-moog", family="moog",
        model=dict(hidden_size=32, num_tokens=16, encoder_conv_features=[16, 32], encoder_strides=[2, 2],
                   encoder_fourier_bases=4,
                   encoder_transformer=dict(num_layers=0, qkv_size=32, num_heads=2, mlp_size=32, hidden_size=32),
                   predictor=dict(num_layers=1, qkv_size=32, num_heads=2, mlp_size=64),
                   corrector=dict(num_layers=1, qkv_size=32, num_heads=2, mlp_size=64),
                   decoder=dict(num_layers=1, qkv_size=32, num_heads=2, mlp_size=64, fourier_bases=4, subsample_factor=2),
                   depth_decoder=None),
        data="synthetic", num_frames=4, frame_stride=1, crop_size=(32, 32), global_batch_size=8, micro_batch_size=2,
        max_steps=30, warmup_steps=3, learning_rate=2e-3, min_learning_rate=1e-7, weight_decay=1e-4, grad_clip=1.0,
        mixed_precision="bf16", num_workers=0, log_every=1, checkpoint_every=10,
    ),
    # CI: a tiny RVM (rvm's debug_config sizes) reconstructing 2 of 4 frames after 2 sources,
    # 75% of their 16 patches masked, on CPU in seconds.
    "debug-rvm": PretrainingRecipe(
        name="debug-rvm", family="rvm",
        model=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, patch_size=[8, 8],
                   base_token_shape=[2, 3], core=dict(num_layers=1, num_heads=2, num_feats=24, mlp_size=40),
                   decoder=dict(num_layers=1, num_heads=2, num_feats=16, mlp_size=32, hidden_size=24, num_delta_classes=64),
                   masking_ratio=0.75, num_source_frames=2, num_target_frames=2),
        data="synthetic", num_frames=6, frame_stride=1, crop_size=(32, 32), global_batch_size=8, micro_batch_size=2,
        max_steps=30, warmup_steps=3, learning_rate=2e-3, weight_decay=0.05, grad_clip=1.0,
        mixed_precision="bf16", num_workers=0, log_every=1, checkpoint_every=10,
    ),
    **{
        f"4ds-{size.lower()}": PretrainingRecipe(
            name=f"4ds-{size.lower()}", preset=size, micro_batch_size=micro, activation_checkpointing=size not in ("S", "B"),
            **_FOURDS_PAPER,
        )
        for size, micro in _FOURDS_MICRO_BATCH.items()
    },
    "4ds-j": PretrainingRecipe(
        name="4ds-j", preset="j", micro_batch_size=1, activation_checkpointing=True,
        **{**_FOURDS_PAPER, "crop_size": (256, 256), "max_steps": 1_000_000, "warmup_steps": 100_000, "learning_rate": 2e-4},
    ),
    # MooG, the public MOVi config: 8-frame 128x128 clips, batch 128, AdamW lr 1e-4 (b2 0.95),
    # warm-up 1000, cosine to 1e-7, global-norm clipping 1.0. Ours: stride 1 (consecutive
    # frames), weight decay 1e-4 (optax's AdamW default), 500k steps, micro-batch 16.
    "moog-movi": PretrainingRecipe(
        name="moog-movi", family="moog", preset="movi", num_frames=8, frame_stride=1, crop_size=(128, 128),
        global_batch_size=128, micro_batch_size=16, max_steps=500_000, warmup_steps=1000, learning_rate=1e-4,
        min_learning_rate=1e-7, weight_decay=1e-4, grad_clip=1.0, model=dict(depth_decoder=None),
    ),
    # RVM at the released sizes (S/B/L/H presets); what is known and what is assumed: above.
    **{
        f"rvm-{size.lower()}": PretrainingRecipe(
            name=f"rvm-{size.lower()}", preset=size, model=dict(_RVM_PAPER_MODEL), micro_batch_size=micro,
            activation_checkpointing=size in ("L", "H"), **_RVM_PAPER,
        )
        for size, micro in _RVM_MICRO_BATCH.items()
    },
}


def get_recipe(name: str, **overrides) -> PretrainingRecipe:
    """A named recipe, with field overrides: ``get_recipe("4ds-b", max_steps=1000, data="videos/")``."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    return RECIPES[name].replace(**overrides) if overrides else RECIPES[name]
