"""Card files: ``model_cards/`` (one card per catalog entry, kept in sync) and the ``README.md`` of a conversion."""

from __future__ import annotations

import os
from pathlib import Path

from .._files import write_text_atomic
from ..catalog import CATALOG, CatalogEntry
from .custom import render_custom_model_card
from .metadata import card_metadata
from .render import render_model_card

__all__ = ["card_file_name", "write_conversion_card", "write_model_cards"]


def card_file_name(entry: CatalogEntry) -> str:
    """The card's file name in ``model_cards/``: ``<entry.name>.md``."""
    return f"{entry.name}.md"


def _stale_cards(directory: Path) -> list[Path]:
    """Cards this generator wrote for entries no longer in the catalog.

    Only files whose metadata names a ``fourd_hub.catalog_name`` count, so that other Markdown
    files in the directory are never reported or removed.
    """
    current = {card_file_name(entry) for entry in CATALOG.values()} | {"README.md"}
    stale = []
    for path in sorted(directory.glob("*.md")):
        if path.name in current:
            continue
        try:
            metadata = card_metadata(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        facts = metadata.get("fourd_hub")
        if isinstance(facts, dict) and "catalog_name" in facts:
            stale.append(path)
    return stale


def write_model_cards(directory: str | os.PathLike, check: bool = False) -> list[Path]:
    """Write one card per catalog entry into ``directory`` (atomically: temp file + os.replace).

    Stale cards (written by this function for entries no longer in the catalog) are removed.

    Args:
        directory: the cards' directory (created if missing).
        check: write nothing; instead return the paths that are missing or differ from what
            :func:`render_model_card` produces, and stale cards (``README.md`` is never one).

    Returns:
        The paths written, or with ``check=True`` the paths out of date.
    """
    directory = Path(directory)
    if check:
        outdated = []
        for entry in CATALOG.values():
            path = directory / card_file_name(entry)
            if not path.is_file() or path.read_text(encoding="utf-8") != render_model_card(entry):
                outdated.append(path)
        return outdated + (_stale_cards(directory) if directory.is_dir() else [])
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in CATALOG.values():
        path = directory / card_file_name(entry)
        write_text_atomic(path, render_model_card(entry))
        written.append(path)
    for path in _stale_cards(directory):
        path.unlink()
    return written


def write_conversion_card(result, directory: str | os.PathLike | None = None) -> Path:
    """Write the model card of a conversion (:class:`fourd_hub.conversion.ConversionResult`) as ``README.md``.

    The catalog entry's card when the conversion was of one, else a card for a custom model;
    both carry the conversion's provenance.

    Args:
        result: the conversion's result (``entry``, ``config``, ``model_class``, ``provenance``,
            ``output_dir``).
        directory: where to write (default: the result's output directory).

    Returns:
        The card's path.
    """
    directory = Path(directory if directory is not None else result.output_dir)
    if result.entry is not None:
        text = render_model_card(result.entry, result.provenance)
    else:
        text = render_custom_model_card(result.config, architecture=result.model_class, provenance=result.provenance)
    path = directory / "README.md"
    write_text_atomic(path, text)
    return path
