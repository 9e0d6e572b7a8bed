"""benchmarks/gpu_check.py: its exit without CUDA, its FLOP / MFU arithmetic, and a CPU dry run of every section.

The script is not a package module: it is loaded from its path (``benchmarks/`` has no
``__init__``). Expected numbers are worked out by hand in the tests.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _without_cuda() -> dict:
    return {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the same on a GPU machine


def test_exits_with_a_message_and_status_0_without_cuda():
    # -X importtime lists every module imported (on stderr): only torch's, not fourd_hub's or transformers'.
    command = [sys.executable, "-X", "importtime", str(SCRIPT)]
    done = subprocess.run(command, capture_output=True, text=True, env=_without_cuda(), cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("no CUDA device: gpu_check needs a CUDA GPU")
    assert "nothing was measured" in lines[0]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" in imported
    assert not {name for name in imported if name.split(".")[0] in ("fourd_hub", "transformers", "av")}


def test_cpu_without_debug_is_refused(gpu_check, capsys):
    assert gpu_check.main(["--device", "cpu"]) == 2
    assert "add --debug" in capsys.readouterr().err


def test_bad_peak_is_refused(gpu_check, capsys):
    assert gpu_check.main(["--device", "cpu", "--debug", "--peak-tflops", "-5"]) == 2
    assert "--peak-tflops must be positive" in capsys.readouterr().err


def test_vit_forward_flops_hand_computed(gpu_check):
    # N=4 tokens, D=2, L=1, M=3, P=5 inputs per token:
    # embedding 2*4*5*2 = 80; projections 2*4*(4*2*2 + 2*2*3) = 8*28 = 224; attention 4*4*4*2 = 128.
    assert gpu_check.vit_forward_flops(tokens=4, hidden=2, layers=1, mlp=3, patch_inputs=5) == 80 + 224 + 128
    # Two blocks: the embedding once, the block twice.
    assert gpu_check.vit_forward_flops(tokens=4, hidden=2, layers=2, mlp=3, patch_inputs=5) == 80 + 2 * (224 + 128)


def test_counted_fourds_flops_equal_the_formula(gpu_check):
    from fourd_hub.models.fourds.configuration_fourds import debug_config

    config = debug_config()
    # The debug 4DS: 4 frames of 32x24, 2x8x8 patches -> N = 2*4*3 = 24 tokens; D=32, M=48, L=3,
    # P = 3*2*8*8 = 384. Embedding 2*24*384*32 = 589,824; per block 2*24*(4*32*32 + 2*32*48)
    # = 344,064 plus attention 4*24*24*32 = 73,728; total 589,824 + 3*417,792 = 1,843,200.
    assert (config.num_frames, *config.image_size, *config.patch_size) == (4, 32, 24, 2, 8, 8)
    assert (config.hidden_size, config.intermediate_size, config.num_hidden_layers) == (32, 48, 3)
    flops, parameters = gpu_check.fourds_forward_flops(config)
    assert flops == 1_843_200
    assert gpu_check.fourds_forward_flops_analytic(config) == 1_843_200
    from fourd_hub import FourDSModel

    assert parameters == sum(p.numel() for p in FourDSModel(config).parameters())


def test_count_flops_of_a_linear(gpu_check):
    layer = torch.nn.Linear(3, 5, device="meta")
    x = torch.zeros(2, 3, device="meta")
    assert gpu_check.count_flops(lambda: layer(x)) == 2 * 2 * 3 * 5  # 2 rows x 3 inputs x 5 outputs, multiply-add = 2


def test_training_flops_and_mfu(gpu_check):
    assert gpu_check.training_flops_6nd(parameters=10, tokens=7) == 420
    # 2 TFLOP per item at 10 items/s = 20 TFLOP/s of a 100 TFLOP/s device: 20%.
    assert gpu_check.model_flops_utilization(2e12, 10.0, 100.0) == pytest.approx(0.2)
    assert gpu_check.model_flops_utilization(2e12, 10.0, None) is None


@pytest.mark.parametrize(
    "name, peak, key",
    [
        ("NVIDIA H100 80GB HBM3", 989.0, "H100"),
        ("NVIDIA H100 PCIe", 756.0, "H100 PCIe"),
        ("NVIDIA H200", 989.0, "H200"),
        ("NVIDIA A100-SXM4-80GB", 312.0, "A100"),  # not A10's 125
        ("NVIDIA A10G", 70.0, "A10G"),
        ("NVIDIA L40S", 362.0, "L40S"),  # not L4's 121
        ("NVIDIA L4", 121.0, "L4"),
    ],
)
def test_peak_table_lookup(gpu_check, name, peak, key):
    assert gpu_check.lookup_peak_tflops(name) == (peak, f"table: {key}")


def test_peak_unknown_and_override(gpu_check):
    assert gpu_check.lookup_peak_tflops("Tesla V100-SXM2-16GB") == (None, "unknown")
    assert gpu_check.lookup_peak_tflops("Tesla V100-SXM2-16GB", 125.0) == (125.0, "--peak-tflops")
    assert gpu_check.lookup_peak_tflops("NVIDIA H100 80GB HBM3", 500.0) == (500.0, "--peak-tflops")
    with pytest.raises(ValueError, match="--peak-tflops must be positive"):
        gpu_check.lookup_peak_tflops("NVIDIA H100", 0.0)


def test_batch_sizes_are_powers_of_two_up_to_the_maximum(gpu_check):
    assert gpu_check.batch_sizes(1) == [1]
    assert gpu_check.batch_sizes(48) == [1, 2, 4, 8, 16, 32]
    assert gpu_check.batch_sizes(64) == [1, 2, 4, 8, 16, 32, 64]
    with pytest.raises(ValueError, match="--max-batch"):
        gpu_check.batch_sizes(0)


def test_sweep_stops_at_the_first_batch_that_runs_out_of_memory(gpu_check):
    tried = []

    def run(batch):
        tried.append(batch)
        if batch >= 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return {"clips_per_s": float(batch)}

    rows = gpu_check.sweep_batch_sizes(run, max_batch=64)
    assert tried == [1, 2, 4, 8]
    assert rows == [
        {"batch": 1, "clips_per_s": 1.0}, {"batch": 2, "clips_per_s": 2.0}, {"batch": 4, "clips_per_s": 4.0},
        {"batch": 8, "out_of_memory": True},
    ]


def test_sweep_does_not_swallow_other_errors(gpu_check):
    def run(batch):
        raise RuntimeError("a real bug")

    with pytest.raises(RuntimeError, match="a real bug"):
        gpu_check.sweep_batch_sizes(run, max_batch=4)


def test_time_per_call_runs_warmup_plus_timed_calls(gpu_check):
    calls = []
    seconds = gpu_check.time_per_call(lambda: calls.append(1), torch.device("cpu"), warmup=2, steps=3)
    assert len(calls) == 5
    assert seconds >= 0


def test_format_table(gpu_check):
    columns = [("model", "model", ""), ("batch", "batch", "d"), ("MFU", "mfu", "%"), ("GiB", "peak_gib", ".1f")]
    rows = [{"model": "m", "batch": 1, "mfu": 0.25, "peak_gib": None}, {"model": "m", "batch": 2, "out_of_memory": True}]
    lines = gpu_check.format_table(rows, columns).splitlines()
    assert lines[0].split() == ["model", "batch", "MFU", "GiB"]
    assert lines[1].split() == ["m", "1", "25.0%", "-"]
    assert lines[2].split() == ["m", "2", "out", "of", "memory"]
    assert gpu_check.format_table([{"model": "m", "batch": 1, "mfu": None, "peak_gib": 1.0}], columns).splitlines()[1].split()[2] == "unknown"


@pytest.mark.slow
def test_cpu_dry_run_of_every_section(tmp_path):
    """--device cpu --debug: every section runs its code path with the tiny debug models."""
    out = tmp_path / "gpu_check.json"
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--debug", "--max-batch", "1", "--peak-tflops", "1000", "--json", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["errors"] == {}
    assert set(results["sections"]) == {"fourds", "moog", "pipeline", "pretrain"}
    assert results["peak_tflops"] == 1000.0 and results["debug"] is True

    (fourds,) = results["sections"]["fourds"]
    assert fourds["batch"] == 1 and fourds["clips_per_s"] > 0
    assert fourds["gflop_per_clip"] == pytest.approx(1_843_200 / 1e9)  # the debug 4DS, see above
    # MFU = FLOP/s over 1000 TFLOP/s.
    assert fourds["mfu"] == pytest.approx(1_843_200 * fourds["clips_per_s"] / 1e15)

    (moog,) = results["sections"]["moog"]
    assert moog["frames"] == 2 and moog["frames_per_s"] > 0 and moog["step_ms"] > 0

    pipeline_rows = results["sections"]["pipeline"]
    assert [row["batch"] for row in pipeline_rows] == [1, 2]
    assert all(row["frames"] == 8 and row["frames_per_s"] > 0 for row in pipeline_rows)

    (pretrain,) = results["sections"]["pretrain"]
    # The debug recipe: 8 frames of 32x32 in 2x8x8 patches -> 4*4*4 = 64 tokens per clip, micro-batch 2.
    assert pretrain["micro_batch"] == 2 and pretrain["tokens_per_clip"] == 64
    assert pretrain["tokens_per_s"] == pytest.approx(64 * pretrain["clips_per_s"])
    assert math.isfinite(pretrain["first_loss"]) and math.isfinite(pretrain["last_loss"])
    assert pretrain["mfu_6nd"] == pytest.approx(6 * pretrain["parameters"] * 64 * pretrain["clips_per_s"] / 1e15)

    for title in ("4DS backbones", "MooG", "depth pipeline", "FSDP2 pretraining"):
        assert title in done.stdout


def test_section_falls_back_to_the_math_kernel_once(gpu_check):
    env = gpu_check.Env(device=torch.device("cpu"), dtype=torch.bfloat16, debug=True, warmup=0, steps=1, max_batch=1, peak_tflops=None)
    seen = []

    def section(env, args):
        seen.append(env.allow_math_attention)
        if len(seen) == 1:
            raise RuntimeError("No available kernel. Aborting execution.")
        return [{"model": "fake"}]

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(gpu_check.BENCHMARKS, "fourds", section)
        assert gpu_check.run_section("fourds", env, None) == [{"model": "fake"}]
    assert seen == [False, True]
    assert env.allow_math_attention is False  # only for that section
    assert len(env.notes) == 1 and "math kernel" in env.notes[0]


def test_a_failing_section_does_not_stop_the_others(gpu_check, tmp_path, capsys):
    def broken(env, args):
        raise ValueError("broken on purpose")

    def fine(env, args):
        return [{"model": "MooG-fake", "batch": 1, "frames_per_s": 3.0}]

    out = tmp_path / "results.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(gpu_check.BENCHMARKS, "fourds", broken)
        patch.setitem(gpu_check.BENCHMARKS, "moog", fine)
        status = gpu_check.main(["--device", "cpu", "--debug", "--sections", "fourds", "moog", "--json", str(out)])
    assert status == 1
    results = json.loads(out.read_text())
    assert results["errors"] == {"fourds": "ValueError: broken on purpose"}
    assert results["sections"] == {"moog": [{"model": "MooG-fake", "batch": 1, "frames_per_s": 3.0}]}
    assert "section fourds failed" in capsys.readouterr().out


def test_parse_resolution(gpu_check):
    assert gpu_check.parse_resolution("640x360") == (640, 360)
    assert gpu_check.parse_resolution("1280X720") == (1280, 720)
    for bad in ("640", "640x", "axb", "641x360", "8x8"):
        with pytest.raises(ValueError, match="--pipeline-resolution"):
            gpu_check.parse_resolution(bad)
