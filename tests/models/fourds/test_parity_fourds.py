"""Parity of 4DS with the original JAX implementation (fixtures in FOURD_HUB_REFERENCE_DIR).

Every case of ``cases.json`` whose model is 4DS goes through the real converter
(``convert_checkpoint``) and ``from_pretrained``; features, readout features and depth must match
the original's arrays to 1e-4 max-abs. Nothing here depends on the particular shapes of a case.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fourd_hub import FourDSForDepthEstimation, FourDSModel
from fourd_hub.conversion import convert_checkpoint

from conftest import config_from_case, fourds_cases, load_npz

TOLERANCE = 1e-4
pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def converted_cases(reference: Path, cases: dict, tmp_path_factory) -> dict[str, tuple[dict, Path, dict]]:
    out = {}
    selected = fourds_cases(cases)
    assert selected, "cases.json has no 4DS case"
    for name, case in selected.items():
        target = tmp_path_factory.mktemp(name) / "converted"
        convert_checkpoint(
            reference / f"{name}_checkpoint.npz", target, config=config_from_case(case), progress=False, verify=True
        )
        out[name] = (case, target, load_npz(reference / f"{name}_reference.npz"))
    return out


def _video(expected: dict) -> torch.Tensor:
    # The original's layout is B T H W C; ours is B T C H W.
    return torch.from_numpy(expected["video"]).permute(0, 1, 4, 2, 3)


def _max_abs(ours: torch.Tensor, theirs: np.ndarray) -> float:
    assert tuple(ours.shape) == theirs.shape, f"shape {tuple(ours.shape)} vs reference {theirs.shape}"
    return float(np.abs(ours.detach().numpy() - theirs).max())


def test_features_list_matches_original(converted_cases):
    for name, (case, directory, expected) in converted_cases.items():
        model = FourDSModel.from_pretrained(directory).eval()
        with torch.no_grad():
            out = model(_video(expected), output_features=True)
        reference_keys = sorted(k for k in expected if k.startswith("features_"))
        assert len(out.features) == len(reference_keys) == case["num_layers"] + 1
        for index, key in enumerate(reference_keys):
            error = _max_abs(out.features[index], expected[key])
            assert error <= TOLERANCE, f"{name} {key}: max-abs {error:.2e}"


def test_readout_features_and_depth_match_original(converted_cases):
    for name, (case, directory, expected) in converted_cases.items():
        model = FourDSForDepthEstimation.from_pretrained(directory).eval()
        with torch.no_grad():
            out = model(_video(expected))
        error = _max_abs(out.readout_features, expected["readout_features"])
        assert error <= TOLERANCE, f"{name} readout features: max-abs {error:.2e}"
        # The original's depth is B T H W 1; ours drops the channel axis.
        error = _max_abs(out.predicted_depth, expected["depth"][..., 0])
        assert error <= TOLERANCE, f"{name} depth: max-abs {error:.2e}"
