"""Where a model name points, and how converted checkpoints reach the Hugging Face cache and the Hub.

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

Converted copies live in the cache folder of the repo the name resolves to, in huggingface_hub's
own layout (content-addressed ``blobs/``, ``snapshots/<revision>/`` of symlinks, a ref), under the
ref ``refs/fourd-hub-converted`` so that they never pose as a Hub commit. The revision is a
digest of what determines the conversion (catalog entry, original checksum, converter format),
so processes agree on it; a conversion holds huggingface_hub's file lock for that repo, so two
processes asking at once convert once, and the ref is written last, so nobody sees half a copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from ._files import staging_dir, write_text_atomic
from .catalog import CATALOG, DEFAULT_HUB_ORG, ORIGINAL_URL_BASE, CatalogEntry, get_entry

logger = logging.getLogger(__name__)

#: The ref (``refs/<this>`` in a repo's cache folder) naming the locally converted snapshot.
CONVERTED_REF = "fourd-hub-converted"
#: Bumped when the converter's output changes, so stale converted copies are redone.
CONVERSION_FORMAT = 1
#: Keyword arguments of ``from_pretrained`` that are about finding the files, not building the model.
HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision")
_HEAD_CONFIG_NAME = "readout_head.json"  # conversion.heads.HEAD_CONFIG_NAME (not imported: no torch at import)


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
    """The catalog entry a string names (case-insensitive), unless it is an existing path."""
    if not isinstance(name_or_path, (str, os.PathLike)) or Path(name_or_path).expanduser().exists():
        return None
    text = str(name_or_path)
    return CATALOG.get(text) or CATALOG.get(text.lower())


def _say(message: str, progress: bool) -> None:
    """Tell the user about long work (downloads, conversions) without breaking progress bars."""
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)
    else:
        logger.info(message)


# ----------------------------------------------------------------------------------------------
# Converted copies in the Hugging Face cache


def repo_cache_folder(entry: CatalogEntry, org: str | None = None, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder of the repo ``entry`` resolves to (``models--<org>--<name>``)."""
    from huggingface_hub.file_download import repo_folder_name

    return hf_cache_dir(cache_dir) / repo_folder_name(repo_id=entry.hub_repo_id(org or hub_org()), repo_type="model")


def converted_revision(entry: CatalogEntry) -> str:
    """The snapshot name of ``entry``'s local conversion: a digest of everything that determines it."""
    recipe = {
        "format": CONVERSION_FORMAT,
        "name": entry.name,
        "architecture": entry.architecture,
        "preset": entry.preset,
        "config_overrides": entry.config_overrides,
        "original_file": entry.original_file,
        "original_sha256": entry.sha256,
    }
    return hashlib.sha1(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()


def find_converted(entry: CatalogEntry, org: str | None = None, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The snapshot directory of ``entry``'s local conversion, if it is complete and current."""
    folder = repo_cache_folder(entry, org, cache_dir)
    ref = folder / "refs" / CONVERTED_REF
    try:
        revision = ref.read_text().strip()
    except OSError:
        return None
    snapshot = folder / "snapshots" / revision
    if revision != converted_revision(entry):
        return None  # converted by an older converter format: redo
    if (snapshot / "config.json").is_file() or (snapshot / _HEAD_CONFIG_NAME).is_file():
        return snapshot
    return None


@contextlib.contextmanager
def _cache_lock(lock_path: Path, what: str, progress: bool) -> Iterator[None]:
    """huggingface_hub's own file lock, saying so when another process holds it."""
    from filelock import Timeout
    from huggingface_hub.utils import WeakFileLock

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = WeakFileLock(lock_path, timeout=0.05)
    try:
        lock.__enter__()
    except Timeout:
        _say(f"waiting for another process {what} (lock {lock_path})", progress)
        lock = WeakFileLock(lock_path)
        lock.__enter__()
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def commit_to_cache(staging: Path, folder: Path, revision: str, ref: str = CONVERTED_REF) -> Path:
    """Move the files of ``staging`` into ``folder`` in huggingface_hub's layout; return the snapshot.

    Each file becomes ``blobs/<sha256>`` (the name huggingface_hub gives LFS files) and a relative
    symlink in ``snapshots/<revision>/`` (a copy where symlinks are not allowed). The snapshot is
    assembled under a temporary name and renamed; ``refs/<ref>`` is written last.
    """
    from .conversion.convert import sha256_of

    blobs, snapshots = folder / "blobs", folder / "snapshots"
    blobs.mkdir(parents=True, exist_ok=True)
    snapshots.mkdir(parents=True, exist_ok=True)
    partial = staging_dir(snapshots / revision)
    try:
        for file in sorted(p for p in staging.rglob("*") if p.is_file()):
            blob = blobs / sha256_of(file)
            if blob.exists():
                file.unlink()
            else:
                os.replace(file, blob)
            link = partial / file.relative_to(staging)
            link.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.symlink(os.path.relpath(blob, link.parent), link)
            except OSError:  # no symlinks here (e.g. Windows without developer mode): as huggingface_hub, copy
                shutil.copyfile(blob, link)
        snapshot = snapshots / revision
        if snapshot.exists():  # left by a commit interrupted before its ref was written
            shutil.rmtree(snapshot)
        os.replace(partial, snapshot)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    write_text_atomic(folder / "refs" / ref, revision)
    return snapshot


def _offline_message(entry: CatalogEntry, folder: Path) -> str:
    size = f", about {entry.file_size_mb:,} MB" if entry.file_size_mb else ""
    return (
        f"{entry.name} is not in the Hugging Face cache ({folder.parent}) and downloading is off "
        f"(HF_HUB_OFFLINE / local_files_only). Either download {original_url(entry)}{size} elsewhere and run "
        f"`fourd-hub download {entry.name} --original /path/to/{entry.original_file}` here (it converts the file into "
        f"the cache, where from_pretrained({entry.name!r}) then finds it offline), or set FOURD_HUB_ORIGINAL_URL to a "
        f"local directory holding {entry.original_file}, or copy {folder} from a machine that has it."
    )


def _check_free_space(directory: Path, needed: int, what: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise OSError(
            f"{what} needs about {needed / 1e9:.1f} GB in {directory}, which has {free / 1e9:.1f} GB free; "
            "free some space or point HF_HUB_CACHE at a larger disk"
        )


def convert_into_cache(
    entry: CatalogEntry | str,
    *,
    original: str | os.PathLike | None = None,
    org: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
    force: bool = False,
    keep_original: bool = False,
    progress: bool = True,
) -> Path:
    """Convert a catalog entry's original checkpoint into the Hugging Face cache, once.

    Args:
        entry: a catalog entry or name with released weights.
        original: a local copy of the original ``.npz``; by default it is downloaded from
            :func:`original_url` (resumable, checked against the catalog's size and sha256 when known).
        org: the Hub organisation whose repo folder receives the copy (default :func:`hub_org`).
        cache_dir: the Hugging Face cache (default ``HF_HUB_CACHE``).
        local_files_only: do not download (default ``HF_HUB_OFFLINE``); a local mirror still works.
        force: convert again even if a current conversion is cached.
        keep_original: keep the downloaded ``.npz`` in the cache's ``blobs/`` (default: deleted
            once converted; it is as large as the converted weights).
        progress: progress bars and messages on stderr.

    Returns:
        The snapshot directory (``config.json`` + safetensors + processor config + model card, or
        ``readout_head.json`` for a standalone head).

    Raises:
        FileNotFoundError: no released weights, no local copy while offline, or ``original`` missing.
        fourd_hub.download.DownloadError: the download failed or was refused (size, checksum).
        fourd_hub.conversion.ConversionError: the file is not the checkpoint the entry describes.
    """
    from .conversion import CheckpointError, convert_checkpoint
    from .conversion.convert import sha256_of
    from .download import download_file

    entry = get_entry(entry) if isinstance(entry, str) else entry
    if not entry.has_weights:
        raise FileNotFoundError(f"{entry.name} is a configuration without released weights: there is nothing to convert")
    folder = repo_cache_folder(entry, org, cache_dir)
    revision = converted_revision(entry)
    lock_path = hf_cache_dir(cache_dir) / ".locks" / folder.name / "fourd-hub-conversion.lock"
    with _cache_lock(lock_path, f"converting {entry.name}", progress):
        if not force and (found := find_converted(entry, org, cache_dir)) is not None:
            return found  # another process converted it while we waited for the lock
        downloaded = None
        if original is not None:
            source = Path(original).expanduser()
            if not source.is_file():
                raise FileNotFoundError(f"{source} does not exist; pass the downloaded {entry.original_file}")
            if entry.sha256 is not None and sha256_of(source) != entry.sha256.lower():
                raise ValueError(f"{source} is not {entry.original_file}: its sha256 differs from the catalog's {entry.sha256}")
        else:
            url = original_url(entry)
            if is_offline(local_files_only) and _is_remote(url):
                raise FileNotFoundError(_offline_message(entry, folder))
            approximate = entry.file_size or (entry.file_size_mb or 0) * 10**6 or entry.num_parameters * 4
            _check_free_space(folder, 2 * approximate, f"downloading and converting {entry.name}")
            _say(
                f"{entry.name}: no converted copy on the Hub; downloading the original {entry.original_file} from {url} "
                f"and converting it into {folder} (once: later loads read the cache)",
                progress,
            )
            downloaded = download_file(
                url,
                folder / "blobs" / entry.original_file,
                expected_size=entry.file_size,
                expected_sha256=entry.sha256,
                # float32 arrays of num_parameters values, or at worst bf16: an error page is far smaller.
                min_size=entry.num_parameters * 2,
                progress=progress,
                description=entry.original_file,
            )
            source = downloaded.path
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".converting-{revision}-", dir=folder))
        try:
            convert_checkpoint(
                source,
                staging / "model",
                name=entry.name,
                progress=progress,
                source_sha256=downloaded.sha256 if downloaded is not None else None,
            )
            snapshot = commit_to_cache(staging / "model", folder, revision)
        except CheckpointError as err:
            if downloaded is None or entry.sha256 is not None:
                raise  # a local file the user chose, or a checksum-verified download: the message stands
            # An unverified download that is not this checkpoint (wrong file on a mirror, an error
            # page): keeping it would make every later call fail the same way without re-fetching.
            downloaded.path.unlink(missing_ok=True)
            raise type(err)(
                f"{err} -- the file downloaded from {url} is not the {entry.name} checkpoint and was deleted; "
                "check FOURD_HUB_ORIGINAL_URL / the mirror"
            ) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if downloaded is not None and not keep_original:
            downloaded.path.unlink(missing_ok=True)
    _say(f"{entry.name}: converted into {snapshot}", progress)
    return snapshot


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
        config_class = "MooGConfig" if entry.family == "moog" else "FourDSConfig"
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


def split_hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop the file-finding keywords (:data:`HUB_KWARGS`) out of ``from_pretrained`` keywords."""
    found = {key: kwargs.pop(key) for key in HUB_KWARGS if key in kwargs}
    if found.get("revision") == "main":
        found.pop("revision")
    return found


# ----------------------------------------------------------------------------------------------
# Loading


def _read_json(path: Path) -> dict:
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); re-convert or re-download the model") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a JSON object; re-convert or re-download the model")
    return values


def model_class_for(directory: Path) -> type:
    """The fourd_hub class a model directory was saved from (``config.json`` ``architectures``)."""
    import fourd_hub

    config_path = directory / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory} has no config.json: not a saved fourd_hub model")
    config = _read_json(config_path)
    family = config.get("model_type")
    if family not in ("fourds", "moog"):
        raise ValueError(f"{directory} holds a {family!r} model; fourd_hub loads fourds and moog models")
    base = fourd_hub.FourDSPreTrainedModel if family == "fourds" else fourd_hub.MooGPreTrainedModel
    for name in config.get("architectures") or []:
        cls = getattr(fourd_hub, name, None)
        if isinstance(cls, type) and issubclass(cls, base):
            return cls
    return fourd_hub.FourDSModel if family == "fourds" else fourd_hub.MooGModel


def head_model_class(directory: Path) -> type:
    """The MooG task class a standalone readout-head directory belongs to."""
    import fourd_hub

    task = (_read_json(directory / _HEAD_CONFIG_NAME).get("readout") or {}).get("task")
    classes = {"points": fourd_hub.MooGForPointTracking, "boxes": fourd_hub.MooGForBoxTracking}
    if task not in classes:
        raise ValueError(f"{directory / _HEAD_CONFIG_NAME} describes a {task!r} head; expected points or boxes")
    return classes[task]


def from_pretrained(name_or_path: str | os.PathLike, *, backbone=None, **kwargs):
    """Load any fourd_hub model by catalog name, directory or Hub repo id, as the class it was saved as.

    ``fourd_hub.from_pretrained("4ds-b-dist-e-scannet-depth")`` returns a
    :class:`~fourd_hub.FourDSForDepthEstimation`, ``"moog-ego4d-point-tracking"`` a
    :class:`~fourd_hub.MooGForPointTracking` on its base backbone, ``"4ds-e"`` a
    :class:`~fourd_hub.FourDSModel`.

    Args:
        name_or_path: a catalog name, a directory or a Hub repo id.
        backbone: for a standalone readout head that is not a catalog entry: the backbone (model,
            name, directory or repo id) it reads.
        **kwargs: ``from_pretrained`` keywords (``dtype``, ``device_map``, ``cache_dir``, ...).
    """
    import fourd_hub

    entry = catalog_entry_for(name_or_path)
    if entry is not None:
        return getattr(fourd_hub, entry.architecture).from_pretrained(entry.name, backbone=backbone, **kwargs)
    directory = resolve_model_dir(name_or_path, **split_hub_kwargs(kwargs))
    if (directory / _HEAD_CONFIG_NAME).is_file():
        return head_model_class(directory).from_pretrained(directory, backbone=backbone, **kwargs)
    return model_class_for(directory).from_pretrained(directory, **kwargs)


class HubConfigMixin:
    """``from_pretrained`` by catalog name for our configuration classes.

    A config-only catalog entry (a 4DS size without released weights) gives its preset; an entry
    with weights resolves like the model (see :func:`resolve_model_dir`) and reads its ``config.json``.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        entry = catalog_entry_for(pretrained_model_name_or_path)
        if entry is None:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        if entry.family != cls.model_type:
            expected = {"fourds": "FourDSConfig", "moog": "MooGConfig"}[entry.family]
            raise ValueError(f"{entry.name} is a {entry.family} model; load its configuration with {expected}")
        hub_kwargs = split_hub_kwargs(kwargs)
        if not entry.has_weights:
            return cls.from_preset(entry.preset, **{**entry.config_overrides, **kwargs})
        directory = resolve_model_dir(entry.name, **hub_kwargs)
        if not (directory / "config.json").is_file():
            raise ValueError(
                f"{entry.name} is a standalone readout head without a model configuration; "
                f"its backbone's is {cls.__name__}.from_pretrained({entry.base_model!r})"
            )
        return super().from_pretrained(directory, **kwargs)


class HubModelMixin:
    """``from_pretrained`` by catalog name and a ``push_to_hub`` that uploads our card (model classes).

    Mixed into :class:`~fourd_hub.FourDSPreTrainedModel` and :class:`~fourd_hub.MooGPreTrainedModel`
    ahead of ``transformers.PreTrainedModel``.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, backbone=None, **kwargs):
        """``transformers``' ``from_pretrained``, plus catalog names and standalone readout heads.

        Args:
            pretrained_model_name_or_path: a catalog name (``"4ds-e"``), a directory or a Hub repo id.
            backbone: for standalone readout heads (``readout_head.json``): the backbone to attach
                them to (default: the catalog entry's ``base_model``).
            *model_args, **kwargs: as ``transformers.PreTrainedModel.from_pretrained``.
        """
        entry = catalog_entry_for(pretrained_model_name_or_path)
        is_dir = isinstance(pretrained_model_name_or_path, (str, os.PathLike)) and Path(pretrained_model_name_or_path).expanduser().is_dir()
        if entry is None and not is_dir and backbone is None and not hasattr(cls, "from_backbone"):
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)  # a Hub repo id
        hub_kwargs = split_hub_kwargs(kwargs)
        if entry is not None:
            directory = resolve_model_dir(entry.name, **hub_kwargs)
        elif is_dir:
            directory = Path(pretrained_model_name_or_path).expanduser()
        else:  # a repo id for a MooG readout class: it may hold a standalone head (no config.json)
            directory = resolve_model_dir(pretrained_model_name_or_path, **hub_kwargs)
        if (directory / _HEAD_CONFIG_NAME).is_file():
            # The backbone is resolved like any name: the same cache and offline settings apply.
            model = cls._from_head_directory(directory, entry, backbone, {**kwargs, **hub_kwargs})
        else:
            if backbone is not None:
                raise TypeError(f"backbone= is only for standalone readout heads; {pretrained_model_name_or_path} is a full model")
            cls._check_family(directory)
            model = super().from_pretrained(directory, *model_args, **kwargs)
        if entry is not None:
            model.config._name_or_path = entry.name  # as transformers records a repo id: push_to_hub's base model
        return model

    @classmethod
    def _check_family(cls, directory: Path) -> None:
        config_path = directory / "config.json"
        if not config_path.is_file():
            return  # transformers' own error says what is missing
        family = _read_json(config_path).get("model_type")
        expected = cls.config_class.model_type
        if family != expected:
            raise ValueError(
                f"{directory} holds a {family!r} model and {cls.__name__} is a {expected!r} model; "
                "load it with its own class or fourd_hub.from_pretrained(...)"
            )

    @classmethod
    def _from_head_directory(cls, directory: Path, entry: CatalogEntry | None, backbone, kwargs: dict):
        head_class = head_model_class(directory)
        if not issubclass(head_class, cls):
            raise ValueError(
                f"{entry.name if entry else directory} is a standalone {head_class.readout_task} readout head; load it with "
                f"{head_class.__name__}.from_pretrained(...) or fourd_hub.from_pretrained(...)"
            )
        if backbone is None and entry is None:
            entry = _catalog_entry_of_card(directory)  # a pushed catalog head: its card names the entry
        if backbone is None and entry is not None and entry.base_model:
            backbone = entry.base_model
        if backbone is None:
            raise ValueError(
                f"{directory} is a standalone readout head; pass the backbone it reads: "
                f"{head_class.__name__}.from_pretrained(..., backbone='moog-ego4d' or a converted backbone directory)"
            )
        return head_class.from_backbone(backbone, head=directory, **kwargs)

    def push_to_hub(
        self,
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
        """Upload weights, ``config.json``, the video processor config and our model card to ``repo_id``.

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
        from .model_card import render_custom_model_card
        from .processing import video_processor_for_config

        check_repo_id(repo_id)  # before saving a possibly large model for nothing
        with tempfile.TemporaryDirectory(prefix="fourd-hub-push-") as temp:
            directory = Path(temp)
            self.save_pretrained(directory, max_shard_size=max_shard_size)
            (video_processor if video_processor is not None else video_processor_for_config(self.config)).save_pretrained(directory)
            if model_card is None:
                model_card = render_custom_model_card(
                    self.config,
                    architecture=type(self).__name__,
                    repo_id=repo_id,
                    base_model=_base_model_of(self.config),
                    tags=tags,
                )
            (directory / "README.md").write_text(model_card, encoding="utf-8")
            return upload_model_folder(
                directory,
                repo_id,
                commit_message=commit_message or f"Upload {type(self).__name__} with fourd_hub",
                commit_description=commit_description,
                private=private,
                token=token,
                revision=revision,
                create_pr=create_pr,
            )


def _catalog_entry_of_card(directory: Path) -> CatalogEntry | None:
    """The catalog entry a directory's model card was rendered for (``fourd_hub.catalog_name``), if any."""
    from .model_card import card_metadata

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


# ----------------------------------------------------------------------------------------------
# Pushing


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
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(source.resolve(), target)
    except OSError:
        shutil.copyfile(source, target)


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
    copied: the upload reads them through links.

    Returns:
        The ``huggingface_hub`` commit info.
    """
    from .model_card import read_provenance, render_custom_model_card, render_model_card

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
    provenance = read_provenance(directory / "README.md")
    if entry is None and provenance is not None:
        entry = _catalog_entry_of_card(directory)
    if entry is not None:
        card = render_model_card(entry, provenance, repo_id=repo_id)
        title = entry.name
    elif (directory / "config.json").is_file():
        from transformers import AutoConfig  # our configs are registered by `import fourd_hub`

        config = AutoConfig.from_pretrained(directory)
        architecture = model_class_for(directory).__name__
        card = render_custom_model_card(config, architecture=architecture, repo_id=repo_id, provenance=provenance)
        title = architecture
    else:
        raise FileNotFoundError(f"{directory} has no config.json: not a saved fourd_hub model")
    with tempfile.TemporaryDirectory(prefix="fourd-hub-push-") as temp:
        staging = Path(temp)
        for file in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != "README.md"):
            if any(part.startswith(".") for part in file.relative_to(directory).parts):
                continue  # hidden files (caches, partial writes) are not part of the model
            _link_or_copy(file, staging / file.relative_to(directory))
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
