"""Pushing to the Hub: a loaded model (``model.push_to_hub``), a catalog entry or a saved directory (``fourd-hub push``).

Every push uploads the weights, ``config.json``, the video processor config and the fourd_hub model
card (transformers' own ``push_to_hub`` would write its generic card over ``README.md``). Only
regular files inside the model directory are uploaded: a symlink that leaves it is refused.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..catalog import CATALOG, CatalogEntry
from .cache import convert_into_cache, find_converted
from .model_dir import read_model_config
from .settings import catalog_entry_for, hub_org


def push_model(
    model: Any,
    repo_id: str,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: bool | str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    max_shard_size: int | str | None = "5GB",
    tags: list[str] | None = None,
    model_card: str | None = None,
    video_processor=None,
):
    """Upload ``model`` (weights, ``config.json``, the video processor config and our model card) to ``repo_id``.

    transformers' own ``push_to_hub`` writes its generic card over the repo's ``README.md``;
    this one writes the fourd_hub card: architecture, input spec, base model (the catalog model
    this one was loaded from, if any), licenses and citation.

    Args:
        repo_id: ``org/name`` (created if missing).
        model_card: the README.md text to upload instead of the generated card.
        video_processor: the processor to save (default: the config's, as the pipelines use).
        tags: extra card tags.
        Others: as ``huggingface_hub.HfApi.upload_folder``; ``max_shard_size`` as
            ``save_pretrained``.

    Returns:
        The ``huggingface_hub`` commit info (its URL is the commit's).
    """
    from ..cards import render_custom_model_card
    from ..processing import video_processor_for_config

    check_repo_id(repo_id)  # before saving a possibly large model for nothing
    with tempfile.TemporaryDirectory(prefix="fourd-hub-push-") as temp:
        directory = Path(temp)
        model.save_pretrained(directory, max_shard_size=max_shard_size)
        (video_processor if video_processor is not None else video_processor_for_config(model.config)).save_pretrained(directory)
        if model_card is None:
            model_card = render_custom_model_card(
                model.config,
                architecture=type(model).__name__,
                repo_id=repo_id,
                base_model=_base_model_of(model.config),
                tags=tags,
            )
        (directory / "README.md").write_text(model_card, encoding="utf-8")
        return upload_model_folder(
            directory,
            repo_id,
            commit_message=commit_message or f"Upload {type(model).__name__} with fourd_hub",
            commit_description=commit_description,
            private=private,
            token=token,
            revision=revision,
            create_pr=create_pr,
        )



def _catalog_entry_of_card(directory: Path) -> CatalogEntry | None:
    """The catalog entry a directory's model card was rendered for (``fourd_hub.catalog_name``), if any."""
    from ..cards import card_metadata

    try:
        metadata = card_metadata((directory / "README.md").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = (metadata.get("fourd_hub") or {}).get("catalog_name")
    return CATALOG.get(name) if isinstance(name, str) else None


def _base_model_of(config) -> str | None:
    """The Hub repo a model was loaded from (catalog name -> its repo), if it came from one."""
    name = str(getattr(config, "_name_or_path", "") or "")
    entry = catalog_entry_for(name)
    if entry is not None:
        return entry.hub_repo_id(hub_org())
    if name.count("/") == 1 and not name.startswith((".", "/", "~")) and not Path(name).exists():
        return name
    return None




def upload_model_folder(
    directory: Path,
    repo_id: str,
    *,
    commit_message: str,
    commit_description: str | None = None,
    private: bool | None = None,
    token: bool | str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
):
    """Create ``repo_id`` if needed and upload ``directory`` to it with ``huggingface_hub``."""
    from huggingface_hub import HfApi

    check_repo_id(repo_id)
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model").repo_id
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=str(directory),
        repo_type="model",
        commit_message=commit_message,
        commit_description=commit_description,
        revision=revision,
        create_pr=create_pr,
    )


def check_repo_id(repo_id: str) -> None:
    """A clear error for repo ids the Hub would refuse (``org/name``, or ``name`` in your namespace)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        if not isinstance(repo_id, str):
            raise HFValidationError(f"not a string: {type(repo_id).__name__}")
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"invalid Hub repo id {repo_id!r} ({err}); use 'org/name' or 'name'") from None


def _link_or_copy(source: Path, target: Path) -> None:
    """Put ``source`` (a resolved, checked path) at ``target``: a link where allowed, else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _is_within(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def model_files(directory: str | os.PathLike) -> dict[Path, Path]:
    """The files of a model directory that a push uploads: relative path -> the real file to read.

    Hidden files and directories (caches, partial writes) and ``README.md`` (the card is
    regenerated) are left out. A symlink to a file is followed only when it resolves inside the
    directory; in a huggingface_hub cache snapshot (``.../snapshots/<revision>/``), also into
    that repo's ``blobs/``, where the cache keeps the files its snapshot links name. Any other
    link would upload a file from elsewhere on this machine (a key, another user's data), so it
    is refused. A symlink to a directory inside is not walked: its files are uploaded under their
    own path.

    Raises:
        ValueError: a symlink leads outside the directory (the message names the link and its target).
        FileNotFoundError: a symlink inside it is broken.
    """
    root = Path(directory).expanduser().resolve()
    roots = [root]
    if root.parent.name == "snapshots" and (root.parent.parent / "blobs").is_dir():
        roots.append((root.parent.parent / "blobs").resolve())
    files: dict[Path, Path] = {}

    def walk(real: Path, relative: Path) -> None:
        with os.scandir(real) as listing:
            entries = sorted(listing, key=lambda e: e.name)
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden files (caches, partial writes) are not part of the model
            path, rel = Path(entry.path), relative / entry.name
            if entry.is_symlink():
                target = path.resolve()
                if not _is_within(target, roots):
                    raise ValueError(
                        f"refusing to push {root}: {rel} is a symlink to {os.readlink(path)} ({target}), outside "
                        "the model directory; copy the file into the directory or remove the link"
                    )
                if not target.exists():
                    raise FileNotFoundError(f"{root / rel} is a broken symlink (to {os.readlink(path)}); fix or remove it")
                if target.is_file() and rel != Path("README.md"):
                    files[rel] = target
                # A linked directory inside the model directory is walked under its own name
                # (not again through the link: no duplicates, no link loops).
            elif entry.is_dir(follow_symlinks=False):
                walk(path, rel)
            elif entry.is_file(follow_symlinks=False) and rel != Path("README.md"):
                files[rel] = path

    walk(root, Path())
    return files


def push_model_dir(
    name_or_dir: str | os.PathLike,
    repo_id: str,
    *,
    original: str | os.PathLike | None = None,
    commit_message: str | None = None,
    private: bool | None = None,
    token: bool | str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    progress: bool = True,
):
    """Push a catalog entry (converted first if needed) or a saved model directory to ``repo_id``.

    For a catalog name the conversion in the Hugging Face cache is used (made from ``original`` or
    the downloaded original file if there is none yet) and the catalog card, with the
    conversion's provenance and usage snippets loading ``repo_id``, replaces the cached card. For a
    directory, its files are uploaded with a card that is regenerated the same way when the
    directory's card records a catalog conversion, else a card for a custom model. Weights are not
    copied: the upload reads them through links. Only the directory's own files are uploaded
    (:func:`model_files`): a symlink leading out of it is refused before anything is uploaded.

    Returns:
        The ``huggingface_hub`` commit info.

    Raises:
        ValueError: a bad repo id or name, or a symlink in the directory that leads out of it.
        FileNotFoundError: neither a catalog entry with weights nor a directory; no config.json.
    """
    from ..cards import read_provenance, render_custom_model_card, render_model_card

    check_repo_id(repo_id)
    entry = catalog_entry_for(name_or_dir)
    if entry is not None:
        if original is not None or (directory := find_converted(entry)) is None:
            directory = convert_into_cache(entry, original=original, progress=progress)
    else:
        if original is not None:
            raise ValueError("original= is only for catalog names (it is the original .npz of that entry)")
        directory = Path(name_or_dir).expanduser()
        if not directory.is_dir():
            known = ", ".join(sorted(name for name, e in CATALOG.items() if e.has_weights))
            raise FileNotFoundError(f"{name_or_dir} is neither a catalog entry with weights ({known}) nor a directory")
    files = model_files(directory)  # before any work: a link leading out of the directory stops the push
    provenance = read_provenance(directory / "README.md")
    if entry is None and provenance is not None:
        entry = _catalog_entry_of_card(directory)
    if entry is not None:
        card = render_model_card(entry, provenance, repo_id=repo_id)
        title = entry.name
    elif (directory / "config.json").is_file():
        values, family, architecture = read_model_config(directory)
        config = family.load("config_class").from_dict(values)
        card = render_custom_model_card(config, architecture=architecture, repo_id=repo_id, provenance=provenance)
        title = architecture
    else:
        raise FileNotFoundError(f"{directory} has no config.json: not a saved fourd_hub model")
    with tempfile.TemporaryDirectory(prefix="fourd-hub-push-") as temp:
        staging = Path(temp)
        for relative, real in files.items():
            _link_or_copy(real, staging / relative)
        (staging / "README.md").write_text(card, encoding="utf-8")
        return upload_model_folder(
            staging,
            repo_id,
            commit_message=commit_message or f"Upload {title} (converted with fourd_hub)",
            private=private,
            token=token,
            revision=revision,
            create_pr=create_pr,
        )
