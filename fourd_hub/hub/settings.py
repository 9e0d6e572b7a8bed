"""Settings of the hub layer (Hub organisation, original-file mirror, cache, offline mode) and catalog look-ups.

Torch-free, like the whole of :mod:`fourd_hub.hub`.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from ..catalog import CATALOG, DEFAULT_HUB_ORG, ORIGINAL_URL_BASE, CatalogEntry

logger = logging.getLogger(__name__)

#: Keyword arguments of ``from_pretrained`` that are about finding the files, not building the model.
HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision")


# ----------------------------------------------------------------------------------------------
# Settings


def hub_org() -> str:
    """The Hub organisation of converted checkpoints: ``$FOURD_HUB_ORG`` or the catalog default."""
    return os.environ.get("FOURD_HUB_ORG") or DEFAULT_HUB_ORG


def original_url_base() -> str:
    """Where original ``.npz`` files are fetched from: ``$FOURD_HUB_ORIGINAL_URL`` or the Google bucket.

    A mirror may be an ``http(s)://`` or ``file://`` URL or a local directory.
    """
    return os.environ.get("FOURD_HUB_ORIGINAL_URL") or ORIGINAL_URL_BASE


def original_url(entry: CatalogEntry) -> str:
    """The URL (or local path) of ``entry``'s original file under :func:`original_url_base`."""
    if entry.original_file is None:
        raise ValueError(f"{entry.name} has no released weights")
    base = original_url_base()
    if _is_remote(base) or base.startswith("file://"):
        return base.rstrip("/") + "/" + entry.original_file
    return str(Path(base).expanduser() / entry.original_file)


#: The environment variable that makes downloads without a pinned sha256 an error.
REQUIRE_CHECKSUM_ENV = "FOURD_HUB_REQUIRE_CHECKSUM"
_TRUE, _FALSE = {"1", "ON", "YES", "TRUE"}, {"", "0", "OFF", "NO", "FALSE"}


def checksum_required() -> bool:
    """Whether downloads must have a pinned sha256: ``$FOURD_HUB_REQUIRE_CHECKSUM`` (``1``; default off).

    The catalog's released files have no published sha256 (they are "not pinned": checked by a
    size floor and the strict conversion only), so with it set they are refused before any byte
    is fetched; a local original (``--original``) is still accepted.

    Raises:
        ValueError: the variable holds something other than ``1``/``0`` (or yes/no, on/off, true/false).
    """
    value = os.environ.get(REQUIRE_CHECKSUM_ENV, "").strip().upper()
    if value not in _TRUE | _FALSE:
        raise ValueError(f"{REQUIRE_CHECKSUM_ENV}={os.environ[REQUIRE_CHECKSUM_ENV]!r}: set it to 1 (refuse unpinned downloads) or 0")
    return value in _TRUE


def hf_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The Hugging Face hub cache (``HF_HUB_CACHE``), or ``cache_dir`` when given."""
    from huggingface_hub import constants

    return Path(cache_dir).expanduser() if cache_dir is not None else Path(constants.HF_HUB_CACHE)


def is_offline(local_files_only: bool | None = None) -> bool:
    """``local_files_only``, else ``HF_HUB_OFFLINE`` (read now, not only at import)."""
    from huggingface_hub import constants

    if local_files_only:
        return True
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _is_remote(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def catalog_entry_for(name_or_path: Any) -> CatalogEntry | None:
    """The catalog entry a string names (case-insensitive), unless it is an existing path.

    ``"4ds-e"`` and the Hub repo id of its converted copy (``"fourd-hub/4ds-e"``, or under
    ``$FOURD_HUB_ORG``) name the same entry, so both resolve the same way (Hub copy, else the
    original file converted into the cache).
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or Path(name_or_path).expanduser().exists():
        return None
    text = str(name_or_path)
    org, slash, name = text.rpartition("/")
    if slash and org.lower() in {hub_org().lower(), DEFAULT_HUB_ORG.lower()}:
        text = name
    return CATALOG.get(text) or CATALOG.get(text.lower())


def _say(message: str, progress: bool) -> None:
    """Tell the user about long work (downloads, conversions) without breaking progress bars."""
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)
    else:
        logger.info(message)


def split_hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop the file-finding keywords (:data:`HUB_KWARGS`) out of ``from_pretrained`` keywords."""
    found = {key: kwargs.pop(key) for key in HUB_KWARGS if key in kwargs}
    if found.get("revision") == "main":
        found.pop("revision")
    return found
