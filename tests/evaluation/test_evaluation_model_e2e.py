"""``fourd-hub evaluate davis|jhmdb --model DIR`` end to end with a tiny random RVM (debug config,
saved to a temporary directory) on the synthetic datasets: the pipelines run on every video, the
saved predictions are in the scoring layouts, and scoring them again gives the same numbers.

A random model's scores mean nothing; what is checked is the wiring: each video's frames and first
annotation reach the pipeline, every frame comes back at the video's resolution (frame 0 included),
and the --model path and the --predictions path agree. The processing size is small (--size; the
protocol's 480 x 880 / 320 x 320 are the defaults) to keep the test fast.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fourd_hub.cli import main

from synthetic_benchmarks import write_davis, write_jhmdb


@pytest.fixture(scope="module")
def tiny_rvm(tmp_path_factory):
    from fourd_hub import RVMModel
    from fourd_hub.models.rvm.configuration_rvm import debug_config

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("rvm") / "rvm-debug"
    RVMModel(debug_config()).save_pretrained(path)
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_davis_with_a_model(tiny_rvm, tmp_path, capsys):
    root = tmp_path / "DAVIS"
    masks = write_davis(root)
    saved, output = tmp_path / "saved", tmp_path / "model.json"
    code, out, err = _run(
        capsys, "evaluate", "davis", "--data", root, "--model", tiny_rvm, "--size", "32,48", "--device", "cpu",
        "--save-predictions", saved, "--output", output, "--quiet",
    )
    assert code == 0, err
    assert f"model {tiny_rvm}" in out and "J&F-Mean" in out
    report = json.loads(output.read_text())
    assert report["settings"]["processing_size"] == [32, 48] and report["settings"]["propagation"]["topk"] == 7
    for value in report["summary"].values():
        assert value is None or -100.0 <= value <= 100.0
    for video, gt in masks.items():
        files = sorted((saved / video).iterdir())
        assert [p.name for p in files] == [f"{t:05d}.png" for t in range(len(gt))]  # frame 0 too
        with Image.open(files[0]) as image:
            labels = np.array(image)
            assert image.mode == "P" and labels.shape == gt.shape[1:]
        assert set(np.unique(labels)) <= set(np.unique(gt[0]).tolist())  # only the first mask's labels
    rescored = tmp_path / "rescored.json"
    code, _, err = _run(capsys, "evaluate", "davis", "--data", root, "--predictions", saved, "-o", rescored, "--quiet")
    assert code == 0, err
    assert json.loads(rescored.read_text())["summary"] == report["summary"]


def test_jhmdb_with_a_model(tiny_rvm, tmp_path, capsys):
    pytest.importorskip("scipy")
    root = tmp_path / "JHMDB"
    write_jhmdb(root)
    saved, output = tmp_path / "kp.npz", tmp_path / "model.json"
    code, out, err = _run(
        capsys, "evaluate", "jhmdb", "--data", root, "--model", tiny_rvm, "--size", "32,32", "--device", "cpu",
        "--save-predictions", saved, "--output", output, "--quiet",
    )
    assert code == 0, err
    report = json.loads(output.read_text())
    assert list(report["summary"]) == ["PCK@0.1", "PCK@0.2", "PCK@0.3", "PCK@0.4", "PCK@0.5"]
    values = list(report["summary"].values())
    assert all(0.0 <= v <= 100.0 for v in values) and values == sorted(values)  # PCK grows with the threshold
    with np.load(saved, allow_pickle=False) as data:
        assert data["videos"].tolist() == ["brush_hair/brusher_b", "walk/walker_a"]
        assert data["keypoints_0"].shape == (4, 15, 2) and data["visible_0"].shape == (4, 15)
    rescored = tmp_path / "rescored.json"
    code, _, err = _run(capsys, "evaluate", "jhmdb", "--data", root, "--predictions", saved, "-o", rescored, "--quiet")
    assert code == 0, err
    assert json.loads(rescored.read_text())["summary"] == report["summary"]


def test_moog_is_refused_with_the_pipelines_message(tmp_path, capsys):
    """MooG's tokens are not on the image grid: the pipeline refuses it, one line, exit 2, nothing written."""
    from fourd_hub import MooGModel
    from fourd_hub.models.moog.configuration_moog import debug_config

    path = tmp_path / "moog-debug"
    MooGModel(debug_config()).save_pretrained(path)
    capsys.readouterr()  # save_pretrained's progress bar
    root = tmp_path / "DAVIS"
    write_davis(root, videos=("square",))
    output = tmp_path / "out.json"
    code, _, err = _run(capsys, "evaluate", "davis", "--data", root, "--model", path, "--size", "32,48", "-o", output, "--quiet")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "off the grid" in err
    assert not output.exists()


def test_davis_model_predictions_are_the_protocol_composed_by_hand(tiny_rvm, tmp_path, capsys):
    """The saved label maps equal rvm.md 6.1 - 6.3 composed here from its pieces: PIL Lanczos resize
    of the uint8 frames (mediapy.resize_video) / 255, the model's per-frame features from the zero
    state, L2-normalised, mask_to_heatmap of the first annotation, label_propagation with the
    defaults, heatmap_to_mask back to the video's size."""
    from fourd_hub import RVMModel
    from fourd_hub.label_propagation import heatmap_to_mask, label_propagation, mask_to_heatmap, normalize_features

    root = tmp_path / "DAVIS"
    masks = write_davis(root, videos=("shapes-two",))
    saved = tmp_path / "saved"
    code, _, err = _run(capsys, "evaluate", "davis", "--data", root, "--model", tiny_rvm, "--size", "32,48", "--device", "cpu", "--save-predictions", saved, "--quiet")
    assert code == 0, err
    frames = np.stack([np.array(Image.open(p).convert("RGB")) for p in sorted((root / "JPEGImages" / "480p" / "shapes-two").glob("*.jpg"))])
    size, grid = (32, 48), (4, 6)  # patch 8
    resized = np.stack([np.array(Image.fromarray(f).resize((size[1], size[0]), Image.LANCZOS)) for f in frames])
    video = torch.from_numpy(resized).float().div(255).permute(0, 3, 1, 2)[None]  # (1, T, 3, H, W)
    model = RVMModel.from_pretrained(tiny_rvm).eval()
    with torch.no_grad():
        features = normalize_features(model.frame_features(video)[0][0])
    heatmap, labels = mask_to_heatmap(masks["shapes-two"][0], grid, size)
    expected = heatmap_to_mask(label_propagation(features, heatmap), labels, size, masks["shapes-two"].shape[1:])
    got = np.stack([np.array(Image.open(p)) for p in sorted((saved / "shapes-two").iterdir())])
    assert set(np.unique(got)) == {0, 1, 2}  # not a trivial map: both objects survive somewhere
    np.testing.assert_array_equal(got, expected)
