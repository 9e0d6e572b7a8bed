"""Converted copies of catalog checkpoints in the Hugging Face cache: made once, found again, never half-written.

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
import os
import shutil
from pathlib import Path
from typing import Iterator

from .._files import sha256_of, staging_dir, write_text_atomic
from ..catalog import NOT_PINNED_REASON, CatalogEntry, get_entry
from .download import DownloadError, download_file
from .settings import REQUIRE_CHECKSUM_ENV, _is_remote, _say, checksum_required, hf_cache_dir, hub_org, is_offline, original_url

#: The ref (``refs/<this>`` in a repo's cache folder) naming the locally converted snapshot.
CONVERTED_REF = "fourd-hub-converted"
#: Bumped when the converter's output changes, so stale converted copies are redone (2: standalone
#: heads are ordinary directories whose config.json names their backbone).
CONVERSION_FORMAT = 2
# The staging directories of conversions and of snapshot commits, of any revision (a sha1 digest):
# those of killed runs are removed by the next run (fourd_hub._files.staging_dir).
_CONVERTING_STAGING = r"\.converting-[0-9a-f]{40}-"
_SNAPSHOT_STAGING = r"\.[0-9a-f]{40}\.partial-"

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
    if (snapshot / "config.json").is_file():
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
    blobs, snapshots = folder / "blobs", folder / "snapshots"
    blobs.mkdir(parents=True, exist_ok=True)
    snapshots.mkdir(parents=True, exist_ok=True)
    # Staging directories of commits killed half way (any revision) are removed by the next one.
    with staging_dir(snapshots, f".{revision}.partial-", stale_prefix=_SNAPSHOT_STAGING) as partial:
        for file in sorted(p for p in staging.rglob("*") if p.is_file()):
            blob = blobs / sha256_of(file)
            if blob.exists():
                file.unlink()
            else:
                os.replace(file, blob)
            link = partial.path / file.relative_to(staging)
            link.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.symlink(os.path.relpath(blob, link.parent), link)
            except OSError:  # no symlinks here (e.g. Windows without developer mode): as huggingface_hub, copy
                shutil.copyfile(blob, link)
        # A snapshot already there was left by a commit interrupted before its ref was written: replaced.
        snapshot = partial.commit(snapshots / revision)
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
            :func:`original_url` (resumable, checked against the catalog's size and sha256 when
            known; the released files have none: "not pinned", see ``CatalogEntry.checksum_note``).
        org: the Hub organisation whose repo folder receives the copy (default :func:`hub_org`).
        cache_dir: the Hugging Face cache (default ``HF_HUB_CACHE``).
        local_files_only: do not download (default ``HF_HUB_OFFLINE``); a local mirror still works.
        force: convert again even if a current conversion is cached.
        keep_original: keep the downloaded ``.npz`` in the cache's ``blobs/`` (default: deleted
            once converted; it is as large as the converted weights).
        progress: progress bars and messages on stderr.

    Returns:
        The snapshot directory (``config.json`` + safetensors + processor config + model card, or
        a standalone head's config.json naming its backbone).

    Raises:
        FileNotFoundError: no released weights, no local copy while offline, or ``original`` missing.
        fourd_hub.hub.download.DownloadError: the download failed or was refused (size, checksum;
            no pinned sha256 while ``FOURD_HUB_REQUIRE_CHECKSUM=1``, before any byte is fetched).
        fourd_hub.conversion.ConversionError: the file is not the checkpoint the entry describes.
    """
    from ..cards import write_conversion_card
    from ..conversion import CheckpointError, convert_checkpoint

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
            if entry.sha256 is None and checksum_required():
                raise DownloadError(
                    f"{entry.name}: {REQUIRE_CHECKSUM_ENV}=1 refuses downloading {entry.original_file} from {url}: "
                    f"its checksum is not pinned ({NOT_PINNED_REASON}). Unset {REQUIRE_CHECKSUM_ENV}, or fetch the file "
                    f"yourself, verify it and pass it with `fourd-hub download {entry.name} --original "
                    f"/path/to/{entry.original_file}`."
                )
            approximate = entry.file_size or (entry.file_size_mb or 0) * 10**6 or entry.num_parameters * 4
            _check_free_space(folder, 2 * approximate, f"downloading and converting {entry.name}")
            _say(
                f"{entry.name}: no converted copy on the Hub; downloading the original {entry.original_file} from {url} "
                f"and converting it into {folder} (once: later loads read the cache); {entry.checksum_note}",
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
        # The staging directory is removed on any error; one left by a conversion that was killed
        # (SIGKILL, power cut: no `finally` runs) is removed here by the next conversion of any revision.
        try:
            with staging_dir(folder, f".converting-{revision}-", stale_prefix=_CONVERTING_STAGING) as staging:
                convert_checkpoint(
                    source,
                    staging.path / "model",
                    name=entry.name,
                    progress=progress,
                    source_sha256=downloaded.sha256 if downloaded is not None else None,
                    on_staged=lambda directory, result: write_conversion_card(result, directory),
                )
                snapshot = commit_to_cache(staging.path / "model", folder, revision)
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
        if downloaded is not None and not keep_original:
            downloaded.path.unlink(missing_ok=True)
    _say(f"{entry.name}: converted into {snapshot}", progress)
    return snapshot


