"""Where a model name points: a local directory, a catalog name, or a Hugging Face Hub repo.

``resolve_model_dir`` is what the pipelines (and the CLI) call with the ``model=`` they are given:

1. an existing local directory: used as it is;
2. a catalog name (``fourd-hub list``): the Hub repo ``<org>/<name>``, org ``$FOURD_HUB_ORG`` or
   :data:`~fourd_hub.catalog.DEFAULT_HUB_ORG`, fetched with ``huggingface_hub.snapshot_download``
   (so the Hugging Face cache, its locking and ``HF_HUB_OFFLINE`` apply);
3. any other ``org/name``: that Hub repo.

Converting an original ``.npz`` on the fly when the Hub has no converted copy is not done here
yet (see the hub issue); until then a clear error says how to convert the file by hand.
"""

from __future__ import annotations

import os
from pathlib import Path

from .catalog import CATALOG, DEFAULT_HUB_ORG, get_entry


def hub_org() -> str:
    """The Hub organisation of converted checkpoints: ``$FOURD_HUB_ORG`` or the catalog default."""
    return os.environ.get("FOURD_HUB_ORG") or DEFAULT_HUB_ORG


def resolve_model_dir(name_or_path: str | os.PathLike, local_files_only: bool | None = None, **hub_kwargs) -> Path:
    """A local directory holding the model ``name_or_path`` refers to.

    Args:
        name_or_path: a directory, a catalog name or a Hub repo id.
        local_files_only: only look in the Hugging Face cache (default: ``HF_HUB_OFFLINE``).
        **hub_kwargs: passed to ``huggingface_hub.snapshot_download`` (``revision``, ``token``,
            ``cache_dir``).

    Raises:
        FileNotFoundError: the name is neither a directory, nor a catalog name, nor a repo id, or the
            repo is neither cached nor downloadable; the message says what to do.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    text = str(name_or_path)
    if path.exists():
        raise FileNotFoundError(f"{text} is a file; pass the directory of a converted model (config.json + weights)")
    if text.lower() in CATALOG:
        entry = get_entry(text)
        repo_id = entry.hub_repo_id(hub_org())
        how = (
            f"convert the original file ({entry.original_url}) with `fourd-hub convert {entry.original_file} "
            f"./{entry.name}` and pass model='./{entry.name}'"
            if entry.has_weights
            else f"{entry.name} is a configuration without released weights; train it or pass a converted directory"
        )
    elif text.count("/") == 1 and not text.startswith((".", "/")):
        repo_id, how = text, "check the repo id, or pass a local directory"
    else:
        known = ", ".join(sorted(CATALOG))
        raise FileNotFoundError(
            f"{text!r} is not a directory, a catalog name ({known}) or a Hub repo id 'org/name'"
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=bool(local_files_only), **hub_kwargs))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FileNotFoundError(f"{text}: the Hub repo {repo_id} is not in the local cache and could not be fetched ({reason}); {how}") from None
