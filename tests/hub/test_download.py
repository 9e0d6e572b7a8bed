"""fourd_hub.download: streamed, resumable, verified, atomic downloads against a local HTTP server."""

from __future__ import annotations

import hashlib
import logging
import random
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
from tqdm.auto import tqdm

import fourd_hub
from fourd_hub.hub import download
from fourd_hub.hub.download import DownloadError, DownloadedFile, download_file, partial_path

from http_server import FileServer

pytestmark = pytest.mark.hub

SIZE = 300_000
CUT = 100_000
NAME = "ckpt/model.bin"
FAST = dict(progress=False, retry_wait=0, chunk_size=16 * 1024)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # A proxy configured in the environment must not intercept the loopback test server.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture
def payload() -> bytes:
    return random.Random(1234).randbytes(SIZE)


@pytest.fixture
def server(payload):
    with FileServer({NAME: payload}) as running:
        yield running


@pytest.fixture
def dest(tmp_path) -> Path:
    return tmp_path / "out" / "model.bin"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_partial_path_sits_beside_the_destination(tmp_path):
    assert partial_path(tmp_path / "a.npz") == tmp_path / "a.npz.incomplete"
    assert partial_path(str(tmp_path / "a.npz")) == tmp_path / "a.npz.incomplete"


def test_plain_download(server, payload, dest):
    result = download_file(server.url + NAME, dest, **FAST)

    assert isinstance(result, DownloadedFile)
    assert dest.read_bytes() == payload
    assert result == DownloadedFile(dest, SIZE, sha(payload), resumed_from=0, requests=1)
    assert not partial_path(dest).exists()
    [get] = server.gets(NAME)
    assert get.range is None and get.status == 200
    assert get.headers["User-Agent"] == f"fourd_hub/{fourd_hub.__version__}"


def test_extra_headers_are_sent(server, dest):
    download_file(server.url + NAME, dest, headers={"Authorization": "Bearer t0k"}, **FAST)
    assert server.gets(NAME)[0].headers["Authorization"] == "Bearer t0k"


def test_cut_transfer_is_resumed_within_the_call(server, payload, dest, caplog):
    server.cut_after[NAME] = CUT
    with caplog.at_level(logging.WARNING, logger="fourd_hub.hub.download"):
        result = download_file(server.url + NAME, dest, expected_sha256=sha(payload), **FAST)

    assert dest.read_bytes() == payload
    first, second = server.gets(NAME)
    assert first.cut_at == CUT and first.range is None
    assert second.range == f"bytes={CUT}-" and second.status == 206
    assert result.requests == 2 and result.resumed_from == 0
    assert any(f"byte {CUT}" in message and "retry 1 of 5" in message for message in caplog.messages)


def test_cut_without_retries_keeps_the_partial_and_the_next_call_resumes(server, payload, dest):
    server.cut_after[NAME] = CUT
    with pytest.raises(DownloadError) as raised:
        download_file(server.url + NAME, dest, max_retries=0, **FAST)

    message = str(raised.value)
    assert str(partial_path(dest)) in message and f"byte {CUT}" in message
    assert not dest.exists()
    assert partial_path(dest).read_bytes() == payload[:CUT]

    result = download_file(server.url + NAME, dest, expected_size=SIZE, expected_sha256=sha(payload), **FAST)
    assert dest.read_bytes() == payload
    assert result.resumed_from == CUT and result.requests == 1
    assert server.gets(NAME)[-1].range == f"bytes={CUT}-"
    assert not partial_path(dest).exists()


def test_server_ignoring_ranges_restarts_from_zero(server, payload, dest):
    server.cut_after[NAME] = CUT
    server.ignore_range = True
    result = download_file(server.url + NAME, dest, expected_sha256=sha(payload), **FAST)

    assert dest.read_bytes() == payload
    second = server.gets(NAME)[1]
    assert second.range == f"bytes={CUT}-" and second.status == 200
    assert result.requests == 2


def test_wrong_checksum_deletes_everything(server, payload, dest):
    wrong = sha(b"something else")
    with pytest.raises(DownloadError) as raised:
        download_file(server.url + NAME, dest, expected_sha256=wrong.upper(), **FAST)

    assert wrong in str(raised.value) and sha(payload) in str(raised.value)
    assert not dest.exists() and not partial_path(dest).exists()


def test_expected_sha256_is_case_insensitive(server, payload, dest):
    result = download_file(server.url + NAME, dest, expected_sha256=sha(payload).upper(), **FAST)
    assert result.sha256 == sha(payload)


def test_corrupt_partial_is_caught_by_the_checksum(server, payload, dest):
    dest.parent.mkdir(parents=True)
    partial_path(dest).write_bytes(b"\0" * CUT)
    with pytest.raises(DownloadError, match="SHA-256"):
        download_file(server.url + NAME, dest, expected_sha256=sha(payload), **FAST)
    assert server.gets(NAME)[0].range == f"bytes={CUT}-"
    assert not partial_path(dest).exists() and not dest.exists()


def test_expected_size_mismatch_is_refused_before_streaming(server, dest):
    with pytest.raises(DownloadError) as raised:
        download_file(server.url + NAME, dest, expected_size=SIZE + 1, **FAST)

    assert str(SIZE) in str(raised.value) and str(SIZE + 1) in str(raised.value)
    assert "wrong file or mirror" in str(raised.value)
    assert not dest.exists() and not partial_path(dest).exists()
    assert len(server.gets(NAME)) == 1


def test_partial_larger_than_expected_size_is_discarded(server, payload, dest):
    dest.parent.mkdir(parents=True)
    partial_path(dest).write_bytes(b"x" * (SIZE + 10))
    result = download_file(server.url + NAME, dest, expected_size=SIZE, **FAST)
    assert dest.read_bytes() == payload
    assert result.resumed_from == 0 and server.gets(NAME)[0].range is None


def test_min_size_is_refused_before_streaming(server, dest):
    with pytest.raises(DownloadError) as raised:
        download_file(server.url + NAME, dest, min_size=SIZE + 1, **FAST)

    assert str(SIZE) in str(raised.value) and str(SIZE + 1) in str(raised.value)
    assert not dest.exists() and not partial_path(dest).exists()


def test_404_fails_at_once(server, dest):
    url = server.url + "missing.bin"
    with pytest.raises(DownloadError) as raised:
        download_file(url, dest, **FAST)

    assert "404" in str(raised.value) and url in str(raised.value)
    assert len(server.gets("missing.bin")) == 1
    assert not partial_path(dest).exists()


@pytest.mark.parametrize("status", [500, 503, 429])
def test_transient_status_is_retried(server, payload, dest, status):
    server.fail_next[NAME] = [status]
    result = download_file(server.url + NAME, dest, **FAST)
    assert dest.read_bytes() == payload
    assert result.requests == 2 and [get.status for get in server.gets(NAME)] == [status, 200]


def test_retries_run_out(server, dest):
    server.fail_next[NAME] = [500, 502, 503]
    with pytest.raises(DownloadError, match="after 2 retries"):
        download_file(server.url + NAME, dest, max_retries=2, **FAST)
    assert len(server.gets(NAME)) == 3 and not dest.exists()


def test_416_on_a_complete_partial_finishes_without_downloading(server, payload, dest):
    dest.parent.mkdir(parents=True)
    partial_path(dest).write_bytes(payload)
    result = download_file(server.url + NAME, dest, expected_sha256=sha(payload), **FAST)

    assert dest.read_bytes() == payload
    [get] = server.gets(NAME)
    assert get.range == f"bytes={SIZE}-" and get.status == 416
    assert result.resumed_from == SIZE and result.requests == 1


def test_416_on_a_partial_larger_than_the_file_restarts(server, payload, dest):
    dest.parent.mkdir(parents=True)
    partial_path(dest).write_bytes(b"x" * (SIZE + 5))
    result = download_file(server.url + NAME, dest, **FAST)

    assert dest.read_bytes() == payload
    assert [(get.range, get.status) for get in server.gets(NAME)] == [(f"bytes={SIZE + 5}-", 416), (None, 200)]
    assert result.requests == 2


def test_existing_destination_is_returned_without_requests(server, payload, dest):
    dest.parent.mkdir(parents=True)
    dest.write_bytes(payload)
    result = download_file(server.url + NAME, dest, expected_size=SIZE, expected_sha256=sha(payload), **FAST)

    assert result == DownloadedFile(dest, SIZE, sha(payload), resumed_from=SIZE, requests=0)
    assert server.requests == []

    with pytest.raises(DownloadError, match="delete it"):
        download_file(server.url + NAME, dest, expected_sha256=sha(b"other"), **FAST)
    with pytest.raises(DownloadError, match=str(SIZE - 1)):
        download_file(server.url + NAME, dest, expected_size=SIZE - 1, **FAST)
    assert server.requests == [] and dest.read_bytes() == payload


@pytest.mark.parametrize("as_url", [True, False], ids=["file-url", "plain-path"])
def test_local_sources(tmp_path, payload, dest, as_url):
    source = tmp_path / "mirror" / "model.bin"
    source.parent.mkdir()
    source.write_bytes(payload)
    url = source.as_uri() if as_url else str(source)

    result = download_file(url, dest, expected_size=SIZE, expected_sha256=sha(payload), **FAST)
    assert dest.read_bytes() == payload and result.requests == 1 and result.resumed_from == 0

    resumed = tmp_path / "resumed.bin"
    partial_path(resumed).write_bytes(payload[:CUT])
    result = download_file(url, resumed, expected_sha256=sha(payload), **FAST)
    assert resumed.read_bytes() == payload and result.resumed_from == CUT

    with pytest.raises(DownloadError, match=sha(payload)):
        download_file(url, tmp_path / "bad.bin", expected_sha256=sha(b"other"), **FAST)
    assert not (tmp_path / "bad.bin").exists() and not partial_path(tmp_path / "bad.bin").exists()

    with pytest.raises(DownloadError, match="does not exist"):
        download_file(str(tmp_path / "nope.bin"), tmp_path / "x.bin", **FAST)


def test_not_enough_disk_space_is_refused(server, dest, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(download.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(DownloadError) as raised:
        download_file(server.url + NAME, dest, **FAST)

    assert str(dest.parent) in str(raised.value) and "HF_HUB_CACHE" in str(raised.value)
    assert not dest.exists() and not partial_path(dest).exists()
    assert shutil.disk_usage is download.shutil.disk_usage  # the module's own shutil is the one patched


def test_keyboard_interrupt_keeps_the_partial(server, payload, dest, monkeypatch):
    class InterruptingBar(tqdm):
        def update(self, n=1):
            raise KeyboardInterrupt

    monkeypatch.setattr(download, "tqdm", InterruptingBar)
    with pytest.raises(KeyboardInterrupt):
        download_file(server.url + NAME, dest, **FAST)

    assert not dest.exists()
    assert partial_path(dest).read_bytes() == payload[:FAST["chunk_size"]]


def test_progress_bar_shows_the_description(server, dest, capsys):
    download_file(server.url + NAME, dest, progress=True, description="weights of 4DS", retry_wait=0)
    assert "weights of 4DS" in capsys.readouterr().err


def test_stalled_transfer_times_out_and_keeps_the_partial(server, payload, dest):
    server.chunk_delay = 0.5  # the first 64 KiB chunk arrives, then nothing within the timeout
    with pytest.raises(DownloadError) as raised:
        download_file(server.url + NAME, dest, max_retries=0, timeout=0.2, **FAST)

    kept = partial_path(dest).read_bytes()
    assert kept == payload[:len(kept)] and len(kept) > 0
    assert f"resumes from byte {len(kept)}" in str(raised.value) and not dest.exists()


# ----------------------------------------------------------------------------------------------
# A symlink planted at the partial's path is never written through


@pytest.fixture
def outside(tmp_path) -> Path:
    """A file outside the download's directory that a planted link points at."""
    path = tmp_path / "elsewhere" / "precious.txt"
    path.parent.mkdir()
    path.write_bytes(b"keep me")
    return path


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_a_symlink_at_the_partial_path_is_refused_and_its_target_untouched(server, dest, outside, dangling):
    target = outside.with_name("created-through-the-link") if dangling else outside
    dest.parent.mkdir(parents=True)
    partial_path(dest).symlink_to(target)

    with pytest.raises(DownloadError) as raised:
        download_file(server.url + NAME, dest, **FAST)

    message = str(raised.value)
    assert str(partial_path(dest)) in message and "symbolic link" in message and str(target) in message
    assert server.requests == [], "refused before any request"
    assert outside.read_bytes() == b"keep me" and not outside.with_name("created-through-the-link").exists()
    assert not dest.exists() and partial_path(dest).is_symlink(), "the link is reported, not silently removed"


@pytest.mark.parametrize("cut", [False, True], ids=["before-the-rename", "before-a-resume"])
def test_a_symlink_swapped_in_during_the_download_is_refused(server, payload, dest, outside, monkeypatch, cut):
    """The partial is replaced by a link mid-transfer: neither the resume nor the final rename goes through it."""
    if cut:
        server.cut_after[NAME] = CUT  # the retry reopens the partial, now a link

    class SwappingBar(tqdm):
        def update(self, n=1):
            if not partial_path(dest).is_symlink():
                partial_path(dest).unlink()
                partial_path(dest).symlink_to(outside)
            return super().update(n)

    monkeypatch.setattr(download, "tqdm", SwappingBar)
    with pytest.raises(DownloadError, match="symbolic link"):
        download_file(server.url + NAME, dest, **FAST)
    assert outside.read_bytes() == b"keep me"
    assert not dest.exists() and not dest.is_symlink()


def test_a_directory_at_the_partial_path_is_refused(server, dest):
    partial_path(dest).mkdir(parents=True)
    with pytest.raises(DownloadError, match="is a directory"):
        download_file(server.url + NAME, dest, **FAST)
    assert server.requests == [] and not dest.exists()


# ----------------------------------------------------------------------------------------------
# FOURD_HUB_REQUIRE_CHECKSUM


def test_require_checksum_refuses_unpinned_downloads_before_any_request(server, payload, dest, monkeypatch):
    monkeypatch.setenv("FOURD_HUB_REQUIRE_CHECKSUM", "1")
    with pytest.raises(DownloadError) as raised:
        download_file(server.url + NAME, dest, expected_size=SIZE, **FAST)
    message = str(raised.value)
    assert server.url + NAME in message and "FOURD_HUB_REQUIRE_CHECKSUM" in message and "no sha256" in message
    assert server.requests == [] and not dest.exists() and not partial_path(dest).exists()

    # A pinned download goes through.
    assert download_file(server.url + NAME, dest, expected_sha256=sha(payload), **FAST).sha256 == sha(payload)

    monkeypatch.setenv("FOURD_HUB_REQUIRE_CHECKSUM", "0")
    assert download_file(server.url + NAME, dest.with_name("other.bin"), **FAST).size == SIZE

    monkeypatch.setenv("FOURD_HUB_REQUIRE_CHECKSUM", "maybe")
    with pytest.raises(ValueError, match="FOURD_HUB_REQUIRE_CHECKSUM='maybe'"):
        download_file(server.url + NAME, dest.with_name("third.bin"), **FAST)
