"""fourd_hub._files staging directories: killed runs leave nothing behind after the next run, live ones are kept.

The converter and the training export stage in ``replacing_dir`` (``.<name>.partial-*``), the hub's
cache in ``staging_dir`` (``.converting-*``, ``snapshots/.<revision>.partial-*``): one code path.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from fourd_hub._files import OWNER_FILE_NAME, PARENT_LOCK_NAME, remove_stale_staging_dirs, replacing_dir, staging_dir

from hub_helpers import spawn_staging_owner

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL and flock (POSIX)")


def _hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_a_killed_runs_staging_dir_is_removed_by_the_next_run(tmp_path):
    final = tmp_path / "out"
    process, stale = spawn_staging_owner(tmp_path, ".out.partial-", kill=True)
    assert process.returncode == -signal.SIGKILL
    assert (stale / "weights.part").is_file(), "SIGKILL runs no cleanup: the directory is left"

    with replacing_dir(final) as staging:
        assert not stale.exists(), "removed before the new run stages"
        (staging / "config.json").write_text("{}")
    assert sorted(p.name for p in final.iterdir()) == ["config.json"], "no owner file in the result"
    assert _hidden(tmp_path) == [], "no staging directory and no lock file left"


def test_a_live_owners_staging_dir_is_kept_until_it_dies(tmp_path):
    final = tmp_path / "out"
    process, live = spawn_staging_owner(tmp_path, ".out.partial-", kill=False)
    try:
        with replacing_dir(final) as staging:
            (staging / "a").write_text("a")
        assert (live / "weights.part").read_bytes() == b"half a checkpoint"
        assert (live / OWNER_FILE_NAME).is_file()
    finally:
        process.kill()
        process.wait(timeout=30)
        process.stdin.close()
        process.stdout.close()
    assert remove_stale_staging_dirs(tmp_path, r"\.out\.partial-[a-z0-9_]{8}") == [live]
    assert _hidden(tmp_path) == [] and (final / "a").read_text() == "a"


def test_only_our_staging_dirs_are_ever_removed(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    work = tmp_path / "work"
    work.mkdir()
    (work / ".out.partial-linklink").symlink_to(outside, target_is_directory=True)  # a link, not a directory
    (work / ".out.partial-filefile").write_text("a file")
    decoys = [".out.partial-short", ".out.partial-ABCDEFGH", ".out.partial-abcdefghi", ".other.partial-abcdefgh",
              "out.partial-abcdefgh", ".out.partial-abcdefgh.bak"]
    for name in decoys:
        (work / name).mkdir()
        (work / name / "x").write_text("x")
    (work / ".out.partial-old_runa").mkdir()  # a stale one without an owner file (an older fourd_hub's)

    with replacing_dir(work / "out") as staging:
        (staging / "a").write_text("a")

    assert not (work / ".out.partial-old_runa").exists()
    assert (outside / "precious").read_text() == "keep" and (work / ".out.partial-linklink").is_symlink()
    assert (work / ".out.partial-filefile").read_text() == "a file"
    for name in decoys:
        assert (work / name / "x").read_text() == "x", name


def test_a_failed_assembly_leaves_nothing_and_keeps_the_old_result(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old").write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with replacing_dir(final) as staging:
            (staging / "new").write_text("new")
            raise RuntimeError("boom")
    assert sorted(p.name for p in final.iterdir()) == ["old"]
    assert _hidden(tmp_path) == []


def test_a_staging_dir_is_committed_beside_itself_only(tmp_path):
    with staging_dir(tmp_path, ".x.partial-") as staging:
        with pytest.raises(ValueError, match="not beside"):
            staging.commit(tmp_path / "sub" / "x")
    assert _hidden(tmp_path) == [] and not (tmp_path / PARENT_LOCK_NAME).exists()
