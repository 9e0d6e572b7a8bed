"""The examples run as documented."""

from __future__ import annotations

import subprocess
import sys

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
