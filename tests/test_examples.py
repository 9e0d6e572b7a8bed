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
