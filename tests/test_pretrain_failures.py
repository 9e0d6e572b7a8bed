"""Pretraining that fails leaves nothing behind and says why in one line: an invalid model or data
source writes nothing, a full disk while checkpointing leaves no ``step_*.tmp``, and a truncated
checkpoint is refused on resume and on export, naming it. (One process, debug recipe.)"""

from __future__ import annotations

import errno
import re
import shutil
from pathlib import Path

import pytest
import torch.distributed.checkpoint.filesystem as dcp_filesystem

from fourd_hub.conversion import CheckpointError
from fourd_hub.training import checkpoint as ckpt
from fourd_hub.training import pretrain as pretrain_module
from fourd_hub.training.checkpoint import export_checkpoint, list_checkpoints, verify_checkpoint
from fourd_hub.training.pretrain import main, pretrain
from fourd_hub.training.recipes import get_recipe

pytestmark = pytest.mark.training

TWO_STEPS = dict(max_steps=2, checkpoint_every=1, keep_checkpoints=2)


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ----------------------------------------------------------------------------------------------
# 1. Nothing is written before the model and the data are validated


@pytest.mark.parametrize("bad, says", [
    (dict(data="{missing}"), "{missing}"),                             # no such directory / file
    (dict(data="{tmp}/*.none"), "matches no files"),                  # a glob matching nothing
    (dict(data="{garbage}"), "could be decoded"),                      # videos exist, none decodes
    (dict(model=dict(num_decoder_layers=9)), "num_decoder_layers"),    # a model that cannot be built (4 blocks)
], ids=["missing", "empty-glob", "undecodable", "model-config"])
def test_invalid_model_or_data_writes_nothing(tmp_path, bad, says):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "broken.mp4").write_bytes(b"not a video" * 100)
    names = dict(missing=tmp_path / "none", tmp=tmp_path, garbage=videos)
    if "data" in bad:
        bad = dict(data=bad["data"].format(**names))
    if "model" in bad:
        bad = dict(model={**get_recipe("debug").model, **bad["model"]})
    says = says.format(**names)
    recipe = get_recipe("debug", max_steps=1, **bad)

    new_dir = tmp_path / "a" / "b" / "run"  # its parents do not exist either
    with pytest.raises((ValueError, FileNotFoundError), match=re.escape(says)):
        pretrain(recipe, new_dir, progress=False)
    assert not (tmp_path / "a").exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises((ValueError, FileNotFoundError), match=re.escape(says)):
        pretrain(recipe, existing, progress=False)
    assert leftovers(existing) == []  # still the empty directory it was


def test_command_line_invalid_data_creates_no_output_dir(tmp_path, capsys):
    assert main(["--recipe", "debug", "--output-dir", str(tmp_path / "run"), "--data", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(tmp_path / "none") in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_failed_recipe_write_removes_the_directories_it_created(tmp_path, monkeypatch):
    def disk_full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pretrain_module, "write_text_atomic", disk_full)
    with pytest.raises(OSError):
        pretrain(get_recipe("debug", max_steps=1), tmp_path / "a" / "run", progress=False)
    assert leftovers(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# 2. A failed checkpoint save: no step_*.tmp, one line saying "disk full" with the path


def _fail_on_call(number: int, error: OSError, real):
    """A stand-in for ``real`` that raises ``error`` on its ``number``-th call (1-based)."""
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            raise error
        return real(*args, **kwargs)

    return wrapper


@pytest.mark.parametrize("where, code", [
    ("dcp.save", errno.ENOSPC),            # the whole DCP save raises
    ("dcp file write", errno.ENOSPC),      # a shard write inside DCP (DCP wraps it in CheckpointException)
    ("rng file", errno.EDQUOT),            # the quota runs out while writing the RNG state file
])
def test_disk_full_while_checkpointing_leaves_no_tmp(tmp_path, monkeypatch, where, code):
    error = OSError(code, "No space left on device" if code == errno.ENOSPC else "Disk quota exceeded")
    if where == "dcp.save":
        monkeypatch.setattr(ckpt.dcp, "save", _fail_on_call(2, error, ckpt.dcp.save))
    elif where == "dcp file write":
        # _write_item runs once per tensor: fail within the second checkpoint (the first wrote 1 item file).
        real = dcp_filesystem._write_item
        state = {"saves": 0}
        real_save = ckpt.dcp.save

        def counting_save(*args, **kwargs):
            state["saves"] += 1
            return real_save(*args, **kwargs)

        def write_item(*args, **kwargs):
            if state["saves"] == 2:
                raise error
            return real(*args, **kwargs)

        monkeypatch.setattr(ckpt.dcp, "save", counting_save)
        monkeypatch.setattr(dcp_filesystem, "_write_item", write_item)
    else:
        real_write_bytes = Path.write_bytes
        rng_writes = []

        def write_bytes(self, data):
            if self.name.startswith("rng_rank"):
                rng_writes.append(self)
                if len(rng_writes) == 2:
                    raise error
            return real_write_bytes(self, data)

        monkeypatch.setattr(Path, "write_bytes", write_bytes)

    run = tmp_path / "run"
    with pytest.raises(OSError) as caught:
        pretrain(get_recipe("debug", **TWO_STEPS), run, progress=False, export=False)
    message = str(caught.value)
    step_2 = run / "checkpoints" / "step_00000002"
    assert caught.value.errno == code and "disk full" in message and str(step_2) in message
    assert len(message.splitlines()) == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000001"]  # no step_*.tmp
    verify_checkpoint(run / "checkpoints" / "step_00000001")  # the earlier checkpoint is whole

    if where == "dcp.save":  # with room again, the run resumes from it and finishes
        monkeypatch.undo()
        result = pretrain(get_recipe("debug", **TWO_STEPS), run, progress=False, export=False)
        assert result.start_step == 1 and [p.name for p in list_checkpoints(run)] == ["step_00000001", "step_00000002"]


def test_other_write_errors_also_clean_up_the_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt.dcp, "save", _fail_on_call(1, OSError(errno.EIO, "Input/output error"), ckpt.dcp.save))
    run = tmp_path / "run"
    with pytest.raises(OSError) as caught:
        pretrain(get_recipe("debug", **TWO_STEPS), run, progress=False, export=False)
    assert caught.value.errno == errno.EIO and "disk full" not in str(caught.value)
    assert list((run / "checkpoints").iterdir()) == []


def test_command_line_disk_full_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ckpt.dcp, "save", _fail_on_call(1, OSError(errno.ENOSPC, "No space left on device"), ckpt.dcp.save))
    run = tmp_path / "run"
    assert main(["--recipe", "debug", "--output-dir", str(run), "--max-steps", "1", "--no-progress", "--no-export"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "disk full" in err[0] and str(run / "checkpoints" / "step_00000001") in err[0]
    assert list((run / "checkpoints").iterdir()) == []


# ----------------------------------------------------------------------------------------------
# 3. Truncated DCP shards: refused on resume and on export, naming the checkpoint


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory) -> Path:
    """A finished debug run with checkpoints at steps 1 and 2."""
    run = tmp_path_factory.mktemp("ckpt") / "run"
    pretrain(get_recipe("debug", **TWO_STEPS), run, progress=False, export=False)
    return run


def _truncate(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


@pytest.mark.parametrize("name, fraction", [
    ("__0_0.distcp", 0.5), ("__0_0.distcp", 0.0), (".metadata", 0.5), (".metadata", 0.0), ("trainer_state.json", 0.5),
])
def test_truncated_checkpoint_is_refused_on_resume_and_export(two_checkpoints, tmp_path, name, fraction, capsys):
    run = tmp_path / "run"
    shutil.copytree(two_checkpoints, run)
    damaged = run / "checkpoints" / "step_00000002"
    _truncate(damaged / name, fraction)

    def check(error: BaseException) -> None:
        message = str(error)
        assert len(message.splitlines()) == 1 and str(damaged) in message
        assert "truncated or corrupt" in message and "step_00000001" in message  # what to use instead

    with pytest.raises(CheckpointError) as caught:
        pretrain(get_recipe("debug", **TWO_STEPS), run, progress=False, export=False)
    check(caught.value)
    for source in (damaged, run):  # the step directory itself, or the run (its latest)
        with pytest.raises(CheckpointError) as caught:
            export_checkpoint(source, tmp_path / "export")
        check(caught.value)
    assert not (tmp_path / "export").exists()
    assert main(["export", str(damaged), str(tmp_path / "export")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(damaged) in err[0] and "truncated or corrupt" in err[0]

    # Doing what the message says (deleting it) resumes from the earlier checkpoint.
    shutil.rmtree(damaged)
    result = pretrain(get_recipe("debug", **TWO_STEPS), run, progress=False, export=False)
    assert result.start_step == 1 and sorted(result.losses) == [1]


def test_only_checkpoint_truncated_says_there_is_no_earlier_one(two_checkpoints, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(two_checkpoints, run)
    shutil.rmtree(run / "checkpoints" / "step_00000001")
    _truncate(run / "checkpoints" / "step_00000002" / "__0_0.distcp", 0.9)
    with pytest.raises(CheckpointError, match="no earlier checkpoint"):
        verify_checkpoint(run / "checkpoints" / "step_00000002")
