"""Where a model name points: a local directory, a Hub repo, or a catalog entry converted into the cache.

Every ``from_pretrained`` of ours (``FourDSModel.from_pretrained("4ds-e")``, the task classes,
:func:`from_pretrained`, the pipelines and the CLI) resolves a name in this order:

1. an existing local directory: used as it is;
2. a catalog name (``fourd-hub list``): the Hub repo ``<org>/<name>`` (org ``$FOURD_HUB_ORG`` or
   :data:`~fourd_hub.catalog.DEFAULT_HUB_ORG`) through ``huggingface_hub.snapshot_download``, so the
   Hugging Face cache, its locking and ``HF_HUB_OFFLINE`` apply;
3. when the Hub has no converted copy: a copy converted earlier on this machine, else the original
   ``.npz`` downloaded from its URL (base ``$FOURD_HUB_ORIGINAL_URL``, for mirrors) and converted once
   into the Hugging Face cache;
4. any other ``org/name``: that Hub repo.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..catalog import CATALOG
from ..registry import get_family
from .cache import convert_into_cache, find_converted
from .settings import catalog_entry_for, hub_org, is_offline

# ----------------------------------------------------------------------------------------------
# Name resolution


def _hub_error_reason(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def resolve_model_dir(
    name_or_path: str | os.PathLike,
    local_files_only: bool | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    force_download: bool = False,
    progress: bool = True,
    **hub_kwargs,
) -> Path:
    """A local directory holding the model ``name_or_path`` refers to (see the module docstring).

    Args:
        name_or_path: a directory, a catalog name or a Hub repo id.
        local_files_only: only look in the Hugging Face cache (default: ``HF_HUB_OFFLINE``).
        cache_dir: the Hugging Face cache (default ``HF_HUB_CACHE``).
        revision: a Hub revision; catalog names fall back to the original file only for the
            default one.
        token: Hub token.
        force_download: download again (and, for catalog names without a Hub repo, convert again).
        progress: progress bars and messages for downloads and conversions.
        **hub_kwargs: passed to ``huggingface_hub.snapshot_download`` (``endpoint``, ...).

    Raises:
        FileNotFoundError: nothing found; the message says what to download and where to put it.
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise TypeError(f"expected a catalog name, a directory or a Hub repo id, got {name_or_path!r}")
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    text = str(name_or_path)
    if path.exists():
        raise FileNotFoundError(f"{text} is a file; pass the directory of a converted model (config.json + weights)")
    entry = catalog_entry_for(text)
    if entry is None and not (text.count("/") == 1 and not text.startswith((".", "/", "~"))):
        known = ", ".join(sorted(CATALOG))
        raise FileNotFoundError(f"{text!r} is not a directory, a catalog name ({known}) or a Hub repo id 'org/name'")
    repo_id = entry.hub_repo_id(hub_org()) if entry is not None else text
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(
                repo_id,
                local_files_only=is_offline(local_files_only),
                cache_dir=cache_dir,
                revision=revision,
                token=token,
                force_download=force_download,
                **hub_kwargs,
            )
        )
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as err:
        hub_error = _hub_error_reason(err)
    if entry is None:
        raise FileNotFoundError(
            f"{text}: the Hub repo {repo_id} is not in the local cache and could not be fetched ({hub_error}); "
            "check the repo id, or pass a local directory"
        )
    if not entry.has_weights:
        config_class = get_family(entry.family).config_class.rpartition(".")[2]  # the name only: no import
        raise FileNotFoundError(
            f"{entry.name} is a configuration without released weights (and the Hub repo {repo_id} is not available: "
            f"{hub_error}); build it with {config_class}.from_pretrained({entry.name!r}) and {entry.architecture}(config) "
            "to train it, or pass a trained directory"
        )
    if revision not in (None, "main"):
        raise FileNotFoundError(f"revision {revision!r} of {repo_id} is not available ({hub_error})")
    if not force_download and (found := find_converted(entry, cache_dir=cache_dir)) is not None:
        return found
    return convert_into_cache(
        entry, cache_dir=cache_dir, local_files_only=local_files_only, force=force_download, progress=progress
    )
