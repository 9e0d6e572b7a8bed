"""Parallelism and memory options, applied from outside the model code (the torchtitan way).

The models know nothing of sharding: :func:`apply_fsdp` wraps every transformer block, then the
root, with PyTorch's FSDP2 ``fully_shard``; :func:`apply_activation_checkpointing` and
:func:`apply_compile` work per block too. Blocks are found through the model's
``_no_split_modules`` (``FourDSBlock``, ``MooGBlock``), the same list transformers' device maps use.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits: rank, world size, local rank and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()


def init_distributed(device: str | None = None, timeout_minutes: float = 30.0) -> DistributedContext:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ...).

    NCCL on CUDA, gloo on CPU. Without torchrun's variables this is a single process (no
    process group; FSDP then shards over a world of one, which is plain data-parallel-free training).

    Args:
        device: ``"cuda"``, ``"cpu"`` or None (CUDA when available).
        timeout_minutes: collective timeout.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cuda", "cpu"):
        raise ValueError(f"device must be 'cuda' or 'cpu', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but CUDA is not available; use device='cpu'")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        torch_device = torch.device("cuda", local_rank)
    else:
        torch_device = torch.device("cpu")
    if "RANK" in os.environ and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if device == "cuda" else "gloo",
            timeout=datetime.timedelta(minutes=timeout_minutes),
            device_id=torch_device if device == "cuda" else None,
        )
    return DistributedContext(rank, world_size, local_rank, torch_device)


def max_over_ranks(value: int) -> int:
    """The largest of every rank's ``value`` (a collective: every rank calls it; without a process
    group, ``value`` itself).

    A failure on one rank (a full disk, a bad file) must not leave the others waiting at a barrier
    until the collective timeout: every rank learns of it here (as a code) and can raise too.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return int(value)
    # NCCL reduces CUDA tensors only; gloo CPU ones.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor([int(value)], dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is set on any rank (collective, see :func:`max_over_ranks`)."""
    return max_over_ranks(int(bool(flag))) > 0


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The model's repeated blocks (classes named in ``_no_split_modules``), outermost first."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    if not names:
        raise ValueError(f"{type(model).__name__} declares no _no_split_modules: cannot find its blocks")
    blocks = [module for module in model.modules() if type(module).__name__ in names]
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no modules of the classes {sorted(names)}")
    return blocks


def mixed_precision_policy(mixed_precision: str, cast_forward_inputs: bool = True):
    """FSDP2 policy: ``"bf16"`` computes in bfloat16 from float32 master weights and reduces
    gradients in float32; ``"fp32"`` keeps everything in float32."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if mixed_precision not in ("bf16", "fp32"):
        raise ValueError(f"mixed_precision must be 'bf16' or 'fp32', got {mixed_precision!r}")
    param_dtype = torch.bfloat16 if mixed_precision == "bf16" else torch.float32
    return MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32, cast_forward_inputs=cast_forward_inputs)


def apply_fsdp(model: nn.Module, mixed_precision: str = "bf16", mesh=None, reshard_after_forward: bool = True) -> nn.Module:
    """Shard parameters, gradients and optimiser state with FSDP2: each block, then the root.

    Each block's parameters are all-gathered just before it runs and freed after (resharded), so
    peak parameter memory is one block plus the shards. The root holds what is left (embeddings,
    norms, heads, the latent grid). Gradients are reduce-scattered in float32.

    Args:
        model: a fourd_hub model (parameters on their training device, or on ``meta``).
        mixed_precision: ``"bf16"`` or ``"fp32"``, see :func:`mixed_precision_policy`.
        mesh: a 1-D ``DeviceMesh`` (default: all ranks of the default process group).
        reshard_after_forward: free gathered block parameters after forward (ZeRO-3) or keep
            them until backward (ZeRO-2-like, more memory, less communication).

    Returns:
        The same module, now an ``FSDPModule``.
    """
    from torch.distributed.fsdp import fully_shard

    policy = mixed_precision_policy(mixed_precision)
    for block in transformer_blocks(model):
        fully_shard(block, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard_after_forward)
    # The root keeps its float32 inputs: the video is the loss target too (L2 on raw RGB in float32);
    # the models cast it to the compute dtype where it enters the first layer. The root is gathered
    # for the whole step anyway: no point resharding it after forward.
    root_policy = mixed_precision_policy(mixed_precision, cast_forward_inputs=False)
    fully_shard(model, mesh=mesh, mp_policy=root_policy, reshard_after_forward=False)
    return model


def apply_activation_checkpointing(model: nn.Module) -> nn.Module:
    """Recompute every block's activations in backward (non-reentrant checkpointing).

    Uses transformers' own switch (our blocks are ``GradientCheckpointingLayer``), so it composes
    with FSDP2 and ``torch.compile``.
    """
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def apply_compile(model: nn.Module) -> nn.Module:
    """``torch.compile`` each block in place (per-block compilation keeps FSDP2's hooks outside
    the graphs and compiles one block shape once for the whole stack)."""
    for block in transformer_blocks(model):
        block.compile()
    return model
