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


def test_depth_colour_bar_and_forward_only_tracking_flags(video, models, tmp_path, capsys):
    output = tmp_path / "depth.mp4"
    code, _, err = _run(capsys, "depth-estimation", video[0], "--model", models["fourds-depth"], "-o", output, "--colorbar", "--end", "4", "--quiet")
    assert code == 0, err
    with open_video(output) as reader:
        assert reader.metadata.width > 2 * WIDTH  # the input, its depth, and the bar
    tracks = tmp_path / "tracks.json"
    code, _, err = _run(
        capsys, "point-tracking", video[0], "--model", models["fourds-points"], "--points", "12,40.5,30",
        "--no-backward-tracking", "-o", tracks, "--quiet",
    )
    assert code == 0, err
    saved = json.loads(tracks.read_text())
    assert saved["tracks"][0][0] == [None, None] and saved["tracks"][12][0] == [40.5, 30.0]
    assert saved["visible"][0][0] is False


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


# ----------------------------------------------------------------------------------------------
# One clear line, quiet means quiet, fast startup (issue 15 item 6)

import subprocess  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]

# fourd_hub as a bare package (its __path__ only): the submodules import, fourd_hub/__init__.py does not run.
_BARE_PACKAGE = """
import importlib.util, sys, types
spec = importlib.util.find_spec("fourd_hub")
package = types.ModuleType("fourd_hub")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["fourd_hub"] = package
"""
_HEAVY = ("torch", "transformers", "huggingface_hub", "numpy", "av", "PIL", "safetensors")


def _python(code: str, *argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, argv)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300, **kwargs
    )


def test_version_prints_the_package_version(capsys):
    from fourd_hub._version import __version__

    code, out, err = _run(capsys, "--version")
    assert code == 0 and out == f"fourd-hub {__version__}\n" and err == ""
    code, out, _ = _run(capsys, "--help")
    assert code == 0 and "--version" in out and "depth-estimation" in out
    code, _, err = _run(capsys)  # no command: argparse's usage error, returned (not raised) as 2
    assert code == 2 and "required: command" in err


def test_help_version_and_list_import_no_torch():
    """fourd_hub.cli and these commands import only the standard library and the light tables.

    Run with fourd_hub/__init__.py bypassed (a bare package), so what is checked is the CLI's own
    imports; the next test checks the installed entry point as a whole.
    """
    code = _BARE_PACKAGE + """
import json
from fourd_hub.cli import main
codes = [main(["--help"]), main(["--version"]), main(["list"]), main(["list", "--json", "--family", "moog"])]
print("RESULT", json.dumps({"codes": codes, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""
    done = _python(code)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    result = json.loads(done.stdout.rsplit("RESULT ", 1)[1])
    assert result["codes"] == [0, 0, 0, 0]
    assert not set(_HEAVY) & set(result["modules"]), result["modules"]
    assert "usage: fourd-hub" in done.stdout and '"name": "moog-' in done.stdout


def _imported_modules(*argv) -> list[str]:
    """The modules `python -X importtime -m fourd_hub ARGV` imports, in the order their imports complete."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fourd_hub", *argv], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")][1:]


@pytest.mark.parametrize("argv", [["--help"], ["list", "--json"]], ids=["help", "list"])
def test_the_installed_command_imports_no_torch(argv):
    """`fourd-hub --help` and `list` (here `python -m fourd_hub`, the same imports) run without torch
    (the previous test checks --version too, with the package __init__ bypassed).

    Importing fourd_hub.cli runs fourd_hub/__init__.py first, which defers its heavy imports in
    the ``fourd-hub`` command (a library ``import fourd_hub`` still loads and registers everything).
    """
    modules = _imported_modules(*argv)
    assert "torch" not in modules, f"fourd-hub {' '.join(argv)} imports torch: {modules[:20]}"
    assert "fourd_hub.cli" in modules and not set(_HEAVY) & set(modules)


def test_a_closed_pipe_ends_quietly():
    """`fourd-hub list --json | head -1`: the reader goes away. The child's stdout is a pipe closed
    before it writes (as `head` does after its line, but deterministically): no traceback, no
    "Exception ignored" at interpreter shutdown, no error line; status 141, as a Unix tool's."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fourd_hub", "list", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT
    )
    process.stdout.close()
    _, err = process.communicate(timeout=300)
    assert process.returncode == 141 and err == b"", err.decode()


def test_a_closed_pipe_in_process(capsys, monkeypatch):
    """The same through main(): the flush at the end of the command meets the broken pipe."""
    import io

    class ClosedPipe(io.StringIO):
        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["list"]) == 141
    assert capsys.readouterr().err == ""


_NOISY_RUN = """
import sys, warnings
import fourd_hub.pipelines as pipelines
from huggingface_hub.utils import tqdm as hub_tqdm
from transformers.utils import logging as transformers_logging
from fourd_hub.cli import main

load = pipelines.load_task_model

def noisy_load(*args, **kwargs):  # what a load can print: a load report, weight and download bars, a warning
    transformers_logging.get_logger("transformers.modeling_utils").warning("FourDSForCameraPoseEstimation LOAD REPORT from: x")
    for _ in transformers_logging.tqdm(range(3), desc="Loading weights"):
        pass
    for _ in hub_tqdm(range(3), desc="Fetching 2 files"):
        pass
    warnings.warn("a library warning")
    return load(*args, **kwargs)

pipelines.load_task_model = noisy_load
argv = sys.argv[1:]
for quiet in (True, False):  # --quiet first: the second run shows that it restored the settings
    sys.stderr.write("=== quiet\\n" if quiet else "=== loud\\n")
    code = main(argv + ["--overwrite"] + (["--quiet"] if quiet else []))
    print("CODE", code)
"""


def test_quiet_pipeline_command_prints_nothing_on_stderr(video, models, tmp_path):
    output = tmp_path / "poses.json"
    done = _python(_NOISY_RUN, "camera-pose-estimation", video[0], "--model", models["fourds-pose"], "-o", output)
    assert done.returncode == 0 and done.stdout.count("CODE 0") == 2, done.stdout + done.stderr
    quiet, loud = done.stderr.split("=== quiet\n", 1)[1].split("=== loud\n")
    assert quiet == "", quiet
    for noise in ("LOAD REPORT", "Loading weights", "Fetching 2 files", "a library warning", "windows"):
        assert noise in loud, (noise, loud)
    assert json.loads(output.read_text())["poses"]


def test_quiet_restores_the_library_settings(video, models, tmp_path, capsys):
    import logging

    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as transformers_logging

    before = (transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled(),
              hub_utils.are_progress_bars_disabled(), logging.getLogger("fourd_hub").level)
    code, _, err = _run(capsys, "camera-pose-estimation", video[0], "--model", models["fourds-pose"], "-o", tmp_path / "p.npz", "--quiet")
    assert code == 0 and err == ""
    after = (transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled(),
             hub_utils.are_progress_bars_disabled(), logging.getLogger("fourd_hub").level)
    assert after == before


def test_cuda_probe_warnings_do_not_add_lines(video, tmp_path, capsys, monkeypatch):
    """A CUDA build on a machine without a driver warns while probing; the refusal stays one line."""
    import torch

    def is_available():
        warnings.warn("CUDA initialization: Found no NVIDIA driver on your system.", UserWarning)
        return False

    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", is_available)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = _run(capsys, "depth-estimation", video[0], "--model", "no-such-model", "-o", tmp_path / "d.npz", "--device", "cuda")
    assert code == 2 and err.startswith("fourd-hub depth-estimation: error: device 'cuda' is not available: no CUDA GPU")
    assert err.count("\n") == 1 and not caught and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "error, message",
    [
        (ModuleNotFoundError("No module named 'accelerate'", name="accelerate"),
         "needs the Python package 'accelerate', which is not installed: pip install \"fourd_hub[train]\""),
        (ModuleNotFoundError("No module named 'PIL'", name="PIL"), "pip install pillow"),
        (ImportError("cannot import name 'x' from 'transformers'", name="transformers"), "reinstall fourd_hub"),
    ],
)
def test_a_missing_package_is_one_line_and_status_1(video, tmp_path, capsys, monkeypatch, error, message):
    import fourd_hub.pipelines

    def pipeline(*args, **kwargs):
        raise error

    monkeypatch.setattr(fourd_hub.pipelines, "pipeline", pipeline)
    code, _, err = _run(capsys, "depth-estimation", video[0], "--model", "any", "-o", tmp_path / "d.npz", "--quiet")
    assert code == 1 and err.startswith("fourd-hub depth-estimation: error: ") and message in err, err
    assert err.count("\n") == 1 and list(tmp_path.iterdir()) == []


def test_out_of_memory_is_one_line_and_status_1(video, tmp_path, capsys, monkeypatch):
    import torch

    import fourd_hub.pipelines

    def pipeline(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 8 GiB.\nmore")

    monkeypatch.setattr(fourd_hub.pipelines, "pipeline", pipeline)
    code, _, err = _run(capsys, "depth-estimation", video[0], "--model", "any", "-o", tmp_path / "d.npz", "--quiet")
    assert code == 1 and err.count("\n") == 1
    assert "out of memory on the device (CUDA out of memory. Tried to allocate 2.00 GiB)" in err and "--batch-size" in err
    monkeypatch.setattr(fourd_hub.pipelines, "pipeline", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):  # other runtime errors are bugs: the traceback is kept
        main(["depth-estimation", str(video[0]), "--model", "any", "-o", str(tmp_path / "d.npz")])


def test_the_help_grid_limit_is_the_pipelines_limit():
    import fourd_hub.cli
    import fourd_hub.pipelines

    assert fourd_hub.cli.MAX_GRID_SIZE == fourd_hub.pipelines.MAX_GRID_SIZE


# ----------------------------------------------------------------------------------------------
# Label propagation: video-object-segmentation and keypoint-tracking


@pytest.fixture(scope="module")
def propagation_inputs(tmp_path_factory):
    """A tiny RVM and a MooG directory, and first-frame masks for the test video (72 x 96)."""
    import torch
    from PIL import Image

    from fourd_hub import MooGModel, RVMModel
    from fourd_hub.models.moog.configuration_moog import debug_config as moog_debug
    from fourd_hub.models.rvm.configuration_rvm import debug_config as rvm_debug

    root = tmp_path_factory.mktemp("propagation")
    torch.manual_seed(0)
    RVMModel(rvm_debug()).save_pretrained(root / "rvm")
    MooGModel(moog_debug()).save_pretrained(root / "moog")
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[10:40, 20:60] = 1
    mask[45:70, 5:30] = 2
    image = Image.fromarray(mask, mode="P")
    image.putpalette([0, 0, 0, 250, 10, 10, 10, 250, 10] + [0] * (253 * 3))
    image.save(root / "mask.png")
    Image.fromarray(mask[:-1], mode="L").save(root / "small.png")
    Image.fromarray(np.zeros((HEIGHT, WIDTH, 3), np.uint8)).save(root / "rgb.png")
    return {name: root / name for name in ("rvm", "moog")} | {
        "mask": root / "mask.png", "small": root / "small.png", "rgb": root / "rgb.png",
    }


def test_segmentation_command_writes_palette_pngs_and_an_overlay(video, models, propagation_inputs, tmp_path, capsys):
    from PIL import Image

    output = tmp_path / "masks"
    code, out, err = _run(
        capsys, "video-object-segmentation", video[0], "--model", propagation_inputs["rvm"], "--mask", propagation_inputs["mask"],
        "--size", "32x48", "--end", "5", "-o", output, "--quiet",
    )
    assert code == 0, err
    assert "5 frames" in out
    assert sorted(p.name for p in output.iterdir()) == [f"frame_{i:05d}.png" for i in range(5)]
    with Image.open(output / "frame_00004.png") as saved:
        assert saved.mode == "P" and saved.getpalette()[:9] == [0, 0, 0, 250, 10, 10, 10, 250, 10]
        assert set(np.unique(np.asarray(saved))) <= {0, 1, 2}
    overlay = tmp_path / "overlay.mp4"
    code, _, err = _run(
        capsys, "video-object-segmentation", video[0], "--model", models["fourds-backbone"], "--mask", propagation_inputs["mask"],
        "--size", "32x48", "--end", "4", "--topk", "3", "--n-context", "2", "-o", overlay, "--quiet",
    )
    assert code == 0, err
    with open_video(overlay) as reader:
        assert len(reader) == 4 and (reader.metadata.height, reader.metadata.width) == (HEIGHT, WIDTH)


def test_keypoint_command_writes_json(video, propagation_inputs, tmp_path, capsys):
    output = tmp_path / "keypoints.json"
    code, _, err = _run(
        capsys, "keypoint-tracking", video[0], "--model", propagation_inputs["rvm"], "--keypoints", "20,20; 70.5,50",
        "--size", "32x48", "--end", "5", "--no-restrict-neighborhood", "-o", output, "--quiet",
    )
    assert code == 0, err
    saved = json.loads(output.read_text())
    assert np.array(saved["keypoints"]).shape == (5, 2, 2) and saved["query_keypoints"] == [[20.0, 20.0], [70.5, 50.0]]
    # A keypoint outside the frame is kept with --allow-outside.
    code, _, err = _run(
        capsys, "keypoint-tracking", video[0], "--model", propagation_inputs["rvm"], "--keypoints", "20,20;500,50",
        "--allow-outside", "--size", "32x48", "--end", "3", "-o", tmp_path / "outside.npz", "--quiet",
    )
    assert code == 0, err
    with np.load(tmp_path / "outside.npz", allow_pickle=False) as arrays:
        assert not arrays["visible"][:, 1].any()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["video-object-segmentation", "--mask", "{small}", "-o", "{out}"], "the mask is 96x71 (W x H) but the video's frames are 96x72"),
        (["video-object-segmentation", "--mask", "{rgb}", "-o", "{out}"], "mode 'RGB'"),
        (["video-object-segmentation", "--mask", "{out}.png", "-o", "{out}"], "does not exist"),
        (["video-object-segmentation", "--mask", "{mask}", "--size", "30x48", "-o", "{out}"], "not a multiple of the model's 8x8 patch"),
        (["video-object-segmentation", "--mask", "{mask}", "--size", "wide", "-o", "{out}"], "HxW"),
        (["video-object-segmentation", "--mask", "{mask}", "-o", "{out}.json"], "cannot write video-object-segmentation results"),
        (["video-object-segmentation", "--mask", "{mask}", "--model", "{moog}", "-o", "{out}"], "its tokens are off the grid"),
        (["keypoint-tracking", "--keypoints", "20,20;100,5", "-o", "{out}.json"], "keypoints 1: (100, 5) are outside the 96x72 frame"),
        (["keypoint-tracking", "--keypoints", "0,20,20", "-o", "{out}.json"], "no t"),
        (["keypoint-tracking", "--keypoints", "20,20", "--temperature", "0", "-o", "{out}.json"], "temperature must be a positive number"),
    ],
)
def test_bad_propagation_commands_fail_cleanly_without_output(video, propagation_inputs, tmp_path, capsys, argv, message):
    values = {**{name: str(path) for name, path in propagation_inputs.items()}, "out": tmp_path / "out"}
    argv = [arg.format(**values) for arg in argv]
    if "--model" not in argv:
        argv += ["--model", str(propagation_inputs["rvm"])]
    code, _, err = _run(capsys, argv[0], video[0], *argv[1:], "--quiet")
    assert code == 2
    assert err.startswith(f"fourd-hub {argv[0]}: error:") and "Traceback" not in err
    assert message in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_list_json_carries_what_a_script_needs_to_fetch_the_weights(capsys):
    assert main(["list", "--json", "--family", "rvm"]) == 0
    listed = json.loads(capsys.readouterr().out)
    by_name = {item["name"]: item for item in listed}
    assert set(by_name) == {"rvm-s", "rvm-b", "rvm-l", "rvm-h"}
    small = by_name["rvm-s"]
    # The official URL is the bucket's path of the file named beside it; the repo id is our org's.
    assert small["original_url"] == "https://storage.googleapis.com/representations4d/checkpoints/" + small["original_file"]
    assert small["hub_repo_id"] == "fourd-hub/rvm-s" and small["family"] == "rvm" and small["class"] == "RVMModel"
    assert isinstance(small["num_parameters"], int) and small["params"] == f"{small['num_parameters'] / 1e6:,.1f}M"
    assert {"sha256", "file_size", "license", "base_model", "description"} <= set(small)
