"""A deterministic, sharded, resumable stream of collated batches (base class of the training data).

Pretraining reads an unbounded stream of samples. Three properties make runs reproducible and
restartable, whatever the hardware layout:

* **Content depends only on ``(seed, index)``.** Global sample ``index`` is made by
  :meth:`BatchStream.make_sample` from ``numpy.random.default_rng([seed, index])`` and nothing else
  (no global RNG, no process or worker state), so the same index gives the same sample in any
  process, with any number of DataLoader workers.
* **Sharded by construction.** Batch ``k`` of rank ``r`` (out of ``world_size``) holds the global
  samples ``(k * world_size + r) * batch_size + i`` for ``i < batch_size``: ranks read disjoint
  samples, and training step ``k`` of the whole job consumes the contiguous block
  ``[k * world_size * batch_size, (k + 1) * world_size * batch_size)``.
* **Resumable from a position.** Resuming after ``n`` consumed batches is a stream with
  ``start_batch=n`` (or :meth:`BatchStream.set_position`); no data is replayed to get there.

Example:
    >>> loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=4)  # doctest: +SKIP
    >>> for step, batch in enumerate(loader, start=stream.start_batch):  # doctest: +SKIP
    ...     ...  # batch["sample_index"]: (batch_size,) int64
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["BatchStream"]

# Key the stream adds to every batch; a subclass's samples may not use it.
SAMPLE_INDEX_KEY = "sample_index"
_STATE_KEYS = ("seed", "batch_size", "rank", "world_size", "start_batch")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_int(name: str, value: Any, minimum: int) -> int:
    if not _is_int(value) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def _distributed_rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised default process group, else ``(0, 1)``."""
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        return distributed.get_rank(), distributed.get_world_size()
    return 0, 1


class BatchStream(torch.utils.data.IterableDataset):
    """Deterministic, sharded, resumable stream of collated batches.

    Batch ``k`` of rank ``r`` holds the global samples ``(k * world_size + r) * batch_size + i``,
    ``i < batch_size``. Each sample is made by ``make_sample(index, rng)`` with
    ``rng = np.random.default_rng([seed, index])``, so its content depends only on ``(seed, index)``:
    not on the number of workers, not on the process.

    Use it with ``DataLoader(stream, batch_size=None, num_workers=W)`` (``batch_size=None``: the
    stream yields whole batches; the DataLoader must not batch them again). Worker ``w`` yields the
    batches ``k = start_batch + w + W * m`` (``m = 0, 1, ...``), so torch's in-order round-robin over
    workers gives exactly ``k = start_batch, start_batch + 1, ...`` in the main process, whatever
    ``W``. Resuming is a new stream (or :meth:`set_position`) with ``start_batch`` = the number of
    batches already consumed.

    Subclasses implement :meth:`make_sample`.

    Args:
        batch_size: Samples per batch (per rank).
        seed: Non-negative integer seed of the whole stream.
        rank: This process's rank; default: ``torch.distributed``'s if a process group is initialised,
            else 0.
        world_size: Number of ranks; default: ``torch.distributed``'s if initialised, else 1.
        start_batch: Index ``k`` of the first batch yielded (batches already consumed when resuming).
        num_batches: Total number of batches of this rank's stream (iteration stops before batch
            ``num_batches``, also when resuming from ``start_batch``); ``None`` for an infinite stream.

    Raises:
        ValueError: An argument is not a valid integer, or ``rank`` is not in ``[0, world_size)``.
    """

    def __init__(
        self,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        start_batch: int = 0,
        num_batches: int | None = None,
    ) -> None:
        super().__init__()
        self.batch_size = _check_int("batch_size", batch_size, 1)
        # SeedSequence only takes non-negative entropy.
        self.seed = _check_int("seed", seed, 0)
        default_rank, default_world_size = _distributed_rank_and_world_size()
        self.world_size = _check_int("world_size", default_world_size if world_size is None else world_size, 1)
        self.rank = _check_int("rank", default_rank if rank is None else rank, 0)
        if self.rank >= self.world_size:
            raise ValueError(
                f"rank must be in [0, world_size), got rank={self.rank} with world_size={self.world_size}"
            )
        self.num_batches = None if num_batches is None else _check_int("num_batches", num_batches, 0)
        self.start_batch = _check_int("start_batch", start_batch, 0)

    # ----------------------------------------------------------------------------------------------
    # To implement
    # ----------------------------------------------------------------------------------------------

    def make_sample(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Make global sample ``index``.

        Args:
            index: Global sample index (>= 0).
            rng: ``np.random.default_rng([seed, index])``: the only source of randomness allowed,
                so that the sample depends on ``(seed, index)`` only.

        Returns:
            Tensors by name; every sample must have the same keys and, per key, the same shape and
            dtype (they are stacked along a new first dimension).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement make_sample(index, rng)")

    # ----------------------------------------------------------------------------------------------
    # Random access
    # ----------------------------------------------------------------------------------------------

    def sample_rng(self, index: int) -> np.random.Generator:
        """The generator :meth:`make_sample` receives for global sample ``index``."""
        return np.random.default_rng([self.seed, _check_int("index", index, 0)])

    def sample(self, index: int) -> dict[str, torch.Tensor]:
        """Global sample ``index`` (uncollated), exactly as it appears in its batch."""
        index = _check_int("index", index, 0)
        return self.make_sample(index, self.sample_rng(index))

    def batch_indices(self, k: int) -> np.ndarray:
        """``(batch_size,)`` ``int64`` global sample indices of batch ``k`` of this rank."""
        k = _check_int("k", k, 0)
        first = (k * self.world_size + self.rank) * self.batch_size
        return np.arange(first, first + self.batch_size, dtype=np.int64)

    def batch(self, k: int) -> dict[str, torch.Tensor]:
        """The ``k``-th batch of this rank.

        Args:
            k: Batch index (>= 0 and < ``num_batches`` when that is set).

        Returns:
            Each sample key stacked to ``(batch_size, *shape)``, plus ``"sample_index"``:
            ``(batch_size,)`` ``int64`` global sample indices.

        Raises:
            IndexError: ``k >= num_batches``.
            ValueError: Samples disagree on their keys or on a key's shape or dtype.
            TypeError: A sample value is not a tensor (or numpy array / number).
        """
        k = _check_int("k", k, 0)
        if self.num_batches is not None and k >= self.num_batches:
            raise IndexError(f"batch {k} is past the end of this stream (num_batches={self.num_batches})")
        indices = self.batch_indices(k)
        samples = [self._checked_sample(int(index)) for index in indices]
        keys = list(samples[0])
        columns: dict[str, torch.Tensor] = {}
        for position, sample in enumerate(samples[1:], start=1):
            differing = sorted(set(keys) ^ set(sample))
            if differing:
                raise ValueError(
                    f"{type(self).__name__}.make_sample returned different keys for sample {indices[0]} "
                    f"({sorted(keys)}) and sample {indices[position]} ({sorted(sample)}): key "
                    f"{differing[0]!r} is only in one; every sample must have the same keys"
                )
        for key in keys:
            values = [sample[key] for sample in samples]
            for position, value in enumerate(values[1:], start=1):
                if value.shape != values[0].shape or value.dtype != values[0].dtype:
                    raise ValueError(
                        f"cannot stack key {key!r}: sample {indices[0]} has shape {tuple(values[0].shape)} "
                        f"{values[0].dtype} but sample {indices[position]} has {tuple(value.shape)} "
                        f"{value.dtype}; make_sample must return the same shape and dtype per key"
                    )
            columns[key] = torch.stack(values)
        columns[SAMPLE_INDEX_KEY] = torch.from_numpy(indices)
        return columns

    def _checked_sample(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.sample(index)
        if not isinstance(sample, dict) or not sample:
            raise TypeError(
                f"{type(self).__name__}.make_sample must return a non-empty dict of tensors, got "
                f"{type(sample).__name__}"
            )
        if SAMPLE_INDEX_KEY in sample:
            raise ValueError(f"make_sample may not return the key {SAMPLE_INDEX_KEY!r}: the stream adds it")
        checked = {}
        for key, value in sample.items():
            if isinstance(value, (np.ndarray, np.generic, int, float, bool)):
                value = torch.as_tensor(value)
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"make_sample returned {type(value).__name__} for key {key!r}; return torch tensors "
                    f"(or numpy arrays / numbers)"
                )
            checked[key] = value
        return checked

    # ----------------------------------------------------------------------------------------------
    # Iteration and position
    # ----------------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        """Yield this rank's batches from ``start_batch`` on (this worker's share inside a DataLoader)."""
        worker = torch.utils.data.get_worker_info()
        worker_id, num_workers = (0, 1) if worker is None else (worker.id, worker.num_workers)
        k = self.start_batch + worker_id
        while self.num_batches is None or k < self.num_batches:
            yield self.batch(k)
            k += num_workers

    def __len__(self) -> int:
        """Batches left from ``start_batch`` to ``num_batches``.

        Raises:
            TypeError: The stream is infinite (``num_batches=None``); ``len()``'s protocol for "no
                length", which the DataLoader and the HF Trainer check for.
        """
        if self.num_batches is None:
            raise TypeError(f"{type(self).__name__} is infinite (num_batches=None) and has no length")
        return max(self.num_batches - self.start_batch, 0)

    def set_position(self, start_batch: int) -> None:
        """Make the next iteration start at batch ``start_batch`` (the number of batches consumed).

        Affects iterators created afterwards (a DataLoader copies the stream into its workers when
        its iterator starts).
        """
        self.start_batch = _check_int("start_batch", start_batch, 0)

    def state_dict(self, batches_consumed: int = 0) -> dict[str, int]:
        """The stream's position, to save with a checkpoint (plain integers: JSON-friendly).

        The stream cannot see how far a DataLoader (which prefetches in its workers) has been
        consumed, so the training loop passes the number of batches it consumed since it started
        iterating from ``start_batch``.

        Args:
            batches_consumed: Batches the training loop consumed since the stream's ``start_batch``.

        Returns:
            ``{"seed", "batch_size", "rank", "world_size", "start_batch"}`` with ``start_batch`` =
            ``self.start_batch + batches_consumed``, the batch to resume from.
        """
        consumed = _check_int("batches_consumed", batches_consumed, 0)
        return {
            "seed": self.seed,
            "batch_size": self.batch_size,
            "rank": self.rank,
            "world_size": self.world_size,
            "start_batch": self.start_batch + consumed,
        }

    def load_state_dict(self, state: dict) -> None:
        """Resume from :meth:`state_dict`'s output: checks the stream is the same, sets ``start_batch``.

        ``rank`` is not checked: every rank is at the same batch index, so any rank's state resumes
        any rank.

        Raises:
            KeyError: A key is missing from ``state``.
            ValueError: ``seed``, ``batch_size`` or ``world_size`` differ from this stream's (the
                samples of batch ``k`` would not be the ones the checkpoint meant).
        """
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            raise KeyError(f"stream state is missing {missing}; pass the dict returned by state_dict()")
        for key, why in (
            ("seed", "a different seed gives different samples"),
            ("batch_size", "resuming with another batch size changes which samples batch k holds"),
            ("world_size", "resuming with another world size changes which samples each rank's batch k holds"),
        ):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"cannot resume: the saved stream has {key}={state[key]!r} but this one has "
                    f"{key}={getattr(self, key)!r} ({why}); construct the stream with {key}={state[key]!r}"
                )
        self.set_position(state["start_batch"])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(batch_size={self.batch_size}, seed={self.seed}, rank={self.rank}, "
            f"world_size={self.world_size}, start_batch={self.start_batch}, num_batches={self.num_batches})"
        )
