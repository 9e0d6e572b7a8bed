"""timm-style names for the catalog: :func:`list_models` and :func:`create_model` (and ``hubconf.py``).

``fourd_hub.list_models("4ds-*")`` lists catalog names as ``timm.list_models`` does;
``fourd_hub.create_model("4ds-b-dist-e", pretrained=True)`` loads the released weights (the same
path as ``fourd_hub.from_pretrained``), ``pretrained=False`` builds the model the entry describes
with fresh weights (any size of Table 1, with or without released weights). ``torch.hub.load`` of
this repository calls the same function (``hubconf.py``).
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Any

from .catalog import CATALOG, CatalogEntry
from .hub.settings import catalog_entry_for
from .registry import get_family
from .tasks import get_task

__all__ = ["create_model", "list_models"]


def list_models(pattern: str = "*", *, pretrained: bool = False, family: str | None = None, task: str | None = None) -> list[str]:
    """Catalog names matching a shell-style ``pattern`` (case-insensitive), sorted.

    Args:
        pattern: e.g. ``"4ds-*"``, ``"*tracking*"``; ``"*"`` for all.
        pretrained: only entries with released weights.
        family: only this family (``"fourds"``, ``"moog"``).
        task: only models running this task (any spelling of :data:`fourd_hub.tasks.TASKS`).
    """
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a string such as '4ds-*', got {type(pattern).__name__}")
    wanted_task = get_task(task).name if task is not None else None
    if family is not None:
        get_family(family)  # an unknown family is an error, not an empty list
    names = []
    for name, entry in CATALOG.items():
        if not fnmatch.fnmatch(name.lower(), pattern.lower()):
            continue
        if (pretrained and not entry.has_weights) or (family is not None and entry.family != family):
            continue
        if wanted_task is not None and _task_of(entry) != wanted_task:
            continue
        names.append(name)
    return sorted(names)


def _task_of(entry: CatalogEntry) -> str | None:
    spec = get_family(entry.family)
    return next((task for task, path in spec.task_models.items() if path.rpartition(".")[2] == entry.architecture), None)


def _entry(name: str) -> CatalogEntry:
    entry = catalog_entry_for(name) if isinstance(name, str) else None
    if entry is None:
        close = difflib.get_close_matches(str(name), list(CATALOG), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"{name!r} is not a catalog name{hint} (fourd_hub.list_models() lists them)")
    return entry


def create_model(name: str, pretrained: bool = False, **kwargs: Any):
    """The model a catalog name describes, as ``timm.create_model``.

    Args:
        name: a catalog name (:func:`list_models`).
        pretrained: load the released weights (downloaded and converted once, as
            ``from_pretrained``); ``False`` builds the model with fresh weights.
        **kwargs: with ``pretrained=True``, ``from_pretrained`` keywords (``dtype``, ``cache_dir``,
            ``backbone``, ...); with ``pretrained=False``, config fields to change
            (``num_hidden_layers=2``, ``num_labels=10``).

    Raises:
        ValueError: an unknown name (with the closest ones), or ``pretrained=True`` for an entry
            without released weights.
    """
    entry = _entry(name)
    spec = get_family(entry.family)
    if pretrained:
        if not entry.has_weights:
            raise ValueError(
                f"{entry.name} has no released weights (a Table 1 size); create_model({entry.name!r}, pretrained=False) "
                "builds it with fresh weights"
            )
        from .modeling_utils import from_pretrained

        return from_pretrained(entry.name, use_safetensors=True, **kwargs)
    config_class = spec.load("config_class")
    config = config_class.from_catalog(entry, **kwargs)
    # A fresh model holds all of its weights, also for an entry that is a standalone head.
    config.use_pretrained_backbone, config.backbone = False, None
    model_class = spec.model_class(entry.architecture)
    return model_class(config)
