"""A card's YAML front matter: writing it (catalog and custom cards) and reading it back (metadata, provenance).

The front matter holds what the Hub reads (library, license, tags, pipeline tag, base model) and
a ``fourd_hub:`` mapping with the model's facts and, after a conversion, its
:class:`~fourd_hub.provenance.ConversionProvenance`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from ..catalog import CATALOG, CODE_LICENSE, DEFAULT_HUB_ORG, CatalogEntry
from ..provenance import ConversionProvenance
from .family import CardTask

__all__ = ["card_metadata", "catalog_metadata", "custom_metadata", "front_matter", "hub_repo", "input_metadata", "read_provenance"]

_FRONT_MATTER = re.compile(r"\A---\r?\n(.*?)^---[ \t]*\r?$", re.DOTALL | re.MULTILINE)


def hub_repo(name: str) -> str:
    """A catalog name as its hub repo id; anything else (a repo id, a path) unchanged."""
    entry = CATALOG.get(name) or CATALOG.get(name.lower())
    return entry.hub_repo_id(DEFAULT_HUB_ORG) if entry is not None else name


def front_matter(metadata: dict) -> str:
    """``metadata`` as the YAML block between ``---`` lines that opens a card."""
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---\n"


def input_metadata(num_frames: int | None, image_size: Any) -> dict:
    """The ``fourd_hub.input`` mapping: clip length and size where known, and the value range."""
    values: dict[str, Any] = {}
    if num_frames is not None:
        values["num_frames"] = int(num_frames)
    if image_size is not None:
        values["image_size"] = [int(s) for s in image_size]
    values["value_range"] = [0.0, 1.0]
    return values


def _hub_fields(card: Any, task: CardTask, license: str, base_model: str | None, tags: list[str]) -> dict[str, Any]:
    """The fields the Hub reads: library, license, tags (family, task, paper, then ``tags``), pipeline tag, base model."""
    all_tags = ["fourd_hub", "video", card.family_tag, task.tag, card.PAPER.tag, *tags]
    metadata: dict[str, Any] = {"library_name": "fourd_hub", "license": license.lower(), "tags": list(dict.fromkeys(all_tags))}
    if task.pipeline_tag:
        metadata["pipeline_tag"] = task.pipeline_tag
    if base_model:
        metadata["base_model"] = base_model
    return metadata


def _with_facts(metadata: dict[str, Any], facts: dict[str, Any], provenance: ConversionProvenance | None) -> dict[str, Any]:
    if provenance is not None:
        facts["provenance"] = provenance.to_metadata()
    metadata["fourd_hub"] = facts
    return metadata


def catalog_metadata(entry: CatalogEntry, card: Any, task: CardTask, provenance: ConversionProvenance | None) -> dict:
    """The front matter of a catalog entry's card.

    Args:
        entry: the catalog entry.
        card: its family's card module.
        task: its task.
        provenance: what a conversion recorded, if any (``fourd_hub.provenance``).
    """
    extra = [] if entry.has_weights else ["config-only"]
    metadata = _hub_fields(card, task, entry.license, hub_repo(entry.base_model) if entry.base_model else None, extra)
    spec = entry.input_spec
    facts: dict[str, Any] = {
        "catalog_name": entry.name,
        "architecture": entry.architecture,
        "preset": entry.preset,
        "code_license": CODE_LICENSE.lower(),
        "weights_license": entry.license.lower(),
        "input": input_metadata(spec.num_frames, spec.image_size),
        "original_file": entry.original_file,
        "original_url": entry.original_url,
        "original_sha256": entry.sha256,
    }
    return _with_facts(metadata, facts, provenance)


def custom_metadata(
    *,
    card: Any,
    task: CardTask,
    license: str,
    base_model: str | None,
    tags: list[str],
    facts: dict[str, Any],
    provenance: ConversionProvenance | None,
) -> dict:
    """The front matter of a custom model's card.

    Args:
        card: the family's card module.
        task: the model's task.
        license: the weights' license.
        base_model: the hub repo id of the model it was trained from, if any.
        tags: extra Hub tags (after the standard ones, duplicates dropped).
        facts: the ``fourd_hub:`` mapping (architecture, family, preset, input, ...).
        provenance: what a conversion recorded, if any (``fourd_hub.provenance``).
    """
    return _with_facts(_hub_fields(card, task, license, base_model, tags), facts, provenance)


def card_metadata(text: str) -> dict:
    """The YAML front matter of a card as a dict.

    Raises:
        ValueError: the text has no front matter, or it is not valid YAML mapping.
    """
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise ValueError("the card has no YAML front matter (a block between '---' lines at its top)")
    try:
        values = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        raise ValueError(f"the card's YAML front matter is invalid: {error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"the card's YAML front matter must be a mapping, got {type(values).__name__}")
    return values


def read_provenance(card_path: str | os.PathLike) -> ConversionProvenance | None:
    """Provenance recorded in a card file (None when the file is missing or holds none).

    Raises:
        ValueError: the front matter or the provenance in it is invalid.
    """
    path = Path(card_path)
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    if _FRONT_MATTER.match(text) is None:
        return None
    return ConversionProvenance.from_metadata(card_metadata(text))
