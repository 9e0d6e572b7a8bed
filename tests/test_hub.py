"""Model name resolution (fourd_hub/hub.py): directories, catalog names through the HF cache, errors."""

from __future__ import annotations

import pytest

from fourd_hub.hub import hub_org, resolve_model_dir


def _cache_snapshot(cache, repo_id: str, files: dict[str, str]):
    """A Hugging Face cache entry for ``repo_id`` in the layout huggingface_hub itself writes."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for name, text in files.items():
        (snapshot / name).write_text(text)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def test_a_directory_is_used_as_is(tmp_path):
    assert resolve_model_dir(tmp_path) == tmp_path
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="is a file"):
        resolve_model_dir(tmp_path / "file.bin")


def test_catalog_name_resolves_to_the_cached_hub_repo(tmp_path, monkeypatch):
    monkeypatch.delenv("FOURD_HUB_ORG", raising=False)
    snapshot = _cache_snapshot(tmp_path, "fourd-hub/4ds-b-dist-e", {"config.json": "{}"})
    assert resolve_model_dir("4ds-b-dist-e", cache_dir=tmp_path, local_files_only=True) == snapshot
    assert resolve_model_dir("4DS-B-DIST-E", cache_dir=tmp_path, local_files_only=True) == snapshot
    monkeypatch.setenv("FOURD_HUB_ORG", "my-mirror")
    assert hub_org() == "my-mirror"
    mirrored = _cache_snapshot(tmp_path, "my-mirror/4ds-b-dist-e", {"config.json": "{}"})
    assert resolve_model_dir("4ds-b-dist-e", cache_dir=tmp_path, local_files_only=True) == mirrored


def test_uncached_names_say_how_to_get_the_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="fourd-hub convert scaling4d_dist_b_depth.npz"):
        resolve_model_dir("4ds-b-dist-e-scannet-depth", cache_dir=tmp_path, local_files_only=True)
    with pytest.raises(FileNotFoundError, match="without released weights"):
        resolve_model_dir("4ds-s", cache_dir=tmp_path, local_files_only=True)
    with pytest.raises(FileNotFoundError, match="someone/model is not in the local cache"):
        resolve_model_dir("someone/model", cache_dir=tmp_path, local_files_only=True)
    with pytest.raises(FileNotFoundError, match="not a directory, a catalog name"):
        resolve_model_dir("./no/such/dir", cache_dir=tmp_path, local_files_only=True)
