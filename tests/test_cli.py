"""The ``fourd-hub`` task commands end to end on a real video file (and their errors)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import E2E_VIDEO
from fourd_hub import open_video
from fourd_hub.cli import main, parse_coordinates

pytestmark = pytest.mark.e2e

NUM_FRAMES, HEIGHT, WIDTH, _ = E2E_VIDEO


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_depth_command_writes_a_visualisation(video, models, tmp_path, capsys):
    output = tmp_path / "depth.mp4"
    code, out, _ = _run(capsys, "depth-estimation", video[0], "--model", models["fourds-depth"], "--output", output, "--quiet")
    assert code == 0 and "37 frames" in out
    with open_video(output) as reader:
        assert len(reader) == NUM_FRAMES and (reader.metadata.height, reader.metadata.width) == (HEIGHT, 2 * WIDTH)


def test_point_tracking_command_with_points_and_grid(video, models, tmp_path, capsys):
    output = tmp_path / "tracks.json"
    code, _, err = _run(
        capsys, "point-tracking", video[0], "--model", models["fourds-points"], "--points", "0,10,20; 12,40.5,30",
        "--output", output, "--quiet",
    )
    assert code == 0, err
    saved = json.loads(output.read_text())
    tracks = np.array(saved["tracks"])
    assert tracks.shape == (NUM_FRAMES, 2, 2)
    np.testing.assert_allclose(tracks[12, 1], [40.5, 30.0])  # the query frame returns the query
    grid = tmp_path / "grid.npz"
    code, _, err = _run(capsys, "point-tracking", video[0], "--model", models["fourds-points"], "--grid", 2, "-o", grid, "--quiet")
    assert code == 0, err
    with np.load(grid, allow_pickle=False) as arrays:
        assert arrays["tracks"].shape == (NUM_FRAMES, 4, 2) and arrays["visible"].dtype == bool


def test_box_pose_features_and_reconstruction_commands(video, models, tmp_path, capsys):
    path = video[0]
    runs = [
        ("box-tracking", models["moog-boxes"], "boxes.json", ["--boxes", "0,10,10,40,40", "--backbone", models["moog-backbone"]]),
        ("camera-pose-estimation", models["fourds-pose"], "poses.json", []),
        ("features", models["moog-backbone"], "features.npz", ["--end", "10"]),
        ("video-reconstruction", models["moog-backbone"], "reconstruction.npz", ["--end", "6"]),
    ]
    for command, model, name, extra in runs:
        code, _, err = _run(capsys, command, path, "--model", model, "--output", tmp_path / name, "--quiet", *extra)
        assert code == 0, (command, err)
    assert np.array(json.loads((tmp_path / "boxes.json").read_text())["boxes"]).shape == (NUM_FRAMES, 1, 4)
    assert np.array(json.loads((tmp_path / "poses.json").read_text())["poses"]).shape == (13, 4, 4)
    with np.load(tmp_path / "features.npz", allow_pickle=False) as arrays:
        assert arrays["features"].shape == (10, 16, 32) and str(arrays["layout"]) == "(T, N, D)"
    with np.load(tmp_path / "reconstruction.npz", allow_pickle=False) as arrays:
        assert arrays["frames"].shape == (6, HEIGHT, WIDTH, 3)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["depth-estimation", "{missing}", "--model", "{depth}", "--output", "{out}.mp4"], "video file not found"),
        (["depth-estimation", "{empty}", "--model", "{depth}", "--output", "{out}.mp4"], "empty"),
        (["depth-estimation", "{text}", "--model", "{depth}", "--output", "{out}.mp4"], "not a readable video"),
        (["depth-estimation", "{truncated}", "--model", "{depth}", "--output", "{out}.mp4"], "truncated|corrupt|not a readable"),
        (["depth-estimation", "{one}", "--model", "{depth}", "--output", "{out}.mp4"], "1 frame"),
        (["depth-estimation", "{video}", "--model", "{depth}", "--output", "{out}.json"], "cannot write depth-estimation results"),
        (["features", "{video}", "--model", "{depth}", "--output", "{out}.mp4"], "cannot write features"),
        (["point-tracking", "{video}", "--model", "{points}", "--output", "{out}.json"], "--points"),
        (["point-tracking", "{video}", "--model", "{points}", "--points", "0,500,5", "--output", "{out}.json"], "outside"),
        (["point-tracking", "{video}", "--model", "{points}", "--points=-3,5,5", "--output", "{out}.json"], "non-negative"),
        (["point-tracking", "{video}", "--model", "{points}", "--points", "0,a,5", "--output", "{out}.json"], "not comma-separated"),
        (["box-tracking", "{video}", "--model", "{boxes}", "--output", "{out}.json"], "--boxes"),
        (["depth-estimation", "{video}", "--model", "no-such-model", "--output", "{out}.mp4"], "not a directory, a catalog name"),
        (["depth-estimation", "{video}", "--model", "{backbone}", "--output", "{out}.mp4"], "no trained weights"),
    ],
)
def test_bad_commands_fail_cleanly_without_output(video, models, bad_files, tmp_path, capsys, argv, message):
    values = {
        "video": video[0], "depth": models["fourds-depth"], "points": models["fourds-points"], "boxes": models["moog-boxes"],
        "backbone": models["fourds-backbone"], "out": tmp_path / "out", "missing": bad_files["missing"],
        "empty": bad_files["empty"], "text": bad_files["text"], "truncated": bad_files["truncated"], "one": bad_files["one-frame"],
    }
    code, _, err = _run(capsys, *[arg.format(**values) for arg in argv], "--quiet")
    assert code == 2
    assert err.startswith(f"fourd-hub {argv[0]}: error:") and "Traceback" not in err
    assert any(part in err for part in message.split("|")), err
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file


def test_existing_output_needs_overwrite(video, models, tmp_path, capsys):
    output = tmp_path / "depth.npz"
    output.write_bytes(b"keep me")
    code, _, err = _run(capsys, "depth-estimation", video[0], "--model", models["fourds-depth"], "-o", output, "--quiet")
    assert code == 2 and "--overwrite" in err and output.read_bytes() == b"keep me"
    code, _, _ = _run(capsys, "depth-estimation", video[0], "--model", models["fourds-depth"], "-o", output, "--quiet", "--overwrite")
    assert code == 0 and output.read_bytes() != b"keep me"


def test_parse_coordinates():
    assert parse_coordinates("0,1,2; 3,4.5,6;", 2, "points") == [[0, 1, 2], [3, 4.5, 6]]
    assert parse_coordinates("1,2", 2, "points") == [[1.0, 2.0]]
    for text, message in [("", "empty"), ("1,2,3,4", "needs 3 numbers"), ("0,1,2;3,4", "for every entry or for none")]:
        with pytest.raises(ValueError, match=message):
            parse_coordinates(text, 2, "points")


# ----------------------------------------------------------------------------------------------
# Clear errors before anything is loaded (issue 14 item 4)


@pytest.mark.parametrize(
    "device, message",
    [
        ("banana", "unknown device 'banana'; available: cpu"),
        ("cuda:7", "device 'cuda:7'"),
        ("cuda", "device 'cuda'"),
    ],
)
def test_bad_devices_are_one_line_before_the_model_loads(video, tmp_path, capsys, monkeypatch, device, message):
    import torch

    if device != "banana":  # CUDA on a CPU-only build, whatever this machine has
        monkeypatch.setattr(torch.version, "cuda", None)
        monkeypatch.setattr(torch.version, "hip", None, raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    # --model does not exist: the device error comes first, so the model was never looked up.
    code, _, err = _run(capsys, "depth-estimation", video[0], "--model", "no-such-model", "-o", tmp_path / "d.npz", "--device", device)
    assert code == 2 and err.startswith("fourd-hub depth-estimation: error: ") and message in err
    assert "available: cpu" in err and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("grid", ["65", "100000", "0", "-1"])
def test_grid_outside_the_limit_is_refused_before_the_model_loads(video, tmp_path, capsys, grid):
    from fourd_hub.pipelines import MAX_GRID_SIZE

    code, _, err = _run(capsys, "point-tracking", video[0], "--model", "no-such-model", f"--grid={grid}", "-o", tmp_path / "g.npz")
    assert code == 2 and f"grid {grid} is outside 1 to {MAX_GRID_SIZE}" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_video_header_claiming_huge_frames_gets_the_guard_message(tmp_path, capsys):
    from video_factory import moving_shapes_frames, write_y4m_declaring_size

    bomb = write_y4m_declaring_size(tmp_path / "bomb.y4m", moving_shapes_frames(2, 16, 16), 100_000, 100_000)
    code, _, err = _run(capsys, "depth-estimation", bomb, "--model", "no-such-model", "-o", tmp_path / "d.npz")
    assert code == 2 and "bomb.y4m: frames of 100000x100000 pixels" in err and "max_frame_pixels=" in err
    assert "Device or resource busy" not in err and sorted(p.name for p in tmp_path.iterdir()) == ["bomb.y4m"]


def test_overwrite_replaces_a_png_frame_directory(video, models, tmp_path, capsys):
    output = tmp_path / "frames"
    argv = ("depth-estimation", video[0], "--model", models["fourds-depth"], "-o", output, "--end", "3", "--quiet")
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    first = sorted(p.name for p in output.iterdir())
    assert first == [f"frame_{i:05d}.png" for i in range(3)]
    code, _, err = _run(capsys, *argv)
    assert code == 2 and "frames: the directory is not empty" in err and "--overwrite" in err
    (output / "frame_00007.png").write_bytes(b"stale")  # from an earlier, longer run
    code, _, err = _run(capsys, *argv, "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in output.iterdir()) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # no staging or old directory left


def test_overwrite_refuses_the_wrong_kind_of_output_and_links_up_front(video, tmp_path, capsys):
    (tmp_path / "frames").write_text("a file where PNG frames would go")
    (tmp_path / "d.npz").mkdir()
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    cases = [
        ("frames", "a file with that name exists"),
        ("d.npz", "it is an existing directory"),
        ("link", "it is a symbolic link"),
        ("mine", "holds files that are not PNG frames (notes.txt)"),
    ]
    for name, message in cases:
        code, _, err = _run(capsys, "depth-estimation", video[0], "--model", "no-such-model", "-o", tmp_path / name, "--overwrite")
        assert code == 2 and str(tmp_path / name) in err and message in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert (tmp_path / "frames").read_text().startswith("a file") and (tmp_path / "mine" / "notes.txt").exists()
    assert (tmp_path / "link").is_symlink() and not list((tmp_path / "real").iterdir())
