"""Shared fixtures: the reference directory (parity contract) and tiny configurations.

Parity contract: the reference directory is ``$FOURD_HUB_REFERENCE_DIR`` or, when unset,
``../shared/reference`` beside the repository root. If the variable is set and the directory is
missing, parity tests fail; if it is unset and the default is missing (a user's clone), they skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE_DIR = REPO_ROOT.parent / "shared" / "reference"


def reference_dir() -> Path:
    configured = os.environ.get("FOURD_HUB_REFERENCE_DIR")
    if configured:
        path = Path(configured)
        if not path.is_dir():
            pytest.fail(f"FOURD_HUB_REFERENCE_DIR={configured} is set but is not a directory")
        return path
    if not DEFAULT_REFERENCE_DIR.is_dir():
        pytest.skip(f"no reference outputs: set FOURD_HUB_REFERENCE_DIR (default {DEFAULT_REFERENCE_DIR} is missing)")
    return DEFAULT_REFERENCE_DIR


@pytest.fixture(scope="session")
def reference() -> Path:
    return reference_dir()


@pytest.fixture(scope="session")
def cases(reference: Path) -> dict:
    return json.loads((reference / "cases.json").read_text())


def fourds_cases(cases: dict) -> dict[str, dict]:
    return {name: case for name, case in cases.items() if case.get("model") == "4DS"}


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def tiny_fourds_kwargs(**overrides) -> dict:
    """A 4DS small enough for CPU tests in milliseconds; odd sizes on purpose (H != W)."""
    values = dict(
        hidden_size=32, num_hidden_layers=3, intermediate_size=48, num_attention_heads=4,
        patch_size=[2, 8, 8], num_frames=4, image_size=[32, 24],
    )
    values.update(overrides)
    return values


@pytest.fixture
def tiny_video() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(2, 4, 3, 32, 24, generator=generator)
