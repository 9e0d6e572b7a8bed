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
and cleaned, and a save that fails (disk full, any ``OSError``) removes its ``.tmp`` before it
raises. DCP stores tensors (and its ``.metadata`` index, which DCP itself pickles); the rest is
JSON and safetensors.

A checkpoint cut short after it was written (a copy interrupted, a file system that lost data) is
found before anything is loaded from it: :func:`verify_checkpoint` checks that the index reads and
that every shard holds the bytes the index points to, and raises
:class:`~fourd_hub.conversion.CheckpointError` naming the directory.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from .._files import replacing_dir, write_text_atomic
from ..conversion.npz import CheckpointError
from .parallel import max_over_ranks

# errno values that mean "no room left to write": the file system is full or the user's quota is.
_DISK_FULL = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)

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


def _os_error(error: BaseException) -> OSError | None:
    """The ``OSError`` behind ``error``: itself, its cause / context, or, for DCP's
    ``CheckpointException`` (which wraps every rank's failure), the first rank's."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError):
            return current
        if isinstance(current, CheckpointException):
            pending.extend(failure[0] for _, failure in sorted(current.failures.items()))
        pending.extend([current.__cause__, current.__context__])
    return None


def _failure_code(error: BaseException | None) -> int:
    """What a rank tells the others about its part of a save: 0 (done), the errno of a full disk,
    or 1 (another failure). The largest code wins, so any full disk is reported as one."""
    if error is None:
        return 0
    cause = _os_error(error)
    return cause.errno if cause is not None and cause.errno in _DISK_FULL else 1


def _save_failed(path: Path, error: BaseException | None, code: int) -> BaseException:
    """The error a failed save raises on this rank, given the ranks' largest failure ``code``:
    one line saying "disk full" with the path when any rank ran out of room."""
    cause = _os_error(error) if error is not None else None
    if code in _DISK_FULL:
        what = cause.strerror if cause is not None and cause.errno == code and cause.strerror else os.strerror(code)
        return OSError(
            code,
            f"disk full: could not save checkpoint {path} ({what}); its partial {path.name}.tmp was removed and "
            f"earlier checkpoints are kept: free space in {path.parent} (or lower keep_checkpoints) and run again "
            "to resume from the latest one",
        )
    if error is None:  # this rank's part succeeded; another rank's failed
        return RuntimeError(f"could not save checkpoint {path}: another rank failed to write its part (see its error)")
    # DCP's CheckpointException prints every rank's traceback: the OSError itself says more, in a line.
    return cause if cause is not None else error


def save_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, trainer_state: dict[str, Any], keep: int | None = None
) -> Path:
    """Save a sharded checkpoint (collective: every rank calls it). Returns ``path``.

    The files go to ``<path>.tmp``, renamed to ``path`` once every rank has written its part.

    Raises:
        OSError: writing failed. The ``.tmp`` directory is removed first, on every failure; when the
            disk (or quota) is full (``ENOSPC`` / ``EDQUOT``) on any rank, every rank raises an
            ``OSError`` with that errno whose one-line message says "disk full" and names ``path``.
        RuntimeError: another rank failed otherwise (that rank raises its own error).
    """
    path = Path(path)
    rank = _rank()
    temporary = path.with_name(path.name + ".tmp")

    def check(error: BaseException | None) -> None:
        # Collective: every rank learns whether any failed, so none is left waiting at a barrier.
        code = max_over_ranks(_failure_code(error))
        if code:
            _clean_failed_save(temporary, rank)
            raise _save_failed(path, error, code)

    error: BaseException | None = None
    if rank == 0:
        try:
            shutil.rmtree(temporary, ignore_errors=True)  # left by a run killed while saving
            temporary.mkdir(parents=True)
        except OSError as caught:
            error = caught
    check(error)
    model_state, optimizer_state = get_state_dict(model, optimizer)
    try:
        dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=str(temporary))
        # Serialised in memory and written by Python: a full disk is then an OSError with its errno
        # (safetensors' own file writer reports it as a SafetensorError).
        (temporary / f"rng_rank{rank}.safetensors").write_bytes(save_safetensors({"torch": torch.get_rng_state()}))
    except (OSError, CheckpointException) as caught:  # CheckpointException is a BaseException
        error = caught
    check(error)
    if rank == 0:
        try:
            write_text_atomic(temporary / TRAINER_STATE, json.dumps(trainer_state, indent=2) + "\n")
            config = getattr(model, "config", None)
            if config is not None:
                config.to_json_file(str(temporary / "config.json"))
            if path.exists():  # the same step saved again (a resumed run re-saving): replace it
                shutil.rmtree(path)
            temporary.rename(path)
        except OSError as caught:
            error = caught
    check(error)
    if rank == 0 and keep is not None:
        for old in list_checkpoints(path.parent.parent)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return path


def _clean_failed_save(temporary: Path, rank: int) -> None:
    # Every rank has reached this point (after max_over_ranks), so no one still writes into it.
    if rank == 0:
        shutil.rmtree(temporary, ignore_errors=True)
    _barrier()


def _corrupt(path: Path, detail: str) -> CheckpointError:
    """The one-line error of a damaged checkpoint: which, what is wrong, and what to do."""
    earlier = sorted(
        p.name for p in path.parent.iterdir()
        if _STEP_DIR.match(p.name) and p.name < path.name and (p / TRAINER_STATE).is_file() and (p / ".metadata").is_file()
    ) if path.parent.is_dir() else []
    if earlier:
        hint = (f"use the earlier {earlier[-1]}: delete {path} (a run resumes from its latest complete checkpoint) "
                f"or export {path.parent / earlier[-1]}")
    else:
        hint = f"there is no earlier checkpoint: delete {path} and start the run again"
    return CheckpointError(f"checkpoint {path} is truncated or corrupt: {detail}; {hint}")


def verify_checkpoint(path: str | Path) -> None:
    """Check that a checkpoint directory is whole, without loading any tensor.

    Reads ``trainer_state.json``, ``config.json`` (when there) and DCP's ``.metadata`` index, and
    checks that every shard file the index names exists and is at least as long as the last byte
    the index points into, which finds files cut short or emptied after they were written.

    Args:
        path: a ``step_*`` directory.

    Raises:
        FileNotFoundError: ``path`` has no ``trainer_state.json`` (not a training checkpoint).
        CheckpointError: (a ``ValueError``) a file is truncated, empty or unreadable; the one-line
            message names the checkpoint directory and says to delete it and use an earlier ``step_*``.
    """
    path = Path(path)
    read_trainer_state(path)
    config_file = path / "config.json"
    if config_file.is_file():
        try:
            json.loads(config_file.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise _corrupt(path, f"config.json is not valid JSON ({error})") from None
    metadata_file = path / ".metadata"
    if not metadata_file.is_file():
        raise _corrupt(path, "its DCP index .metadata is missing")
    try:
        metadata = dcp.FileSystemReader(str(path)).read_metadata()
        storage = metadata.storage_data
        ends: dict[str, int] = {}
        for info in storage.values():
            ends[info.relative_path] = max(ends.get(info.relative_path, 0), int(info.offset) + int(info.length))
    except (EOFError, pickle.UnpicklingError, AttributeError, TypeError, ValueError, ImportError, IndexError, KeyError,
            OverflowError, MemoryError) as error:
        # pickle raises any of these on cut-short or garbled bytes.
        size = metadata_file.stat().st_size
        raise _corrupt(path, f"its DCP index .metadata ({size} bytes) cannot be read ({type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else 'no detail'})") from None
    for name, end in sorted(ends.items()):
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise _corrupt(path, f"its DCP index names a shard outside the directory ({name!r})")
        shard = path / name
        if not shard.is_file():
            raise _corrupt(path, f"the shard {name} is missing")
        size = shard.stat().st_size
        if size < end:
            raise _corrupt(path, f"the shard {name} has {size} bytes, the index needs {end}")


def read_trainer_state(path: str | Path) -> dict[str, Any]:
    """The ``trainer_state.json`` of a checkpoint.

    Raises:
        FileNotFoundError: there is none (not a complete training checkpoint).
        CheckpointError: it is not a JSON object (truncated or corrupt).
    """
    path = Path(path)
    state_file = path / TRAINER_STATE
    if not state_file.is_file():
        raise FileNotFoundError(f"{path} is not a complete training checkpoint (no {TRAINER_STATE})")
    try:
        state = json.loads(state_file.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise _corrupt(path, f"{TRAINER_STATE} is not valid JSON ({error})") from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise _corrupt(path, f"{TRAINER_STATE} is not a trainer state (no integer 'step')")
    return state


def _load_dcp(state: dict[str, Any], path: Path) -> None:
    """``dcp.load`` of a verified checkpoint; damage the size checks cannot see (bytes garbled in
    place) comes out as the same one-line :class:`CheckpointError`."""
    try:
        dcp.load(state, checkpoint_id=str(path))
    except (CheckpointException, RuntimeError, OSError, EOFError, pickle.UnpicklingError) as error:
        cause = _os_error(error) or error
        if isinstance(error, CheckpointException):
            failures = [failure[0] for _, failure in sorted(error.failures.items())]
            cause = failures[0] if failures else error
        lines = str(cause).strip().splitlines()
        detail = f"{type(cause).__name__}: {lines[-1] if lines else 'no detail'}"
        raise _corrupt(path, f"DCP cannot read it ({detail})") from None


def load_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Load model and optimiser state in place (collective); returns the trainer state.

    Raises:
        CheckpointError: the checkpoint is truncated or corrupt (see :func:`verify_checkpoint`);
            nothing has been loaded into ``model`` / ``optimizer`` when it is found by the checks.
    """
    path = Path(path)
    verify_checkpoint(path)
    trainer_state = read_trainer_state(path)
    model_state, optimizer_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optimizer": optimizer_state}
    _load_dcp(state, path)
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
    rng_file = path / f"rng_rank{_rank()}.safetensors"
    world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    if rng_file.is_file() and trainer_state.get("world_size") == world_size:
        try:
            rng_state = load_file(str(rng_file))["torch"]
        except Exception as error:  # safetensors raises its own SafetensorError (an Exception) on bad bytes
            raise _corrupt(path, f"{rng_file.name} cannot be read ({error})") from None
        torch.set_rng_state(rng_state)
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
        output_dir: where to write (replaced if it exists; left as it was on any error).

    Raises:
        FileNotFoundError: ``checkpoint`` is neither a checkpoint nor a run directory with one.
        CheckpointError: (a ``ValueError``) the checkpoint is truncated or corrupt; the one-line
            message names it and says to use an earlier ``step_*`` (see :func:`verify_checkpoint`).
    """
    from transformers import AutoConfig  # our configs are registered: fourd_hub is imported

    checkpoint = Path(checkpoint)
    if not (checkpoint / TRAINER_STATE).is_file():
        latest = latest_checkpoint(checkpoint)
        if latest is None:
            raise FileNotFoundError(f"{checkpoint} is neither a training checkpoint (step_*) nor a run directory with one")
        checkpoint = latest
    verify_checkpoint(checkpoint)
    config = AutoConfig.from_pretrained(checkpoint)
    model_class = pretraining_model_class(config)
    with torch.device("meta"):
        skeleton = model_class(config)
    state = {"model": {name: torch.empty_like(t, device="cpu") for name, t in skeleton.state_dict().items()}}
    with warnings.catch_warnings():
        # One process without a process group is exactly the intent here.
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        _load_dcp(state, checkpoint)
    return save_pretrained_from_state(model_class, config, state["model"], output_dir)
