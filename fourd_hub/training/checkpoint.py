"""Sharded training checkpoints with ``torch.distributed.checkpoint`` (DCP), and their export.

A checkpoint is a directory ``<output_dir>/checkpoints/step_<8 digits>/`` holding

* DCP's shards (``__<rank>_0.distcp``) and ``.metadata``: the model and AdamW state, each rank
  writing its own shard (resharding on load: a run may resume on another number of processes);
* ``trainer_state.json``: step, schedule position, data position, recipe, world size;
* ``config.json``: the model configuration (what :func:`export_checkpoint` builds);
* ``rng_rank<r>.safetensors``: each rank's torch RNG state (the trainer draws its masks from
  explicit seeded generators, so this is for user code that uses the global RNG).

It is written under a temporary name and renamed when every rank has finished, so a directory
named ``step_*`` is always complete; a run killed while saving leaves a ``.tmp`` that is ignored
and cleaned. Nothing is pickled: DCP stores tensors; the rest is JSON and safetensors.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from safetensors.torch import load_file, save_file
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from .._files import replacing_dir, write_text_atomic

_STEP_DIR = re.compile(r"^step_(\d{8})$")
TRAINER_STATE = "trainer_state.json"


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / "checkpoints" / f"step_{step:08d}"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / TRAINER_STATE).is_file() and (p / ".metadata").is_file()]
    return sorted(found)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


def save_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, trainer_state: dict[str, Any], keep: int | None = None
) -> Path:
    """Save a sharded checkpoint (collective: every rank calls it). Returns ``path``."""
    path = Path(path)
    rank = _rank()
    temporary = path.with_name(path.name + ".tmp")
    if rank == 0:
        shutil.rmtree(temporary, ignore_errors=True)  # left by a run killed while saving
        temporary.mkdir(parents=True)
    _barrier()
    model_state, optimizer_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=str(temporary))
    save_file({"torch": torch.get_rng_state()}, str(temporary / f"rng_rank{rank}.safetensors"))
    _barrier()
    if rank == 0:
        write_text_atomic(temporary / TRAINER_STATE, json.dumps(trainer_state, indent=2) + "\n")
        config = getattr(model, "config", None)
        if config is not None:
            config.to_json_file(str(temporary / "config.json"))
        if path.exists():  # the same step saved again (a resumed run re-saving): replace it
            shutil.rmtree(path)
        temporary.rename(path)
        if keep is not None:
            for old in list_checkpoints(path.parent.parent)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return path


def read_trainer_state(path: str | Path) -> dict[str, Any]:
    state_file = Path(path) / TRAINER_STATE
    if not state_file.is_file():
        raise FileNotFoundError(f"{path} is not a complete training checkpoint (no {TRAINER_STATE})")
    return json.loads(state_file.read_text())


def load_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Load model and optimiser state in place (collective); returns the trainer state."""
    path = Path(path)
    trainer_state = read_trainer_state(path)
    model_state, optimizer_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optimizer": optimizer_state}
    dcp.load(state, checkpoint_id=str(path))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
    rng_file = path / f"rng_rank{_rank()}.safetensors"
    world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    if rng_file.is_file() and trainer_state.get("world_size") == world_size:
        torch.set_rng_state(load_file(str(rng_file))["torch"])
    return trainer_state


def gather_full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded model state on CPU, on rank 0 (empty elsewhere); collective."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)


def save_pretrained_from_state(model_class: type, config, state_dict: dict[str, torch.Tensor], output_dir: str | Path) -> Path:
    """``save_pretrained`` of a model rebuilt from ``config`` and ``state_dict``, atomically.

    The model is built on the meta device and takes the tensors as they are (no second copy).
    Every key must match, else the error names the missing and unexpected ones.
    """
    from ..processing import video_processor_for_config

    with torch.device("meta"):
        model = model_class(config)
    result = model.load_state_dict(state_dict, strict=False, assign=True)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"the checkpoint does not match {model_class.__name__}: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    output_dir = Path(output_dir)
    with replacing_dir(output_dir) as staging:
        model.save_pretrained(staging)
        # The pipelines read the preprocessing from the model directory.
        video_processor_for_config(config).save_pretrained(staging)
    return output_dir


def pretraining_model_class(config) -> type:
    """The pretraining model of a config's family (the registry's ``pretraining_model``)."""
    from ..registry import family_of

    try:
        family = family_of(config)
    except KeyError:
        raise TypeError(f"no pretraining model for {type(config).__name__}") from None
    if family.pretraining_model is None:
        raise TypeError(f"{family.display_name} has no pretraining model")
    return family.load("pretraining_model")


def export_checkpoint(checkpoint: str | Path, output_dir: str | Path) -> Path:
    """Turn a sharded training checkpoint into a ``save_pretrained`` directory (one process).

    Runs without a process group (DCP reads all shards); ``from_pretrained`` of the result gives
    the pretraining model (``FourDSForPreTraining`` / ``MooGForNextFramePrediction``), and
    ``FourDSModel`` / ``MooGModel.from_pretrained`` its backbone.

    Args:
        checkpoint: a ``step_*`` directory, or a run's output directory (its latest checkpoint).
        output_dir: where to write (replaced if it exists).
    """
    from transformers import AutoConfig  # our configs are registered: fourd_hub is imported

    checkpoint = Path(checkpoint)
    if not (checkpoint / TRAINER_STATE).is_file():
        latest = latest_checkpoint(checkpoint)
        if latest is None:
            raise FileNotFoundError(f"{checkpoint} is neither a training checkpoint (step_*) nor a run directory with one")
        checkpoint = latest
    config = AutoConfig.from_pretrained(checkpoint)
    model_class = pretraining_model_class(config)
    with torch.device("meta"):
        skeleton = model_class(config)
    state = {"model": {name: torch.empty_like(t, device="cpu") for name, t in skeleton.state_dict().items()}}
    with warnings.catch_warnings():
        # One process without a process group is exactly the intent here.
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.load(state, checkpoint_id=str(checkpoint))
    return save_pretrained_from_state(model_class, config, state["model"], output_dir)
