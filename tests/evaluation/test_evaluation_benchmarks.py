"""``fourd-hub evaluate davis|jhmdb|vip`` end to end on tiny synthetic datasets in the real layouts
(tests/evaluation/synthetic_benchmarks.py): perfect predictions score 100, shifted ones score what the
arithmetic in the comments says, bad layouts are one-line errors (exit 2) that write nothing.

DAVIS frames are 32 x 48: the boundary dilation radius is ceil(0.008 * sqrt(32^2 + 48^2)) =
ceil(0.008 * 57.69) = ceil(0.46) = 1, the "plus" disk (centre and its 4 neighbours).

Boundaries of an h x w box (seg2bmap: a pixel differing from its east, south or south-east
neighbour) form the outline of the (h + 1) x (w + 1) box one pixel up and left of it: rows 0..h,
columns 0..w in local coordinates, 2w + 2h pixels. Shifted right by s pixels, the predicted outline
(columns s..w+s) has its pixels within distance 1 (plus) of the true outline:
- s = 1: all of them (top and bottom rows overlap or touch, the side columns are 1 apart): P = R = 1, F = 1.
- s = 2: top / bottom rows: columns 2..w+1 (w each); left column: only its end pixels (rows 1 and
  h-1, next to the true top / bottom rows); right column (2 from the true one): none. Matched 2w + 2
  of 2w + 2h: P = (w + 1) / (w + h); R the same by symmetry; F = (w + 1) / (w + h): 11/20 for 10 x 10.
- s = 3: top / bottom w - 1 each, left column 2: 2w of 2w + 2h: F = w / (w + h) = 1/2 for 10 x 10.
Region IoU of an h x w box shifted by s < w: h (w - s) / (h (w + s)) = (w - s) / (w + s).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fourd_hub.cli import main
from fourd_hub.evaluation import datasets, runner

from synthetic_benchmarks import (
    DAVIS_SHAPES,
    JHMDB_SPLIT1,
    davis_masks,
    save_palette_png,
    write_davis,
    write_davis_predictions,
    write_jhmdb,
    write_vip,
)

APPROX = dict(abs=1e-9)


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _summary(path: Path) -> dict:
    return json.loads(path.read_text())["summary"]


@pytest.fixture
def davis(tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "DAVIS"
    return root, write_davis(root)


# --------------------------------------------------------------------------------------------------
# DAVIS-2017


def test_davis_perfect_predictions_score_100(davis, tmp_path, capsys):
    root, masks = davis
    predictions = tmp_path / "results"
    # Only frames 1 .. T-2 are read (as davis2017-evaluation): the first and last may be absent.
    write_davis_predictions(predictions, masks, frames=range(1, 4))
    output = tmp_path / "davis.json"
    code, out, err = _run(capsys, "evaluate", "davis", "--data", root, "--predictions", predictions, "--output", output, "--quiet")
    assert code == 0, err
    assert err == ""
    assert "J&F-Mean" in out and "100.000" in out and f"wrote results to {output}" in out
    summary = _summary(output)
    assert summary == {"J&F-Mean": 100.0, "J-Mean": 100.0, "J-Recall": 100.0, "J-Decay": 0.0, "F-Mean": 100.0, "F-Recall": 100.0, "F-Decay": 0.0}
    report = json.loads(output.read_text())
    assert report["benchmark"] == "davis-2017" and report["units"] == "percent"
    assert report["settings"]["split"] == "val" and report["settings"]["num_videos"] == 2
    assert report["videos"]["shapes-two"]["num_objects"] == 2
    assert report["videos"]["shapes-two"]["objects"]["2"]["J"] == [100.0, 100.0, 100.0]  # frames 1, 2, 3


def test_davis_one_pixel_shift_scores_the_hand_computed_value(davis, tmp_path, capsys):
    root, masks = davis
    shifted = {video: np.roll(gt, 1, axis=2) for video, gt in masks.items()}  # every shape 1 px right
    write_davis_predictions(tmp_path / "shifted", shifted)
    output = tmp_path / "shifted.json"
    code, _, err = _run(capsys, "evaluate", "davis", "--data", root, "--predictions", tmp_path / "shifted", "-o", output, "--quiet")
    assert code == 0, err
    report = json.loads(output.read_text())
    # IoU (w - 1) / (w + 1): 10 x 10 squares 9/11, the 6 x 8 (h x w) rectangle 7/9; F = 1 (radius 1).
    j_square, j_rect = 9 / 11, 7 / 9
    objects = report["videos"]["shapes-two"]["objects"]
    assert objects["1"]["J"] == pytest.approx([100 * j_square] * 3, **APPROX)
    assert objects["2"]["J"] == pytest.approx([100 * j_rect] * 3, **APPROX)
    assert report["videos"]["square"]["objects"]["1"]["F"] == [100.0] * 3
    j_mean = 100 * (j_square + j_rect + j_square) / 3  # three objects in all
    summary = report["summary"]
    assert summary["J-Mean"] == pytest.approx(j_mean, **APPROX)
    assert summary["F-Mean"] == 100.0
    assert summary["J&F-Mean"] == pytest.approx((j_mean + 100) / 2, **APPROX)
    assert summary["J-Recall"] == 100.0 and summary["J-Decay"] == pytest.approx(0.0, **APPROX)


def test_davis_two_pixel_shift_of_one_video(davis, tmp_path, capsys):
    root, masks = davis
    write_davis_predictions(tmp_path / "shift2", {"square": np.roll(masks["square"], 2, axis=2)})
    output = tmp_path / "shift2.json"
    code, _, err = _run(capsys, "evaluate", "davis", "--data", root, "--predictions", tmp_path / "shift2", "--videos", "square", "-o", output, "--quiet")
    assert code == 0, err
    summary = _summary(output)
    # 10 x 10 square shifted 2 px: J = 8/12 = 2/3, F = (w + 1) / (w + h) = 11/20.
    assert summary["J-Mean"] == pytest.approx(100 * 2 / 3, **APPROX)
    assert summary["F-Mean"] == pytest.approx(100 * 11 / 20, **APPROX)
    assert summary["F-Recall"] == 100.0  # 0.55 > 0.5
    assert json.loads(output.read_text())["settings"]["num_videos"] == 1


def test_davis_model_path_saves_predictions_that_score_the_same(davis, tmp_path, capsys):
    """The --model loop (runner.evaluate_davis with a predictor) without a network: a predictor that
    copies the first mask to every frame. The square moves 1 px per frame, so frame t is the truth
    shifted by t: frames 1, 2, 3 -> J = 9/11, 8/12, 7/13 and F = 1, 11/20, 1/2 (module docstring)."""
    root, masks = davis
    dataset = datasets.DavisDataset(root, videos=["square"])
    calls = []

    def static(frames, first_mask):
        calls.append((frames.shape, frames.dtype, first_mask.copy()))
        return np.repeat(first_mask[None], len(frames), axis=0)

    save = tmp_path / "saved"
    save.mkdir()
    result = runner.evaluate_davis(dataset, predictor=static, save_predictions=save, progress=False)
    (shape, dtype, first), = calls
    assert shape == (5, 32, 48, 3) and dtype == np.uint8
    np.testing.assert_array_equal(first, masks["square"][0])
    obj = result.videos["square"]["objects"]["1"]
    assert obj["J"] == pytest.approx([100 * 9 / 11, 100 * 8 / 12, 100 * 7 / 13], **APPROX)
    assert obj["F"] == pytest.approx([100.0, 100 * 11 / 20, 50.0], **APPROX)
    # Recall: all J > 0.5; F: 1 and 0.55 are, 0.5 is not -> 2/3. Decay (3 values): mean(v0, v1) - v2.
    assert obj["J-Recall"] == 100.0 and obj["F-Recall"] == pytest.approx(100 * 2 / 3, **APPROX)
    assert obj["J-Decay"] == pytest.approx(100 * ((9 / 11 + 8 / 12) / 2 - 7 / 13), **APPROX)
    assert obj["F-Decay"] == pytest.approx(100 * ((1 + 0.55) / 2 - 0.5), **APPROX)
    # Every frame is saved (frame 0 too), as a palette PNG with the annotation's palette.
    saved = sorted((save / "square").iterdir())
    assert [p.name for p in saved] == [f"{t:05d}.png" for t in range(5)]
    with Image.open(saved[3]) as image:
        assert image.mode == "P" and image.getpalette()[:6] == [0, 0, 0, 128, 0, 0]
        np.testing.assert_array_equal(np.array(image), masks["square"][0])
    # Scoring the saved folder gives the same numbers.
    output = tmp_path / "rescored.json"
    code, _, err = _run(capsys, "evaluate", "davis", "--data", root, "--predictions", save, "--videos", "square", "-o", output, "--quiet")
    assert code == 0, err
    assert _summary(output) == result.summary


def test_davis_void_is_background_and_objects_come_from_the_first_frame(tmp_path):
    root = tmp_path / "DAVIS"
    masks = write_davis(root, videos=("square",))
    gt = masks["square"].copy()
    gt[2, 0:2, 0:2] = 255  # void pixels: background for scoring (davis2017-evaluation)
    gt[3, 28:30, 40:42] = 2  # an object absent from frame 0 is not scored
    for t in (2, 3):
        save_palette_png(root / "Annotations" / "480p" / "square" / f"{t:05d}.png", gt[t])
    result = runner.evaluate_davis(datasets.DavisDataset(root), predictor=lambda f, m: masks["square"], progress=False)
    assert result.videos["square"]["num_objects"] == 1
    assert result.summary["J&F-Mean"] == 100.0


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda root: shutil.rmtree(root / "Annotations"), re.escape("DAVIS annotations folder (Annotations/<resolution>) not found")),
        (lambda root: (root / "ImageSets" / "2017" / "val.txt").unlink(), re.escape("DAVIS 'val' list (ImageSets/2017/val.txt) not found")),
        (lambda root: shutil.rmtree(root / "JPEGImages" / "480p" / "square"), "DAVIS video 'square' has no frames"),
        (lambda root: (root / "Annotations" / "480p" / "square" / "00004.png").unlink(), "has 5 frames in .* but 4 annotations"),
        (
            lambda root: Image.new("RGB", (48, 32)).save(root / "Annotations" / "480p" / "square" / "00002.png"),
            "00002.png \\(annotation of DAVIS video square\\) is a mode-RGB image, not a palette",
        ),
        (
            lambda root: save_palette_png(root / "Annotations" / "480p" / "square" / "00001.png", np.zeros((30, 48), np.uint8)),
            "00001.png \\(annotation of DAVIS video square\\) is 48x30 but its frames are 48x32",
        ),
        (
            lambda root: (root / "JPEGImages" / "480p" / "square" / "00003.jpg").write_bytes(b"not a jpeg"),
            "00003.jpg \\(frame of DAVIS video square\\) is not an image Pillow can read",
        ),
    ],
    ids=["no-annotations", "no-list", "no-frames", "count-mismatch", "not-palette", "size-mismatch", "corrupt-frame"],
)
def test_davis_bad_layouts_are_clear_errors_that_write_nothing(davis, tmp_path, capsys, breakage, message):
    root, masks = davis
    predictions = tmp_path / "results"
    write_davis_predictions(predictions, masks)
    breakage(root)
    output = tmp_path / "out.json"
    code, out, err = _run(capsys, "evaluate", "davis", "--data", root, "--predictions", predictions, "-o", output, "--quiet")
    assert code == 2
    assert err.startswith("fourd-hub evaluate: error: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert out == "" and not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DAVIS", "results"]  # no partial or staging output


def test_davis_bad_predictions_and_options(davis, tmp_path, capsys):
    root, masks = davis
    predictions = tmp_path / "results"
    write_davis_predictions(predictions, masks)
    output = tmp_path / "out.json"

    def fails(*argv, message):
        code, out, err = _run(capsys, "evaluate", "davis", "--data", root, *argv, "--quiet")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not output.exists()

    bad = masks["square"][2].copy()
    bad[0, 0] = 3  # the video has 1 object
    save_palette_png(predictions / "square" / "00002.png", bad)
    fails("--predictions", predictions, "-o", output, message="the prediction for square has label 3, but its first annotation has 1 object(s)")
    save_palette_png(predictions / "square" / "00002.png", masks["square"][2])
    (predictions / "shapes-two" / "00003.png").unlink()
    fails("--predictions", predictions, "-o", output, message="shapes-two/00003.png not found (1 of the 3 scored frames")
    fails("--predictions", predictions, "--videos", "square,nope", message="nope is not in")
    fails("--predictions", predictions, "--videos", "square", "-o", tmp_path / "out.txt", message="use a .json file name")
    fails("--predictions", predictions, "--save-predictions", tmp_path / "s", message="--save-predictions apply to --model")
    fails("--predictions", predictions, "--size", "32,48", message="--size apply to --model")
    fails("--predictions", tmp_path / "missing", message="DAVIS predictions directory not found")
    fails("--model", "x", "--size", "32", message="--size '32' is not H,W")
    # An existing output needs --overwrite; with it, it is replaced.
    output.write_text("{}")
    code, _, err = _run(capsys, "evaluate", "davis", "--data", root, "--predictions", predictions, "--videos", "square", "-o", output, "--quiet")
    assert code == 2 and "exists; pass overwrite=True (CLI: --overwrite)" in err
    assert output.read_text() == "{}"
    code, _, err = _run(capsys, "evaluate", "davis", "--data", root, "--predictions", predictions, "--videos", "square", "-o", output, "--overwrite", "--quiet")
    assert code == 0, err
    assert _summary(output)["J&F-Mean"] == 100.0


def test_davis_save_predictions_directory_is_checked_before_work(davis, tmp_path, capsys):
    root, _ = davis
    existing = tmp_path / "keep"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    for extra, message in (([], "exists; pass --overwrite"), (["--overwrite"], "is not a folder of PNG files")):
        code, _, err = _run(capsys, "evaluate", "davis", "--data", root, "--model", "no-such-model", "--save-predictions", existing, *extra, "--quiet")
        assert code == 2 and message in err, err
    assert (existing / "notes.txt").read_text() == "mine"
    # A bad --device fails before the dataset or the model is touched.
    code, _, err = _run(capsys, "evaluate", "davis", "--data", tmp_path / "nowhere", "--model", "no-such-model", "--device", "cuda:7", "--quiet")
    assert code == 2 and "cuda:7" in err


# --------------------------------------------------------------------------------------------------
# JHMDB


@pytest.fixture
def jhmdb(tmp_path) -> tuple[Path, dict]:
    pytest.importorskip("scipy")
    root = tmp_path / "JHMDB"
    return root, write_jhmdb(root)


def test_jhmdb_reader_follows_the_official_layout(jhmdb):
    root, poses = jhmdb
    dataset = datasets.JhmdbDataset(root, split=1)
    # Split 1's test videos (flag 2), class names with underscores kept; the train video is left out.
    assert [v.name for v in dataset] == ["brush_hair/brusher_b", "walk/walker_a"]
    video = dataset.videos[1]
    assert video.pose.shape == (4, 15, 2) and video.pose.dtype == np.float32
    np.testing.assert_array_equal(video.pose, poses["walk/walker_a"].astype(np.float32))  # pos_img - 1
    assert video.size == (64, 64) and [p.name for p in video.frames] == ["00001.png", "00002.png", "00003.png", "00004.png"]
    assert video.read_frames().shape == (4, 64, 64, 3)


def _write_keypoints_json(path: Path, entries: dict) -> None:
    path.write_text(json.dumps({"videos": {k: {"keypoints": v[0].tolist(), **({"visible": v[1].tolist()} if v[1] is not None else {})} for k, v in entries.items()}}))


def test_jhmdb_perfect_and_shifted_predictions(jhmdb, tmp_path, capsys):
    root, poses = jhmdb
    tests = ["brush_hair/brusher_b", "walk/walker_a"]
    perfect = {name: (poses[name], None) for name in tests}  # visibility omitted: x >= 0 -> visible
    _write_keypoints_json(tmp_path / "perfect.json", perfect)
    output = tmp_path / "perfect-out.json"
    code, out, err = _run(capsys, "evaluate", "jhmdb", "--data", root, "--predictions", tmp_path / "perfect.json", "-o", output, "--quiet")
    assert code == 0, err
    assert "PCK@0.1" in out and "JHMDB split 1: 2 videos" in out
    assert _summary(output) == {f"PCK@{t}": 100.0 for t in ("0.1", "0.2", "0.3", "0.4", "0.5")}

    # Human box = 0.6 x the diagonal of the joints' box (30 x 40 -> 50) = 30 px in every frame.
    # Joints 0-4 moved 4.5 px in x (distance 0.15), joints 5-9 7.5 px in y (0.25), 10-14 exact;
    # joint 14 (inside the box) predicted invisible in frame 2 of walker_a: its distance is not
    # counted (and it does not change that frame's box). PCK@0.1: joints 10-14 pass -> 5/15;
    # @0.2: 0-4 and 10-14 -> 10/15; @0.3 and above: all 15.
    shifted = {}
    for name in tests:
        keypoints = poses[name].copy()
        keypoints[:, 0:5, 0] += 4.5
        keypoints[:, 5:10, 1] += 7.5
        visible = np.ones(keypoints.shape[:2], dtype=bool)
        if name == "walk/walker_a":
            keypoints[2, 14] = -1.0
            visible[2, 14] = False
        shifted[name] = (keypoints, visible)
    np.savez(tmp_path / "shifted.npz", videos=np.array(tests), **{
        f"{kind}_{i}": shifted[name][j] for i, name in enumerate(tests) for j, kind in enumerate(("keypoints", "visible"))
    })
    output = tmp_path / "shifted-out.json"
    code, _, err = _run(capsys, "evaluate", "jhmdb", "--data", root, "--predictions", tmp_path / "shifted.npz", "-o", output, "--quiet")
    assert code == 0, err
    report = json.loads(output.read_text())
    expected = {"PCK@0.1": 100 * 5 / 15, "PCK@0.2": 100 * 10 / 15, "PCK@0.3": 100.0, "PCK@0.4": 100.0, "PCK@0.5": 100.0}
    assert report["summary"] == pytest.approx(expected, **APPROX)
    walker = report["videos"]["walk/walker_a"]
    assert walker["num_annotated_frames"] == 4 and len(walker["distances"]) == 3  # frames 1..3
    assert walker["distances"][1][14] is None  # frame 2, joint 14: not predicted visible
    assert walker["distances"][0][0] == pytest.approx(4.5 / 30, abs=1e-6)
    assert report["per_joint_pck"]["PCK@0.1"][:5] == [0.0] * 5


def test_jhmdb_crw_list_and_extra_frames(jhmdb, tmp_path, capsys):
    root, poses = jhmdb
    # A CRW-style list (jhmdb_vallist.txt): '<frames dir> <mat>' per line, relative to --data.
    (tmp_path / "vallist.txt").write_text(
        "Rename_Images/walk/walker_a joint_positions/walk/walker_a/joint_positions.mat\n"
    )
    dataset = datasets.JhmdbDataset(root, list_file=tmp_path / "vallist.txt")
    assert [v.name for v in dataset] == ["walk/walker_a"]
    # A prediction may cover more frames than the annotated ones (the demo propagates every image).
    long = np.concatenate([poses["walk/walker_a"], poses["walk/walker_a"][-1:] + 100])
    result = runner.evaluate_jhmdb(dataset, predictions={"walk/walker_a": (long, long[..., 0] >= 0)}, progress=False)
    assert result.summary["PCK@0.1"] == 100.0


def test_jhmdb_model_path_with_a_predictor(jhmdb, tmp_path):
    root, poses = jhmdb
    dataset = datasets.JhmdbDataset(root, videos=["walk/walker_a"])
    seen = []

    def still(frames, first):  # every frame predicted at the first frame's joints
        seen.append(first.copy())
        return np.repeat(first[None], len(frames), axis=0), np.ones((len(frames), len(first)), dtype=bool)

    save = tmp_path / "kp.npz"
    result = runner.evaluate_jhmdb(dataset, predictor=still, save_predictions=save, progress=False)
    np.testing.assert_array_equal(seen[0], poses["walk/walker_a"][0].astype(np.float32))
    # Joints move sqrt(1 + 0.25) = 1.118 px per frame; box 30: frames 1..3 -> 0.037, 0.075, 0.112:
    # PCK@0.1 = 2/3 of the distances of every joint -> 66.67; @0.2 and above: 100.
    assert result.summary["PCK@0.1"] == pytest.approx(100 * 2 / 3, **APPROX)
    assert result.summary["PCK@0.2"] == 100.0
    loaded = runner.read_keypoint_predictions(save)
    assert list(loaded) == ["walk/walker_a"] and loaded["walk/walker_a"][0].shape == (4, 15, 2)


def test_jhmdb_bad_layouts_are_clear_errors(jhmdb, tmp_path, capsys):
    root, _ = jhmdb
    mat = root / "joint_positions" / "walk" / "walker_a" / "joint_positions.mat"

    def fails(message, *argv):
        output = tmp_path / "out.json"
        code, _, err = _run(capsys, "evaluate", "jhmdb", "--data", root, "--predictions", tmp_path / "p.json", "-o", output, *argv, "--quiet")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not output.exists()

    (tmp_path / "p.json").write_text('{"videos": {}}')
    saved = mat.read_bytes()
    mat.write_bytes(b"garbage")
    fails("joint_positions.mat is not a readable MATLAB file")
    from scipy.io import savemat

    savemat(mat, {"other": np.zeros(3)})
    fails("has no 'pos_img' array (it holds: other)")
    mat.write_bytes(saved)
    frame = root / "Rename_Images" / "walk" / "walker_a" / "00004.png"
    pixels = frame.read_bytes()
    frame.unlink()
    fails("annotates 4 frames but")
    fails("no JHMDB split files <class>_test_split2.txt", "--split", "2")
    frame.write_bytes(pixels)
    fails("holds no video")  # the dataset is fine again; the predictions file is empty
    (root / "splits" / "walk_test_split1.txt").write_text("walker_a.avi test\n")
    fails("is not '<video>.avi <1|2>'")


def test_jhmdb_needs_scipy_for_mat_files(jhmdb, monkeypatch, tmp_path, capsys):
    import sys

    root, _ = jhmdb
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # import scipy.io -> ImportError
    with pytest.raises(ModuleNotFoundError, match=r'pip install "fourd-hub\[eval\]"'):
        datasets.JhmdbDataset(root)
    # The CLI: a missing package is the environment's problem, exit 1, one line naming scipy.
    code, _, err = _run(capsys, "evaluate", "jhmdb", "--data", root, "--predictions", tmp_path / "p.json", "--quiet")
    assert code == 1 and "'scipy'" in err and len(err.strip().splitlines()) == 1, err


# --------------------------------------------------------------------------------------------------
# VIP


def test_vip_perfect_and_shifted_predictions(tmp_path, capsys):
    root = tmp_path / "VIP_Fine"
    masks = write_vip(root)
    write_davis_predictions(tmp_path / "perfect", masks, digits=6)
    output = tmp_path / "vip.json"
    code, out, err = _run(capsys, "evaluate", "vip", "--data", root, "--predictions", tmp_path / "perfect", "-o", output, "--quiet")
    assert code == 0, err
    report = json.loads(output.read_text())
    assert report["summary"] == {"mIoU": 100.0}
    iou = report["per_class_iou"]
    assert iou["background"] == iou["hat"] == iou["face"] == 100.0  # classes 0, 1, 13
    assert iou["hair"] is None and iou["left-shoe"] is None  # absent from both: NaN -> null
    # Shift everything 1 px right. Per frame (32 x 48 = 1536 px): the 10 x 10 square (class 1, hat):
    # IoU 90 / 110; the 4 x 4 face (13): 12 / 20; background: in both = 1536 - 110 - 20 = 1406,
    # union = 1536 - 90 - 12 = 1434. Every frame of every video alike, so the summed histogram
    # gives the same ratios: mIoU = (1406/1434 + 90/110 + 12/20) / 3.
    write_davis_predictions(tmp_path / "shifted", {v: np.roll(m, 1, axis=2) for v, m in masks.items()}, digits=6)
    code, _, err = _run(capsys, "evaluate", "vip", "--data", root, "--predictions", tmp_path / "shifted", "-o", output, "--overwrite", "--quiet")
    assert code == 0, err
    report = json.loads(output.read_text())
    assert report["summary"]["mIoU"] == pytest.approx(100 * (1406 / 1434 + 90 / 110 + 12 / 20) / 3, **APPROX)
    assert report["histogram"][1][1] == 90 * 8  # 8 frames in all
    (root / "Annotations" / "Category_ids" / "vip-b" / "000003.png").unlink()
    code, _, err = _run(capsys, "evaluate", "vip", "--data", root, "--predictions", tmp_path / "shifted", "--quiet")
    assert code == 2 and "has 4 frames in" in err and "but 3 annotations" in err


def test_the_cli_sizes_are_the_protocol_sizes():
    from fourd_hub.evaluation.cli import _BENCHMARKS

    assert _BENCHMARKS["davis"][1] == runner.DAVIS_SIZE == (480, 880)
    assert _BENCHMARKS["jhmdb"][1] == runner.JHMDB_SIZE == (320, 320)
    assert _BENCHMARKS["vip"][1] == runner.VIP_SIZE == (448, 880)
    assert runner.PROPAGATION == {"n_context": 20, "temperature": 0.7, "topk": 7, "radius": 20, "restrict_neighborhood": True}
    assert runner.VIP_PROPAGATION["topk"] == 10
    assert set(DAVIS_SHAPES) == {"shapes-two", "square"} and set(JHMDB_SPLIT1) == {"walk", "brush_hair"}
    assert davis_masks("square").shape == (5, 32, 48)
