"""Shared fixtures: the reference directory (parity contract) and tiny configurations.

Parity contract: the reference directory is ``$FOURD_HUB_REFERENCE_DIR`` or, when unset,
``../shared/reference`` beside the repository root. If the variable is set and the directory is
missing, parity tests fail; if it is unset and the default is missing (a user's clone), they skip.
"""

from __future__ import annotations

import copy
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


def config_kwargs_from_case(case: dict) -> dict:
    """FourDSConfig fields of a cases.json 4DS case (everything from the case, nothing hard-coded)."""
    return dict(
        hidden_size=case["width"],
        num_hidden_layers=case["num_layers"],
        intermediate_size=case["mlp_size"],
        num_attention_heads=case["num_heads"],
        patch_size=case["patch_size"],
        num_frames=case["num_frames"],
        image_size=case["image_size"],
        readout_depth=case["readout_depth"],
        readout={
            "task": "depth",
            "num_params": case["readout_num_params"],
            "num_heads": case["readout_num_heads"],
            "decoding_patch_size": case["readout_decoding_patch_size"],
        },
    )


def config_from_case(case: dict):
    from fourd_hub import FourDSConfig

    return FourDSConfig(**config_kwargs_from_case(case))


def tiny_fourds_kwargs(**overrides) -> dict:
    """A 4DS small enough for CPU tests in milliseconds (the package's debug preset); H != W on purpose."""
    from fourd_hub.models.fourds.configuration_fourds import FOURDS_DEBUG

    return {**copy.deepcopy(FOURDS_DEBUG), **overrides}


@pytest.fixture
def tiny_video() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(2, 4, 3, 32, 24, generator=generator)


def moog_cases(cases: dict) -> dict[str, dict]:
    return {name: case for name, case in cases.items() if case.get("model") == "MooG"}


def moog_config_kwargs(case: dict) -> dict:
    """MooGConfig fields of a cases.json MooG case (everything from the case, nothing hard-coded)."""

    def spec(values: dict, **extra) -> dict:
        return dict(
            num_layers=values["num_layers"], qkv_size=values["qkv_size"], num_heads=values["num_heads"],
            mlp_size=values["mlp_size"], **extra,
        )

    encoder, decoder = case["encoder"], case["decoder"]
    transformer = encoder["transformer"]
    return dict(
        hidden_size=case["token_dim"],
        num_tokens=case["num_tokens"],
        num_frames=case["num_frames"],
        image_size=case["image_size"],
        encoder_conv_features=encoder["conv_features"],
        encoder_kernel_size=encoder["kernel"],
        encoder_strides=encoder["strides"],
        encoder_fourier_bases=encoder["fourier_bases"],
        encoder_position_update=encoder["pos_update"],
        # A zero-layer transformer has no attention: its qkv size / heads / MLP are unused placeholders.
        encoder_transformer=dict(
            num_layers=transformer["num_layers"], hidden_size=transformer["hidden_size"],
            qkv_size=transformer.get("qkv_size", transformer["hidden_size"]), num_heads=transformer.get("num_heads", 1),
            mlp_size=transformer.get("mlp_size", transformer["hidden_size"]),
        ),
        predictor=spec(case["predictor_sa"]),
        corrector=spec(case["predictor_ca"]),
        decoder=spec(decoder, fourier_bases=decoder["fourier_bases"], position_update=decoder["pos_update"]),
        state_layer_norm_eps=case["state_layer_norm_epsilon"],
    )


def moog_readout_kwargs(case: dict, task: str) -> dict:
    """ReadoutConfig fields of a case's points/boxes head."""
    spec = case[f"{task}_head"]
    return dict(
        task=task, num_params=spec["num_params"], num_heads=spec["num_heads"], num_frames=case["num_frames"],
        query_fourier_bases=spec["query_fourier_bases"], query_mlp_sizes=spec["query_mlp"],
        temporal_tile_size=spec["temporal_tile_size"], output_activation=spec["output_activation"],
        predict_visibility=spec["predict_visibility"], use_certainty=spec.get("use_certainty", False),
        certainty_threshold=spec.get("certainty_threshold", 0.5),
    )


def tiny_moog_kwargs(**overrides) -> dict:
    """A MooG small enough for CPU tests in milliseconds (the package's debug preset); H != W on purpose."""
    from fourd_hub.models.moog.configuration_moog import MOOG_DEBUG

    return {**copy.deepcopy(MOOG_DEBUG), **overrides}


# The end-to-end video: (frames, height, width, fps).
E2E_VIDEO = (37, 72, 96, 24)


@pytest.fixture(scope="session")
def video(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """(path, decoded frames): 37 frames of 96x72 at 24 fps, H.264, moving textured shapes."""
    from fourd_hub import load_video
    from video_factory import moving_shapes_frames, write_test_video

    count, height, width, fps = E2E_VIDEO
    path = write_test_video(tmp_path_factory.mktemp("video") / "shapes.mp4", moving_shapes_frames(count, height, width), fps=fps)
    frames, _ = load_video(path)
    return path, frames


@pytest.fixture(scope="session")
def models(reference, cases, tmp_path_factory) -> dict[str, Path]:
    """Model directories for end-to-end tests: converted reference checkpoints and tiny random models."""
    from fourd_hub import FourDSConfig, FourDSForCameraPoseEstimation, FourDSForPointTracking, FourDSModel
    from fourd_hub import MooGConfig, MooGForDepthEstimation
    from fourd_hub.conversion import convert_checkpoint

    root = tmp_path_factory.mktemp("models")
    dirs = {}
    convert_checkpoint(
        reference / "fourds_tiny_checkpoint.npz", root / "fourds-depth", config=config_from_case(cases["fourds_tiny"]), progress=False
    )
    dirs["fourds-depth"] = root / "fourds-depth"
    moog_case = cases["moog_tiny"]
    convert_checkpoint(
        reference / "moog_tiny_backbone_checkpoint.npz", root / "moog-backbone", config=MooGConfig(**moog_config_kwargs(moog_case)), progress=False
    )
    dirs["moog-backbone"] = root / "moog-backbone"
    for task in ("points", "boxes"):
        config = MooGConfig(**moog_config_kwargs(moog_case), readout=moog_readout_kwargs(moog_case, task))
        convert_checkpoint(reference / f"moog_tiny_{task}_checkpoint.npz", root / f"moog-{task}", config=config, progress=False)
        dirs[f"moog-{task}"] = root / f"moog-{task}"
    torch.manual_seed(0)
    small_head = {"num_params": 32, "num_heads": 4}
    for name, cls, readout in (
        ("fourds-points", FourDSForPointTracking, dict(small_head, query_mlp_sizes=[32, 32], temporal_tile_size=2)),
        ("fourds-pose", FourDSForCameraPoseEstimation, small_head),
    ):
        cls(FourDSConfig(**tiny_fourds_kwargs(readout=readout))).save_pretrained(root / name)
        dirs[name] = root / name
    FourDSModel(FourDSConfig(**tiny_fourds_kwargs())).save_pretrained(root / "fourds-backbone")
    dirs["fourds-backbone"] = root / "fourds-backbone"
    MooGForDepthEstimation(MooGConfig(**tiny_moog_kwargs())).save_pretrained(root / "moog-depth")
    dirs["moog-depth"] = root / "moog-depth"
    return dirs


@pytest.fixture(scope="session")
def bad_files(video, tmp_path_factory) -> dict[str, Path]:
    """Broken inputs: a missing path, a zero-byte file, a truncated mp4, a text file named .mp4, one frame."""
    from video_factory import write_test_video

    path, frames = video
    fps = E2E_VIDEO[3]
    root = tmp_path_factory.mktemp("bad")
    data = path.read_bytes()
    files = {"missing": root / "missing.mp4", "empty": root / "empty.mp4", "truncated": root / "truncated.mp4", "text": root / "notes.mp4"}
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["text"].write_text("this is not a video\n")
    files["one-frame"] = write_test_video(root / "one.mp4", frames[:1], fps=fps)
    return files
