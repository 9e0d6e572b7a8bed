"""Test support for the hub layer: catalog entries for the reference checkpoints, and HF cache snapshots.

Also imported by the subprocesses of the hub tests (they put this directory on ``sys.path``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from fourd_hub.catalog import CatalogEntry, InputSpec

TESTS_DIR = Path(__file__).resolve().parent
#: Catalog name -> original file in the reference directory.
TEST_FILES = {
    "4ds-tiny-test": "fourds_tiny_checkpoint.npz",
    "moog-tiny-test": "moog_tiny_backbone_checkpoint.npz",
    "moog-tiny-test-points": "moog_tiny_points_checkpoint.npz",
}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _parameters(path: Path) -> int:
    with np.load(path, allow_pickle=False) as data:
        return int(sum(data[key].size for key in data.files))


def make_test_entries(reference: Path, cases: dict, **changes) -> dict[str, CatalogEntry]:
    """Catalog entries for the reference checkpoints, described like the released ones.

    ``changes`` maps an entry name to fields to replace (e.g. a wrong ``sha256``).
    """
    from conftest import moog_config_kwargs, moog_readout_kwargs
    from conftest import config_kwargs_from_case

    fourds_case, moog_case = cases["fourds_tiny"], cases["moog_tiny"]
    moog = moog_config_kwargs(moog_case)
    specs = {
        "4ds-tiny-test": dict(
            family="fourds", architecture="FourDSForDepthEstimation", preset="S",
            config_overrides=config_kwargs_from_case(fourds_case),
            input_spec=InputSpec(num_frames=fourds_case["num_frames"], image_size=tuple(fourds_case["image_size"])),
        ),
        "moog-tiny-test": dict(
            family="moog", architecture="MooGModel", preset="ego4d", config_overrides=moog,
            input_spec=InputSpec(num_frames=moog_case["num_frames"], image_size=tuple(moog_case["image_size"])),
        ),
        "moog-tiny-test-points": dict(
            family="moog", architecture="MooGForPointTracking", preset="ego4d", base_model="moog-tiny-test",
            config_overrides={**moog, "readout": moog_readout_kwargs(moog_case, "points")},
            input_spec=InputSpec(num_frames=moog_case["num_frames"], image_size=tuple(moog_case["image_size"])),
        ),
    }
    entries = {}
    for name, spec in specs.items():
        path = Path(reference) / TEST_FILES[name]
        values = dict(
            name=name, description=f"test entry for {path.name}", num_parameters=_parameters(path),
            original_file=path.name, file_size=path.stat().st_size, sha256=sha256_file(path), **spec,
        )
        values.update(changes.get(name, {}))
        entries[name] = CatalogEntry(**values)
    return entries


def write_hf_snapshot(cache: Path, repo_id: str, source: Path, revision: str = "0123456789abcdef0123456789abcdef01234567") -> Path:
    """Put the files of ``source`` into ``cache`` as huggingface_hub stores a download of ``repo_id``.

    Blobs named by sha256, relative symlinks in ``snapshots/<revision>``, ``refs/main``.
    """
    folder = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    snapshot = folder / "snapshots" / revision
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    for file in sorted(p for p in Path(source).rglob("*") if p.is_file()):
        blob = folder / "blobs" / sha256_file(file)
        shutil.copyfile(file, blob)
        link = snapshot / file.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(revision)
    return snapshot


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


# The owner of a staging directory in another process: loads fourd_hub/_files.py by its path (it
# needs only the standard library, so the subprocess starts in milliseconds, without torch),
# creates a staging directory, prints its path, then either kills itself with SIGKILL (as a run
# killed mid-conversion: no `finally` runs) or holds it until its stdin closes.
_STAGING_OWNER = r"""
import importlib.util, os, signal, sys
spec = importlib.util.spec_from_file_location("fourd_files", sys.argv[1])
files = importlib.util.module_from_spec(spec)
spec.loader.exec_module(files)
with files.staging_dir(sys.argv[2], sys.argv[3]) as staging:
    (staging.path / "weights.part").write_bytes(b"half a checkpoint")
    print(staging.path, flush=True)
    if sys.argv[4] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.read()
"""


def spawn_staging_owner(parent: Path, prefix: str, *, kill: bool):
    """Start a process owning a staging directory ``parent/<prefix>XXXXXXXX``; return (process, its path).

    With ``kill`` the process has SIGKILLed itself once this returns, leaving the directory as a
    killed run does; else it holds it until ``process.stdin`` is closed (or it is killed).
    """
    import subprocess
    import sys

    from fourd_hub import _files

    process = subprocess.Popen(
        [sys.executable, "-c", _STAGING_OWNER, _files.__file__, str(parent), prefix, "kill" if kill else "hold"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    line = process.stdout.readline().strip()
    if kill:
        process.wait(timeout=30)
    assert line and Path(line).is_dir(), f"the staging owner failed (exit {process.poll()})"
    return process, Path(line)
