"""The hub layer (fourd_hub/hub.py): names -> directories, conversion into the HF cache, push_to_hub.

The Hub itself is out of reach: "the Hub" is a local HTTP server (``HF_ENDPOINT``) that knows no
repo, the original files are served by the same server (``FOURD_HUB_ORIGINAL_URL``), and uploads
are caught at huggingface_hub's API (``HfApi.create_repo`` / ``HfApi.upload_folder``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import fourd_hub
from fourd_hub import FourDSConfig, FourDSForDepthEstimation, FourDSModel, MooGForBoxTracking, MooGForPointTracking, MooGModel
from fourd_hub.catalog import CATALOG
from fourd_hub.conversion import convert_checkpoint
from fourd_hub.hub.download import DownloadError
from fourd_hub.hub import CONVERTED_REF, find_converted, hub_org, repo_cache_folder, resolve_model_dir

from conftest import REPO_ROOT, tiny_fourds_kwargs
from http_server import FileServer
from hub_helpers import TEST_FILES, make_test_entries, sha256_file, write_hf_snapshot

pytestmark = pytest.mark.hub


# ----------------------------------------------------------------------------------------------
# Fixtures: a test catalog, a server playing both the Hub (404 for everything) and the bucket


@pytest.fixture
def entries(reference, cases, monkeypatch):
    values = make_test_entries(reference, cases)
    for entry in values.values():
        monkeypatch.setitem(CATALOG, entry.name, entry)
    return values


@pytest.fixture
def server(reference):
    with FileServer({f"ckpt/{name}": reference / name for name in TEST_FILES.values()}) as running:
        yield running


@pytest.fixture
def hub_env(tmp_path, server, monkeypatch):
    """An empty HF cache, the Hub endpoint on the test server, originals served from it, online."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "ENDPOINT", server.url.rstrip("/"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("FOURD_HUB_ORG", raising=False)
    monkeypatch.setenv("FOURD_HUB_ORIGINAL_URL", server.url + "ckpt/")
    return cache


def _go_offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# ----------------------------------------------------------------------------------------------
# Resolution basics


def test_a_directory_is_used_as_is(tmp_path):
    assert resolve_model_dir(tmp_path) == tmp_path
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="is a file"):
        resolve_model_dir(tmp_path / "file.bin")


def test_catalog_name_resolves_to_the_cached_hub_repo(tmp_path, monkeypatch):
    monkeypatch.delenv("FOURD_HUB_ORG", raising=False)
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text("{}")
    snapshot = write_hf_snapshot(tmp_path, "fourd-hub/4ds-b-dist-e", source)
    assert resolve_model_dir("4ds-b-dist-e", cache_dir=tmp_path, local_files_only=True) == snapshot
    assert resolve_model_dir("4DS-B-DIST-E", cache_dir=tmp_path, local_files_only=True) == snapshot
    monkeypatch.setenv("FOURD_HUB_ORG", "my-mirror")
    assert hub_org() == "my-mirror"
    mirrored = write_hf_snapshot(tmp_path, "my-mirror/4ds-b-dist-e", source)
    assert resolve_model_dir("4ds-b-dist-e", cache_dir=tmp_path, local_files_only=True) == mirrored


def test_offline_and_uncached_names_say_what_to_download_and_where(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        resolve_model_dir("4ds-b-dist-e-scannet-depth", cache_dir=tmp_path, local_files_only=True)
    message = str(error.value)
    assert "scaling4d_dist_b_depth.npz" in message and "https://storage.googleapis.com/" in message
    assert "fourd-hub download 4ds-b-dist-e-scannet-depth --original" in message
    assert str(tmp_path / "models--fourd-hub--4ds-b-dist-e-scannet-depth") in message
    with pytest.raises(FileNotFoundError, match="without released weights"):
        resolve_model_dir("4ds-s", cache_dir=tmp_path, local_files_only=True)
    with pytest.raises(FileNotFoundError, match="someone/model is not in the local cache"):
        resolve_model_dir("someone/model", cache_dir=tmp_path, local_files_only=True)
    with pytest.raises(FileNotFoundError, match="not a directory, a catalog name"):
        resolve_model_dir("./no/such/dir", cache_dir=tmp_path, local_files_only=True)
    assert not any(tmp_path.rglob("*.npz*")), "nothing may be downloaded offline"


# ----------------------------------------------------------------------------------------------
# A pre-populated cache, offline, by name


@pytest.fixture
def cached_tiny_backbone(tmp_path, monkeypatch):
    """A tiny FourDSModel stored in an HF cache under the repo 4ds-b-dist-e resolves to, offline."""
    from huggingface_hub import constants

    torch.manual_seed(0)
    model = FourDSModel(FourDSConfig(**tiny_fourds_kwargs())).eval()
    model.save_pretrained(tmp_path / "saved")
    cache = tmp_path / "hf-cache"
    write_hf_snapshot(cache, "fourd-hub/4ds-b-dist-e", tmp_path / "saved")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("FOURD_HUB_ORG", raising=False)
    _go_offline(monkeypatch)
    return model, cache


def test_from_pretrained_by_catalog_name_loads_the_cached_checkpoint_offline(cached_tiny_backbone):
    model, _ = cached_tiny_backbone
    by_class = FourDSModel.from_pretrained("4ds-b-dist-e")
    by_function = fourd_hub.from_pretrained("4ds-b-dist-e")
    assert type(by_function) is FourDSModel
    _assert_same_weights(by_class, model)
    _assert_same_weights(by_function, model)
    assert by_class.config._name_or_path == "4ds-b-dist-e"
    assert FourDSConfig.from_pretrained("4ds-b-dist-e").hidden_size == model.config.hidden_size
    video = torch.rand(1, 4, 3, 32, 24)
    with torch.no_grad():
        torch.testing.assert_close(by_class(video).last_hidden_state, model(video).last_hidden_state, rtol=0, atol=0)


def test_a_wrong_family_or_a_head_is_refused_with_the_class_to_use(cached_tiny_backbone):
    with pytest.raises(ValueError, match=r"holds a 4DS model \(FourDSModel\) and MooGModel is a MooG model; load it with FourDSModel"):
        MooGModel.from_pretrained("4ds-b-dist-e")
    with pytest.raises(TypeError, match="backbone= is only for standalone readout heads"):
        FourDSModel.from_pretrained("4ds-b-dist-e", backbone="moog-ego4d")
    with pytest.raises(ValueError, match="load its configuration with FourDSConfig"):
        fourd_hub.MooGConfig.from_pretrained("4ds-b-dist-e")


def test_config_only_entries_give_their_preset_without_any_download(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    _go_offline(monkeypatch)
    # The preset, naming the class the entry describes (as a saved config.json does).
    assert FourDSConfig.from_pretrained("4ds-l").to_dict() == {**FourDSConfig.from_preset("L").to_dict(), "architectures": ["FourDSModel"]}
    assert FourDSConfig.from_pretrained("4ds-l", readout_depth=0.75).readout_depth == 0.75
    with pytest.raises(FileNotFoundError, match=r"configuration without released weights.*FourDSConfig.from_pretrained\('4ds-s'\)"):
        FourDSModel.from_pretrained("4ds-s")
    assert not any(tmp_path.iterdir())


def _run(script: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "tests"), str(REPO_ROOT)]), **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def test_transformers_auto_classes_load_our_repos_without_remote_code(cached_tiny_backbone, models, tmp_path):
    """A fresh process: plain transformers Auto classes, after `import fourd_hub`, from an offline HF cache."""
    _, cache = cached_tiny_backbone
    write_hf_snapshot(cache, "someone/depth", models["fourds-depth"])
    result = _run(
        """
        import json, torch, transformers, fourd_hub
        backbone = transformers.AutoModel.from_pretrained("fourd-hub/4ds-b-dist-e")
        depth = transformers.AutoModelForDepthEstimation.from_pretrained("someone/depth")
        config = transformers.AutoConfig.from_pretrained("someone/depth")
        by_name = fourd_hub.FourDSModel.from_pretrained("4ds-b-dist-e")
        same = all(torch.equal(a, b) for a, b in zip(backbone.state_dict().values(), by_name.state_dict().values()))
        print(json.dumps([type(backbone).__name__, type(depth).__name__, type(config).__name__, same]))
        """,
        {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == ["FourDSModel", "FourDSForDepthEstimation", "FourDSConfig", True]


def test_a_hub_copy_in_the_cache_wins_over_converting(cached_tiny_backbone, reference, tmp_path, monkeypatch):
    """Resolution order: with the Hub repo cached, a reachable original file is not even looked at."""
    monkeypatch.setenv("FOURD_HUB_ORIGINAL_URL", str(reference))
    directory = resolve_model_dir("4ds-b-dist-e")
    folder = directory.parent.parent
    assert directory.parent.name == "snapshots" and (directory / "config.json").is_file()
    assert (folder / "refs" / "main").read_text() == directory.name
    assert not (folder / "refs" / CONVERTED_REF).exists()


# ----------------------------------------------------------------------------------------------
# No Hub copy: the original file, downloaded and converted once into the cache


def test_catalog_names_without_a_hub_repo_are_downloaded_and_converted_once(entries, server, hub_env, reference, cases, tmp_path):
    from conftest import config_from_case

    model = fourd_hub.from_pretrained("4ds-tiny-test")
    assert type(model) is FourDSForDepthEstimation
    expected = tmp_path / "by-hand"
    convert_checkpoint(reference / TEST_FILES["4ds-tiny-test"], expected, config=config_from_case(cases["fourds_tiny"]), progress=False)
    _assert_same_weights(model, FourDSForDepthEstimation.from_pretrained(expected))

    # The cache holds it in huggingface_hub's layout, under its own ref, without the original file.
    entry = entries["4ds-tiny-test"]
    folder = repo_cache_folder(entry)
    snapshot = find_converted(entry)
    assert snapshot is not None and snapshot.parent.parent == folder
    assert (folder / "refs" / CONVERTED_REF).read_text() == snapshot.name
    assert not (folder / "refs" / "main").exists()
    files = {p.name for p in snapshot.iterdir()}
    assert {"config.json", "model.safetensors", "video_preprocessor_config.json", "README.md"} <= files
    for link in snapshot.iterdir():
        assert link.is_symlink()
        blob = link.resolve()
        assert blob.parent == folder / "blobs" and blob.name == sha256_file(blob)
    assert {p.name for p in (folder / "blobs").iterdir()} == {sha256_file(p) for p in snapshot.iterdir()}
    assert not list(folder.rglob("*.incomplete")) and not list(folder.rglob("*.npz"))
    from fourd_hub.cards import read_provenance

    provenance = read_provenance(snapshot / "README.md")
    assert provenance.original_sha256 == sha256_file(reference / TEST_FILES["4ds-tiny-test"])

    # One download; later loads (class, pipeline, offline) read the cache.
    assert len(server.gets("/ckpt/" + TEST_FILES["4ds-tiny-test"])) == 1
    again = FourDSForDepthEstimation.from_pretrained("4ds-tiny-test")
    _assert_same_weights(again, model)
    assert resolve_model_dir("4ds-tiny-test", local_files_only=True) == snapshot
    assert len(server.gets("/ckpt/" + TEST_FILES["4ds-tiny-test"])) == 1


def test_a_transfer_cut_half_way_is_resumed(entries, server, hub_env, reference):
    name = "/ckpt/" + TEST_FILES["4ds-tiny-test"]
    size = (reference / TEST_FILES["4ds-tiny-test"]).stat().st_size
    server.cut_after[name.lstrip("/")] = size // 2
    fourd_hub.from_pretrained("4ds-tiny-test")
    requests = server.gets(name)
    assert len(requests) == 2
    assert requests[0].range is None and requests[1].range == f"bytes={size // 2}-"
    assert find_converted(entries["4ds-tiny-test"]) is not None


def test_a_wrong_checksum_is_refused_and_leaves_nothing(reference, cases, server, hub_env, monkeypatch):
    wrong = "0" * 64
    entry = make_test_entries(reference, cases, **{"4ds-tiny-test": {"sha256": wrong}})["4ds-tiny-test"]
    monkeypatch.setitem(CATALOG, entry.name, entry)
    with pytest.raises(DownloadError) as error:
        FourDSForDepthEstimation.from_pretrained("4ds-tiny-test")
    assert wrong in str(error.value) and sha256_file(reference / TEST_FILES["4ds-tiny-test"]) in str(error.value)
    folder = repo_cache_folder(entry)
    assert find_converted(entry) is None
    leftovers = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    assert leftovers == [], leftovers


def test_a_wrong_size_is_refused_before_downloading(reference, cases, server, hub_env, monkeypatch):
    size = (reference / TEST_FILES["4ds-tiny-test"]).stat().st_size
    entry = make_test_entries(reference, cases, **{"4ds-tiny-test": {"file_size": size + 1}})["4ds-tiny-test"]
    monkeypatch.setitem(CATALOG, entry.name, entry)
    with pytest.raises(DownloadError, match=f"{size + 1}.*{size}|{size}.*{size + 1}"):
        fourd_hub.from_pretrained("4ds-tiny-test")
    assert find_converted(entry) is None


def test_offline_with_a_local_mirror_or_a_local_original(entries, reference, hub_env, monkeypatch, tmp_path):
    """Offline: a mirror directory works; without one, `fourd-hub download NAME --original FILE` does."""
    from fourd_hub.cli import main

    _go_offline(monkeypatch)
    monkeypatch.setenv("FOURD_HUB_ORIGINAL_URL", "https://mirror.invalid/ckpt/")
    with pytest.raises(FileNotFoundError, match="fourd-hub download 4ds-tiny-test --original"):
        FourDSForDepthEstimation.from_pretrained("4ds-tiny-test")
    assert main(["download", "4ds-tiny-test", "--original", str(reference / TEST_FILES["4ds-tiny-test"]), "--quiet"]) == 0
    assert type(fourd_hub.from_pretrained("4ds-tiny-test")) is FourDSForDepthEstimation

    monkeypatch.setenv("FOURD_HUB_ORIGINAL_URL", str(reference))  # a local mirror directory
    backbone = MooGModel.from_pretrained("moog-tiny-test")
    assert find_converted(entries["moog-tiny-test"]) is not None
    assert (reference / TEST_FILES["moog-tiny-test"]).is_file(), "a mirror's file is read, not moved"
    assert backbone.config.hidden_size == entries["moog-tiny-test"].config_overrides["hidden_size"]


def test_a_catalog_head_is_converted_with_its_base_backbone(entries, server, hub_env, models):
    """A standalone MooG head by name: both files are fetched and converted; the task model equals the hand-made one."""
    model = MooGForPointTracking.from_pretrained("moog-tiny-test-points")
    by_function = fourd_hub.from_pretrained("moog-tiny-test-points")
    expected = MooGForPointTracking.from_backbone(models["moog-backbone"], head=models["moog-points"])
    _assert_same_weights(model, expected)
    _assert_same_weights(by_function, expected)
    assert len(server.gets("/ckpt/" + TEST_FILES["moog-tiny-test"])) == 1
    assert len(server.gets("/ckpt/" + TEST_FILES["moog-tiny-test-points"])) == 1
    # As transformers loads the base model of any task checkpoint, the backbone class on a head
    # directory gives the backbone the head names (loaded like any name).
    backbone = MooGModel.from_pretrained("moog-tiny-test-points")
    assert type(backbone) is MooGModel
    _assert_same_weights(backbone, MooGModel.from_pretrained("moog-tiny-test"))
    with pytest.raises(ValueError, match="standalone MooGForPointTracking head; load it with MooGForPointTracking"):
        MooGForBoxTracking.from_pretrained("moog-tiny-test-points")


_RACE_SCRIPT = """
import json, os, sys, time
from pathlib import Path
from hub_helpers import make_test_entries
import fourd_hub
from fourd_hub.catalog import CATALOG

reference = Path(os.environ["TEST_REFERENCE"])
cases = json.loads((reference / "cases.json").read_text())
for entry in make_test_entries(reference, cases).values():
    CATALOG[entry.name] = entry
print("ready", flush=True)
while not Path(os.environ["TEST_GO"]).exists():
    time.sleep(0.01)
model = fourd_hub.from_pretrained("4ds-tiny-test")
print(json.dumps({"class": type(model).__name__, "path": str(model.config._name_or_path)}))
"""


def test_two_processes_asking_at_once_convert_once(entries, server, hub_env, reference, tmp_path):
    """Both processes start the moment the test says go; the second waits on huggingface_hub's lock."""
    server.chunk_delay = 0.3  # about 5 s of transfer: the second process certainly arrives during it
    go = tmp_path / "go"
    env = {
        **{key: value for key, value in os.environ.items() if key != "HF_HUB_OFFLINE"},
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "tests"), str(REPO_ROOT)]),
        "HF_HUB_CACHE": str(hub_env),
        "HF_ENDPOINT": server.url.rstrip("/"),
        "FOURD_HUB_ORIGINAL_URL": server.url + "ckpt/",
        "TEST_REFERENCE": str(reference),
        "TEST_GO": str(go),
    }
    processes = [
        subprocess.Popen([sys.executable, "-c", _RACE_SCRIPT], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for process in processes:
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
    go.write_text("go")
    outputs = [process.communicate(timeout=180) for process in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
        assert json.loads(out.splitlines()[-1])["class"] == "FourDSForDepthEstimation"
    assert len(server.gets("/ckpt/" + TEST_FILES["4ds-tiny-test"])) == 1
    waited = [err for _, err in outputs if "waiting for another process converting 4ds-tiny-test" in err]
    assert len(waited) == 1, [err[-2000:] for _, err in outputs]
    snapshots = list((repo_cache_folder(entries["4ds-tiny-test"]) / "snapshots").iterdir())
    assert len(snapshots) == 1


# ----------------------------------------------------------------------------------------------
# push_to_hub, caught at huggingface_hub's upload API


@pytest.fixture
def uploads(monkeypatch):
    """Replace HfApi.create_repo / upload_folder; record what would be uploaded (file bytes included)."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoUrl

    calls = {"create_repo": [], "upload_folder": []}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"].append({"repo_id": repo_id, **kwargs})
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        folder = Path(folder_path)
        files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        calls["upload_folder"].append({"repo_id": repo_id, "files": files, **kwargs})
        return f"https://huggingface.co/{repo_id}/commit/0000"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def _state_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return load(data)


def test_push_to_hub_uploads_weights_config_processor_and_our_card(cached_tiny_backbone, uploads):
    from fourd_hub.cards import card_metadata

    model = FourDSModel.from_pretrained("4ds-b-dist-e")
    assert model.push_to_hub("me/tuned-4ds", private=True, commit_message="tuned") == "https://huggingface.co/me/tuned-4ds/commit/0000"
    assert uploads["create_repo"] == [{"repo_id": "me/tuned-4ds", "private": True, "exist_ok": True, "repo_type": "model"}]
    (upload,) = uploads["upload_folder"]
    assert upload["repo_id"] == "me/tuned-4ds" and upload["commit_message"] == "tuned"
    files = upload["files"]
    assert set(files) == {"config.json", "model.safetensors", "video_preprocessor_config.json", "README.md"}
    state = _state_from_bytes(files["model.safetensors"])
    for key, value in model.state_dict().items():
        assert torch.equal(state[key], value), key
    config = json.loads(files["config.json"])
    assert config["model_type"] == "fourds" and config["architectures"] == ["FourDSModel"]
    processor = json.loads(files["video_preprocessor_config.json"])
    assert processor["video_processor_type"] == "FourDSVideoProcessor"
    card = files["README.md"].decode()
    metadata = card_metadata(card)
    assert metadata["library_name"] == "fourd_hub"
    assert metadata["base_model"] == "fourd-hub/4ds-b-dist-e"
    assert "me/tuned-4ds" in card
    assert "transformers" != metadata["library_name"] and "Model card for Model ID" not in card


def test_push_cli_converts_a_catalog_entry_and_uploads_it_with_its_card(entries, server, hub_env, reference, uploads, capsys, tmp_path, monkeypatch):
    from fourd_hub.cli import main
    from fourd_hub.cards import card_metadata

    original = reference / TEST_FILES["4ds-tiny-test"]
    assert main(["push", "4ds-tiny-test", "me/tiny-depth", "--original", str(original), "--quiet"]) == 0
    assert server.requests == [], "with --original nothing is downloaded"
    (upload,) = uploads["upload_folder"]
    files = upload["files"]
    assert {"config.json", "model.safetensors", "video_preprocessor_config.json", "README.md"} == set(files)
    snapshot = find_converted(entries["4ds-tiny-test"])
    assert files["model.safetensors"] == (snapshot / "model.safetensors").read_bytes()
    metadata = card_metadata(files["README.md"].decode())
    assert metadata["fourd_hub"]["catalog_name"] == "4ds-tiny-test"
    assert metadata["fourd_hub"]["provenance"]["original_sha256"] == sha256_file(original)
    assert 'from_pretrained("me/tiny-depth")' in files["README.md"].decode()
    assert "me/tiny-depth" in capsys.readouterr().out

    # A standalone head pushes its head files; the card names its base model.
    assert main(["push", "moog-tiny-test-points", "me/points", "--quiet"]) == 0
    files = uploads["upload_folder"][-1]["files"]
    assert {"config.json", "model.safetensors", "README.md"} <= set(files)
    assert json.loads(files["config.json"])["backbone"] == "moog-tiny-test"
    assert card_metadata(files["README.md"].decode())["base_model"] == "fourd-hub/moog-tiny-test"

    # What was pushed loads back by repo id, as its card's snippet says: the head finds its backbone.
    pushed = tmp_path / "pushed-points"
    pushed.mkdir()
    for name, data in files.items():
        (pushed / name).write_bytes(data)
    write_hf_snapshot(hub_env, "me/points", pushed)
    expected = MooGForPointTracking.from_pretrained("moog-tiny-test-points")  # converts the backbone too
    _go_offline(monkeypatch)
    assert 'MooGForPointTracking.from_pretrained("me/points")' in files["README.md"].decode()
    _assert_same_weights(MooGForPointTracking.from_pretrained("me/points"), expected)


def test_push_refuses_bad_names_and_repo_ids(entries, hub_env, uploads, tmp_path):
    from fourd_hub.cli import main

    assert main(["push", "no-such-model", "me/x", "--quiet"]) == 2
    assert main(["push", "4ds-s", "me/x", "--quiet"]) == 2
    assert main(["push", str(tmp_path), "a/b/c", "--quiet"]) == 2
    assert uploads["upload_folder"] == []


# ----------------------------------------------------------------------------------------------
# Every model card's usage snippet runs, with tiny stand-ins under the catalog names


def _stand_ins(models: dict[str, Path], root: Path) -> dict[str, Path]:
    """architecture -> a small saved model of that class with the catalog's input spec."""
    from fourd_hub import RVMModel
    from fourd_hub.models.rvm.configuration_rvm import debug_config as rvm_debug_config
    from fourd_hub.processing import video_processor_for_config

    small = dict(tiny_fourds_kwargs(), patch_size=[2, 16, 16], num_frames=16, image_size=[224, 224], num_hidden_layers=2)
    torch.manual_seed(0)
    made = {}
    for cls, readout in ((FourDSModel, None), (FourDSForDepthEstimation, {"num_params": 32, "num_heads": 4, "decoding_patch_size": [2, 8, 8]})):
        model = cls(FourDSConfig(**small, readout=readout))
        model.save_pretrained(root / cls.__name__)
        video_processor_for_config(model.config).save_pretrained(root / cls.__name__)
        made[cls.__name__] = root / cls.__name__
    made["MooGModel"] = models["moog-backbone"]  # the converted reference backbones and heads fit each other
    made["MooGForPointTracking"] = models["moog-points"]
    made["MooGForBoxTracking"] = models["moog-boxes"]
    rvm = RVMModel(rvm_debug_config(patch_size=[16, 16], image_size=[256, 256], num_frames=16))
    rvm.save_pretrained(root / "RVMModel")
    video_processor_for_config(rvm.config).save_pretrained(root / "RVMModel")
    made["RVMModel"] = root / "RVMModel"
    return made


def test_every_model_card_usage_snippet_runs(models, video, tmp_path, monkeypatch):
    import re
    import shutil

    from huggingface_hub import constants

    from fourd_hub.cards import render_model_card

    cache = tmp_path / "hf-cache"
    stand_ins = _stand_ins(models, tmp_path / "stand-ins")
    for entry in CATALOG.values():
        if entry.has_weights:
            write_hf_snapshot(cache, entry.hub_repo_id("fourd-hub"), stand_ins[entry.architecture])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("FOURD_HUB_ORG", raising=False)
    _go_offline(monkeypatch)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copyfile(video[0], work / "clip.mp4")
    monkeypatch.chdir(work)
    ran = []
    for entry in CATALOG.values():
        (block,) = re.findall(r"```python\n(.*?)```", render_model_card(entry), flags=re.S)
        # Config-only entries build their (up to 21B-parameter) architecture: on the meta device here.
        device = torch.device("cpu") if entry.has_weights else torch.device("meta")
        with device, contextlib.redirect_stdout(io.StringIO()):
            exec(compile(block, f"{entry.name} model card", "exec"), {})
        ran.append(entry.name)
    assert ran == list(CATALOG)


# ----------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("served", ["zeros", "another npz"])
def test_a_wrong_file_on_the_mirror_is_refused_deleted_and_fetched_again_once_fixed(served, reference, cases, server, hub_env, monkeypatch):
    """Without a catalog checksum the converter is the check; a refused download is not kept."""
    from fourd_hub.conversion import CheckpointError

    entry = make_test_entries(reference, cases, **{"4ds-tiny-test": {"sha256": None, "file_size": None}})["4ds-tiny-test"]
    monkeypatch.setitem(CATALOG, entry.name, entry)
    path = "ckpt/" + TEST_FILES["4ds-tiny-test"]
    good = server.files[path]
    size = good.stat().st_size
    server.files[path] = bytes(size) if served == "zeros" else (reference / "moog_tiny_reference.npz").read_bytes()
    with pytest.raises(CheckpointError, match="is not the 4ds-tiny-test checkpoint and was deleted"):
        fourd_hub.from_pretrained("4ds-tiny-test")
    folder = repo_cache_folder(entry)
    assert [p for p in folder.rglob("*") if p.is_file()] == [] and find_converted(entry) is None
    server.files[path] = good
    assert type(fourd_hub.from_pretrained("4ds-tiny-test")) is FourDSForDepthEstimation
    assert len(server.gets(path)) == 2


def test_a_damaged_cached_conversion_is_redone(entries, server, hub_env):
    entry = entries["4ds-tiny-test"]
    snapshot = Path(fourd_hub.hub.resolve_model_dir("4ds-tiny-test"))
    (snapshot / "config.json").resolve().unlink()  # e.g. a cache cleaner removed a blob
    assert find_converted(entry) is None
    assert type(fourd_hub.from_pretrained("4ds-tiny-test")) is FourDSForDepthEstimation
    assert find_converted(entry) is not None and len(server.gets("ckpt/" + TEST_FILES["4ds-tiny-test"])) == 2
    fourd_hub.hub.resolve_model_dir("4ds-tiny-test", force_download=True)
    assert len(server.gets("ckpt/" + TEST_FILES["4ds-tiny-test"])) == 3


def test_bad_names_and_originals_are_clear_errors(entries, hub_env, reference, tmp_path):
    from fourd_hub.hub import convert_into_cache

    for bad in (None, 123, "", "   "):
        with pytest.raises(TypeError, match="catalog name, a directory or a Hub repo id"):
            resolve_model_dir(bad)
    with pytest.raises(TypeError):
        fourd_hub.from_pretrained(123)
    with pytest.raises(FileNotFoundError, match="pass the downloaded fourds_tiny_checkpoint.npz"):
        convert_into_cache("4ds-tiny-test", original=tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="sha256 differs from the catalog"):
        convert_into_cache("4ds-tiny-test", original=reference / TEST_FILES["moog-tiny-test"])
    with pytest.raises(KeyError, match="not in the fourd_hub catalog"):
        convert_into_cache("no-such-model")
    with pytest.raises(FileNotFoundError, match="without released weights: there is nothing to convert"):
        convert_into_cache("4ds-s")
    assert find_converted(entries["4ds-tiny-test"]) is None


def test_push_to_hub_refuses_an_invalid_repo_id_before_uploading(cached_tiny_backbone, uploads):
    model, _ = cached_tiny_backbone
    for bad in ("a/b/c", "", "bad repo", "-x/y"):
        with pytest.raises(ValueError, match="invalid Hub repo id"):
            model.push_to_hub(bad)
    assert uploads["create_repo"] == [] and uploads["upload_folder"] == []


# ----------------------------------------------------------------------------------------------
# Hardening: no path escapes on push, nothing left behind by killed conversions, "not pinned"


def _saved_config_dir(path: Path) -> Path:
    """A directory with a FourDSModel's config.json only (a push reads nothing else)."""
    FourDSConfig(**tiny_fourds_kwargs(), architectures=["FourDSModel"]).save_pretrained(path)
    return path


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_push_refuses_a_symlink_leading_out_of_the_model_directory(uploads, tmp_path, kind):
    from fourd_hub.hub import push_model_dir

    secret = tmp_path / "home" / "secret"
    secret.parent.mkdir()
    if kind == "file":
        secret.write_text("token")
    else:
        secret.mkdir()
        (secret / "id_rsa").write_text("key")
    directory = _saved_config_dir(tmp_path / "model")
    (directory / "weights").mkdir()
    (directory / "weights" / "extra.safetensors").symlink_to(secret, target_is_directory=kind == "directory")

    with pytest.raises(ValueError) as raised:
        push_model_dir(directory, "me/model", progress=False)
    message = str(raised.value)
    assert "weights/extra.safetensors" in message and str(secret) in message and "outside" in message
    assert uploads["create_repo"] == [] and uploads["upload_folder"] == [], "no upload attempted"


def test_push_follows_symlinks_that_stay_inside_the_model_directory(uploads, tmp_path):
    from fourd_hub.hub import push_model_dir

    directory = _saved_config_dir(tmp_path / "model")
    (directory / "shards").mkdir()
    (directory / "shards" / "part.bin").write_bytes(b"inside")
    (directory / "alias.bin").symlink_to("shards/part.bin")  # relative, inside
    (directory / "shards-link").symlink_to(directory / "shards", target_is_directory=True)  # not walked twice
    (directory / ".cache").mkdir()
    (directory / ".cache" / "x").write_text("hidden")

    push_model_dir(directory, "me/model", progress=False)
    (upload,) = uploads["upload_folder"]
    assert set(upload["files"]) == {"config.json", "README.md", "alias.bin", "shards/part.bin"}
    assert upload["files"]["alias.bin"] == b"inside"

    (directory / "broken.bin").symlink_to("shards/missing.bin")
    with pytest.raises(FileNotFoundError, match="broken.bin is a broken symlink"):
        push_model_dir(directory, "me/model", progress=False)
    assert len(uploads["upload_folder"]) == 1


def test_staging_dirs_of_killed_conversions_are_removed_by_the_next_one(entries, hub_env, reference, tmp_path):
    """SIGKILLed conversions leave .converting-* (and snapshot .partial-*) dirs: the next conversion removes
    them, never a live one's, nor anything else in the cache."""
    from fourd_hub.hub import convert_into_cache, converted_revision
    from hub_helpers import spawn_staging_owner

    entry = entries["4ds-tiny-test"]
    folder = repo_cache_folder(entry)
    older = "f" * 40  # a conversion of another (older) revision
    _, killed = spawn_staging_owner(folder, f".converting-{older}-", kill=True)
    _, killed_commit = spawn_staging_owner(folder / "snapshots", f".{older}.partial-", kill=True)
    live, held = spawn_staging_owner(folder, f".converting-{converted_revision(entry)}-", kill=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data").write_text("keep")
    (folder / f".converting-{older}-linklink").symlink_to(outside, target_is_directory=True)
    (folder / ".converting-notes").mkdir()
    try:
        original = reference / TEST_FILES["4ds-tiny-test"]
        snapshot = convert_into_cache(entry, original=original, progress=False)
        assert not killed.exists() and not killed_commit.exists()
        assert (held / "weights.part").is_file(), "a live conversion's staging directory is kept"
        assert (outside / "data").read_text() == "keep" and (folder / ".converting-notes").is_dir()
        assert sorted(p.name for p in (folder / "snapshots").iterdir()) == [snapshot.name]
    finally:
        live.kill()
        live.wait(timeout=30)
        live.stdin.close()
        live.stdout.close()
    # Its owner killed too: the next conversion removes it.
    convert_into_cache(entry, original=original, force=True, progress=False)
    assert not held.exists()
    hidden = sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
    assert hidden == sorted([".converting-notes", f".converting-{older}-linklink"])


def test_unpinned_downloads_say_so_and_can_be_refused(reference, cases, server, hub_env, monkeypatch, caplog):
    import logging

    from fourd_hub.hub import convert_into_cache

    entry = make_test_entries(reference, cases, **{"4ds-tiny-test": {"sha256": None}})["4ds-tiny-test"]
    monkeypatch.setitem(CATALOG, entry.name, entry)
    path = "ckpt/" + TEST_FILES["4ds-tiny-test"]

    monkeypatch.setenv("FOURD_HUB_REQUIRE_CHECKSUM", "1")
    with pytest.raises(DownloadError) as raised:
        fourd_hub.from_pretrained("4ds-tiny-test")
    message = str(raised.value)
    assert "FOURD_HUB_REQUIRE_CHECKSUM=1" in message and TEST_FILES["4ds-tiny-test"] in message
    assert "--original" in message and "not pinned" in message
    assert server.gets(path) == [], "refused before any byte is fetched"
    # A local original the user chose is not a download: still accepted.
    convert_into_cache(entry, original=reference / TEST_FILES["4ds-tiny-test"], progress=False)

    monkeypatch.delenv("FOURD_HUB_REQUIRE_CHECKSUM")
    with caplog.at_level(logging.INFO, logger="fourd_hub.hub.settings"):
        convert_into_cache(entry, force=True, progress=False)
    assert any(
        "checksum: not pinned (no sha256 published for the original file; checked by size floor and strict conversion)" in m
        for m in caplog.messages
    ), caplog.messages
    assert len(server.gets(path)) == 1
