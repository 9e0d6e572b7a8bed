"""The one loader: read a model directory (or what a name resolves to) and decide which class loads it how.

Every load of a fourd_hub model goes through :func:`plan_load`: the model classes'
``from_pretrained``, :func:`fourd_hub.from_pretrained`, the pipelines (``task=``) and the CLI. It
resolves the name (:func:`fourd_hub.hub.resolve_model_dir`), reads ``config.json`` strictly, finds
the family in the registry by ``model_type`` and picks the class:

- the class asked for (``FourDSForDepthEstimation.from_pretrained``), which must be of the
  directory's family (transformers' rule: a base-model class loads the backbone of a task
  checkpoint, a task class on a backbone checkpoint gets a freshly initialised head);
- else the family's class for ``task``;
- else the class the directory was saved as (``architectures``).

A **standalone head** (the released MooG tracking heads) is an ordinary directory whose
``config.json`` names its architecture and, with ``use_pretrained_backbone: true``, the ``backbone``
it reads (a catalog name, directory or repo id: transformers' backbone-config convention); its
weights are the head's alone (``head.*``). Loading it loads the backbone the same way, then the
head. Directories written before this format (``readout_head.json``) are refused with a message
saying how to re-convert them.

Torch-free: classes are imported through the registry when the plan names them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog import CatalogEntry
from .hub.model_dir import read_model_config
from .hub.resolve import resolve_model_dir
from .hub.settings import catalog_entry_for
from .registry import FamilySpec, get_family
from .tasks import get_task

__all__ = ["LoadPlan", "plan_load", "read_model_config"]


@dataclass
class LoadPlan:
    """What :func:`plan_load` decided.

    Attributes:
        directory: the local directory holding the files.
        family: the family of the checkpoint.
        model_class: the class to build.
        saved_class: the class the directory was saved as.
        config: ``config.json`` as a dict.
        entry: the catalog entry the name referred to, if any.
        backbone: for a standalone head: the backbone to load first (a model object or a name).
    """

    directory: Path
    family: FamilySpec
    model_class: type
    saved_class: type
    config: dict[str, Any]
    entry: CatalogEntry | None = None
    backbone: Any = None

    @property
    def is_head_only(self) -> bool:
        return bool(self.config.get("use_pretrained_backbone"))


def _fourd_family_of_class(cls: type) -> FamilySpec | None:
    model_type = getattr(getattr(cls, "config_class", None), "model_type", None)
    try:
        return get_family(model_type)
    except KeyError:
        return None


def plan_load(
    name_or_path: str | os.PathLike,
    *,
    requested: type | None = None,
    task: str | None = None,
    backbone: Any = None,
    require_task_weights: bool = False,
    hub_kwargs: dict[str, Any] | None = None,
) -> LoadPlan:
    """Resolve ``name_or_path`` and decide which class loads it (see the module docstring).

    Args:
        name_or_path: a catalog name, a directory or a Hub repo id.
        requested: the class whose ``from_pretrained`` was called (``None``: the saved class).
        task: instead of ``requested``: the family's class for this task (any spelling).
        backbone: for standalone heads: the backbone (model or name) instead of the one the
            directory names.
        require_task_weights: refuse a directory without trained weights for ``task`` (the
            pipelines: a depth pipeline never runs a randomly initialised head).
        hub_kwargs: file-finding keywords (``cache_dir``, ``revision``, ...).

    Raises:
        FileNotFoundError, ValueError, TypeError: with what is wrong and how to load it instead.
    """
    entry = catalog_entry_for(name_or_path)
    directory = resolve_model_dir(entry.name if entry is not None else name_or_path, **(hub_kwargs or {}))
    values, family, saved_name = read_model_config(directory)
    saved_class = family.model_class(saved_name)
    if saved_class is None:
        raise ValueError(
            f"{directory} was saved as {saved_name!r}, which is not a {family.display_name} model class "
            f"({', '.join(sorted(family.model_classes()))})"
        )
    if requested is not None:
        requested_family = _fourd_family_of_class(requested)
        if requested_family is not None and requested_family.name != family.name:
            raise ValueError(
                f"{entry.name if entry else directory} holds a {family.display_name} model ({saved_name}) and "
                f"{requested.__name__} is a {requested_family.display_name} model; load it with {saved_name}.from_pretrained(...) "
                "or fourd_hub.from_pretrained(...)"
            )
        model_class = requested
    elif task is not None:
        spec = get_task(task)
        model_class = family.task_model(spec.name)
        if require_task_weights:
            _check_task_weights(spec.name, family, model_class, saved_class, directory)
    else:
        model_class = saved_class
    plan = LoadPlan(directory, family, model_class, saved_class, values, entry)
    if plan.is_head_only:
        plan.backbone = backbone if backbone is not None else (values.get("backbone") or (entry.base_model if entry else None))
        if plan.backbone is None:
            raise ValueError(
                f"{directory} is a standalone readout head without a backbone in its config.json; pass the backbone it reads: "
                f"{saved_name}.from_pretrained(..., backbone='<catalog name or converted backbone directory>')"
            )
        base = family.load("base_model")
        if model_class is not base and not issubclass(model_class, saved_class):
            raise ValueError(
                f"{entry.name if entry else directory} is a standalone {saved_name} head; load it with "
                f"{saved_name}.from_pretrained(...) or fourd_hub.from_pretrained(...)"
            )
    elif backbone is not None:
        raise TypeError(f"backbone= is only for standalone readout heads; {name_or_path} is a full model")
    return plan


def _check_task_weights(task: str, family: FamilySpec, wanted: type, saved: type, directory: Path) -> None:
    """A pipeline runs trained weights only: the directory must have been saved for ``task``."""
    base = family.load("base_model")
    if wanted is base:
        return  # features: every checkpoint of the family holds its backbone
    if issubclass(saved, wanted) or (saved is base and getattr(wanted, "loads_from_base_model", False)):
        return
    raise ValueError(
        f"{directory} holds a {saved.__name__}, not a {wanted.__name__}: it has no trained weights for {task}"
    )
