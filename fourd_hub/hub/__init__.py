"""The hub layer: where a name points, the Hugging Face cache, downloads of original files, pushes.

Torch-free and below the models: the model classes reach it through
:mod:`fourd_hub.modeling_utils`, and it reaches the converter only through generic code
(:mod:`fourd_hub.conversion`, which asks the family registry).

- :mod:`.settings`: organisation, mirror, cache directory, offline mode, catalog look-ups;
- :mod:`.resolve`: :func:`resolve_model_dir` (directory -> Hub repo -> earlier conversion ->
  original file downloaded and converted once);
- :mod:`.cache`: converted copies in the Hugging Face cache (:func:`convert_into_cache`);
- :mod:`.download`: streamed, resumable, checked downloads (:func:`download_file`);
- :mod:`.push`: :func:`push_model` (a loaded model) and :func:`push_model_dir` (a catalog entry or
  a saved directory).
"""

from .cache import CONVERSION_FORMAT, CONVERTED_REF, commit_to_cache, convert_into_cache, converted_revision, find_converted, repo_cache_folder
from .download import DownloadError, download_file
from .push import check_repo_id, push_model, push_model_dir, upload_model_folder
from .resolve import resolve_model_dir
from .settings import HUB_KWARGS, catalog_entry_for, hf_cache_dir, hub_org, is_offline, original_url, original_url_base, split_hub_kwargs

__all__ = [
    "CONVERSION_FORMAT",
    "CONVERTED_REF",
    "DownloadError",
    "HUB_KWARGS",
    "catalog_entry_for",
    "check_repo_id",
    "commit_to_cache",
    "convert_into_cache",
    "converted_revision",
    "download_file",
    "find_converted",
    "hf_cache_dir",
    "hub_org",
    "is_offline",
    "original_url",
    "original_url_base",
    "push_model",
    "push_model_dir",
    "repo_cache_folder",
    "resolve_model_dir",
    "split_hub_kwargs",
    "upload_model_folder",
]
