"""The examples run as documented."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO_ROOT


def test_feature_example_runs():
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "fourds_features.py"), "--size", "S"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "readout_features: (1, 16, 196, 384)" in result.stdout


def test_moog_tracking_example_runs():
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "moog_tracking.py"), "--frames", "16", "--size", "32"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "frames   0- 15: tracks (1, 16, 2, 2)" in result.stdout


def _run_example(monkeypatch, capsys, name: str, *argv) -> str:
    """Run examples/<name> in this process (as `python examples/<name> ARGS` would) and return its stdout."""
    import runpy

    monkeypatch.setattr(sys, "argv", [name, *map(str, argv)])
    runpy.run_path(str(REPO_ROOT / "examples" / name), run_name="__main__")
    return capsys.readouterr().out


@pytest.mark.e2e
def test_task_examples_run_on_a_video(video, models, tmp_path, monkeypatch, capsys):
    path = video[0]
    out = _run_example(monkeypatch, capsys, "depth_estimation.py", path, "--model", models["fourds-depth"],
                       "--output", tmp_path / "d.mp4", "--arrays", tmp_path / "d.npz")
    assert "depth (37, 72, 96)" in out and (tmp_path / "d.mp4").is_file() and (tmp_path / "d.npz").is_file()
    out = _run_example(monkeypatch, capsys, "point_tracking.py", path, "--model", models["moog-points"],
                       "--backbone", models["moog-backbone"], "--output", tmp_path / "t.json")
    assert "tracks (37, 64, 2)" in out
    out = _run_example(monkeypatch, capsys, "box_tracking.py", path, "--model", models["moog-boxes"],
                       "--backbone", models["moog-backbone"], "--boxes", "3,10,10,50,40", "--output", tmp_path / "b.mp4")
    assert "boxes (37, 1, 4)" in out
    out = _run_example(monkeypatch, capsys, "camera_pose.py", path, "--model", models["fourds-pose"], "--output", tmp_path / "p.json")
    assert "13 key frames" in out
    out = _run_example(monkeypatch, capsys, "feature_extraction.py", path, "--model", models["fourds-backbone"],
                       "--output", tmp_path / "f.npz", "--fps", 12)
    assert "features (19, 4, 3, 32) (T, h, w, D)" in out
    out = _run_example(monkeypatch, capsys, "video_reconstruction.py", path, "--model", models["moog-backbone"],
                       "--output", tmp_path / "r.mp4")
    assert "predicted (37, 72, 96, 3)" in out and "PSNR" in out
