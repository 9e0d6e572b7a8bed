"""Pretraining with FSDP2 in 2 processes under torchrun (CPU, gloo): the loss falls, a killed run
resumes exactly, and the sharded checkpoints export to directories ``from_pretrained`` loads
(4DS in full; MooG and RVM: their debug recipes train, export and, RVM, resume in one process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

STEPS = 8


def torchrun(output_dir: Path, recipe: str, *args: str, env: dict | None = None, wait: bool = True):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "fourd_hub.training.pretrain", "--recipe", recipe, "--output-dir", str(output_dir), "--no-progress", *args,
    ]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    if not wait:
        return subprocess.Popen(command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    result = subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def logged_losses(output_dir: Path) -> dict[int, float]:
    lines = (output_dir / "metrics.jsonl").read_text().splitlines()
    return {record["step"]: record["loss"] for record in map(json.loads, lines)}


@pytest.fixture(scope="module")
def fourds_run(tmp_path_factory) -> Path:
    """An uninterrupted 2-process run of the debug 4DS recipe (checkpoints every 4 steps)."""
    output_dir = tmp_path_factory.mktemp("fourds") / "run"
    torchrun(output_dir, "debug", "--max-steps", str(STEPS), "--set", "checkpoint_every=4")
    return output_dir


def test_fourds_fsdp_pretraining_loss_falls(fourds_run):
    losses = logged_losses(fourds_run)
    assert sorted(losses) == list(range(1, STEPS + 1))
    first, last = (losses[1] + losses[2]) / 2, (losses[STEPS - 1] + losses[STEPS]) / 2
    assert last < 0.75 * first, losses
    checkpoints = sorted(p.name for p in (fourds_run / "checkpoints").iterdir())
    assert checkpoints == ["step_00000004", "step_00000008"]
    shards = sorted(p.name for p in (fourds_run / "checkpoints" / "step_00000008").glob("*.distcp"))
    assert len(shards) == 2  # one shard per rank: the state really is sharded
    state = json.loads((fourds_run / "checkpoints" / "step_00000008" / "trainer_state.json").read_text())
    assert state["step"] == STEPS and state["world_size"] == 2 and state["clips_consumed"] == STEPS * 8


def test_killed_run_resumes_with_identical_losses(fourds_run, tmp_path):
    output_dir = tmp_path / "run"
    # The run sleeps after each checkpoint (test hook); it is killed (SIGKILL, whole process group)
    # while sleeping after the step-4 checkpoint, before step 5.
    process = torchrun(output_dir, "debug", "--max-steps", str(STEPS), "--set", "checkpoint_every=4",
                       env={"FOURD_HUB_TEST_PAUSE_AFTER_CHECKPOINT": "120"}, wait=False)
    checkpoint = output_dir / "checkpoints" / "step_00000004"
    deadline = time.monotonic() + 240
    while not checkpoint.is_dir():
        assert process.poll() is None, process.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint after 240 s"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert sorted(logged_losses(output_dir)) == [1, 2, 3, 4]

    result = torchrun(output_dir, "debug", "--max-steps", str(STEPS), "--set", "checkpoint_every=4")
    assert "resumed from" in result.stdout and "step 4" in result.stdout
    assert logged_losses(output_dir) == logged_losses(fourds_run)  # every step, bit for bit


def test_resume_refuses_another_recipe(fourds_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(fourds_run, copy)
    command = [sys.executable, "-m", "fourd_hub.training.pretrain", "--recipe", "debug", "--output-dir", str(copy),
               "--max-steps", str(STEPS), "--learning-rate", "0.01", "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "cannot resume" in result.stderr and "learning_rate" in result.stderr


def test_sharded_checkpoint_exports_to_from_pretrained(fourds_run, tmp_path):
    from fourd_hub import FourDSForPreTraining, FourDSModel, from_pretrained
    from fourd_hub.training.checkpoint import export_checkpoint

    final = from_pretrained(fourds_run / "final")  # written by the run itself (gathered on rank 0)
    assert isinstance(final, FourDSForPreTraining)
    exported = export_checkpoint(fourds_run / "checkpoints" / "step_00000008", tmp_path / "export")
    again = FourDSForPreTraining.from_pretrained(exported)
    for (name, a), (_, b) in zip(final.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    # The backbone alone, and its features on a clip of the training size.
    backbone = FourDSModel.from_pretrained(exported)
    assert torch.equal(backbone.embeddings.position_embedding, final.fourds.embeddings.position_embedding)
    out = backbone(torch.rand(1, 8, 3, 32, 32))
    assert out.readout_features.shape == (1, 8, 16, 64)
    # The trained weights are not the seeded initial ones.
    from fourd_hub.training.pretrain import build_model
    from fourd_hub.training.recipes import get_recipe

    initial = build_model(get_recipe("debug"))
    assert not torch.equal(initial.decoder.latent_tokens, again.decoder.latent_tokens)
    # A run directory exports its latest checkpoint.
    assert export_checkpoint(fourds_run, tmp_path / "export2").is_dir()


def test_moog_fsdp_pretraining_loss_falls(tmp_path):
    from fourd_hub import MooGForNextFramePrediction, MooGModel

    output_dir = tmp_path / "moog"
    torchrun(output_dir, "debug-moog", "--max-steps", "12", "--set", "checkpoint_every=0")
    losses = logged_losses(output_dir)
    assert sorted(losses) == list(range(1, 13))
    assert (losses[11] + losses[12]) / 2 < 0.6 * (losses[1] + losses[2]) / 2, losses
    model = MooGForNextFramePrediction.from_pretrained(output_dir / "final")
    assert MooGModel.from_pretrained(output_dir / "final").config.num_tokens == model.config.num_tokens == 16
    assert [p.name for p in (output_dir / "checkpoints").iterdir()] == ["step_00000012"]


def test_rvm_fsdp_pretraining_loss_falls_resumes_and_exports(tmp_path):
    """debug-rvm in 2 processes: the masked-reconstruction loss falls, the checkpoints are sharded,
    the step-6 checkpoint continues in one process (DCP reshards) along the 2-process losses, and
    the run's export loads as the reconstruction model and as the backbone."""
    import shutil

    from fourd_hub import RVMForMaskedVideoReconstruction, RVMModel
    from fourd_hub.training.checkpoint import export_checkpoint
    from fourd_hub.training.pretrain import pretrain
    from fourd_hub.training.recipes import get_recipe

    output_dir = tmp_path / "rvm"
    torchrun(output_dir, "debug-rvm", "--max-steps", "12", "--set", "checkpoint_every=6")
    losses = logged_losses(output_dir)
    assert sorted(losses) == list(range(1, 13))
    assert (losses[11] + losses[12]) / 2 < 0.6 * (losses[1] + losses[2]) / 2, losses
    assert sorted(p.name for p in (output_dir / "checkpoints").iterdir()) == ["step_00000006", "step_00000012"]
    assert len(list((output_dir / "checkpoints" / "step_00000012").glob("*.distcp"))) == 2

    copy = tmp_path / "resumed"
    shutil.copytree(output_dir, copy, ignore=shutil.ignore_patterns("final", "step_00000012"))
    resumed = pretrain(get_recipe("debug-rvm", max_steps=12, checkpoint_every=6), copy, progress=False, export=False)
    assert resumed.start_step == 6 and sorted(resumed.losses) == list(range(6, 12))
    for step in range(7, 13):  # bf16: other batch shapes and gradient sums, the same clips and masks
        assert resumed.losses[step - 1] == pytest.approx(losses[step], rel=1e-4), (step, resumed.losses, losses)

    model = RVMForMaskedVideoReconstruction.from_pretrained(output_dir / "final")
    exported = RVMForMaskedVideoReconstruction.from_pretrained(export_checkpoint(output_dir, tmp_path / "export"))
    for (name, a), (_, b) in zip(model.state_dict().items(), exported.state_dict().items()):
        assert torch.equal(a, b), name
    backbone = RVMModel.from_pretrained(output_dir / "final").eval()
    assert torch.equal(backbone.embeddings.cls_token, model.rvm.embeddings.cls_token)
    with torch.no_grad():
        assert backbone(torch.rand(1, 2, 3, 32, 32)).patch_features.shape == (1, 2, 4, 4, 32)


def test_two_process_checkpoint_resumes_in_one_process(fourds_run, tmp_path):
    """DCP reshards: a 2-process checkpoint continues in a single process; the step's clips are the
    same set and each clip's mask is drawn from (seed, sample index) only, so the losses follow the
    2-process run to bf16 rounding (other batch shapes and gradient sums)."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(fourds_run, copy)
    shutil.rmtree(copy / "checkpoints" / "step_00000008")
    command = [sys.executable, "-m", "fourd_hub.training.pretrain", "--recipe", "debug", "--output-dir", str(copy),
               "--max-steps", str(STEPS), "--set", "checkpoint_every=4", "--no-progress", "--no-export"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    resumed, reference = logged_losses(copy), logged_losses(fourds_run)
    assert sorted(resumed) == list(range(1, STEPS + 1))
    for step in range(5, STEPS + 1):
        assert resumed[step] == pytest.approx(reference[step], rel=1e-4), (step, resumed, reference)
    state = json.loads((copy / "checkpoints" / "step_00000008" / "trainer_state.json").read_text())
    assert state["world_size"] == 1 and state["micro_batches_consumed"] == STEPS * 4


def _save_with_a_full_disk_on_rank_1(rank: int, root: str) -> None:
    """One of 2 gloo processes: save a checkpoint of the FSDP2 debug model while rank 1's disk is full."""
    import errno
    import datetime

    import torch.distributed as dist

    from fourd_hub.training.checkpoint import checkpoint_dir, save_checkpoint
    from fourd_hub.training.parallel import apply_fsdp
    from fourd_hub.training.pretrain import build_model
    from fourd_hub.training.recipes import get_recipe

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{root}/store", rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=60))
    model = apply_fsdp(build_model(get_recipe("debug")), "fp32")
    optimizer = torch.optim.AdamW(model.parameters())
    if rank == 1:
        real_write_bytes = Path.write_bytes

        def write_bytes(self, data):
            if self.name.startswith("rng_rank"):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write_bytes(self, data)

        Path.write_bytes = write_bytes
    try:
        save_checkpoint(checkpoint_dir(Path(root) / "run", 1), model, optimizer, {"step": 1})
        outcome = "saved"
    except OSError as error:
        outcome = f"OSError {error.errno}: {error}"
    except BaseException as error:  # noqa: BLE001 - reported to the test
        outcome = f"{type(error).__name__}: {error}"
    (Path(root) / f"rank{rank}.txt").write_text(outcome)
    dist.destroy_process_group()


def test_disk_full_on_one_rank_fails_every_rank_without_hanging(tmp_path):
    """Rank 1 alone runs out of room while rank 0's part succeeds: both ranks raise the one-line
    "disk full" error (no barrier waits for the collective timeout) and no step_*.tmp is left."""
    import errno
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_save_with_a_full_disk_on_rank_1, args=(rank, str(tmp_path))) for rank in range(2)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join(timeout=180)
        assert all(process.exitcode == 0 for process in processes), [process.exitcode for process in processes]
    finally:
        for process in processes:  # a hang (the bug this guards against) must not outlive the test
            if process.is_alive():
                process.kill()
                process.join()
    step = tmp_path / "run" / "checkpoints" / "step_00000001"
    for rank in range(2):
        outcome = (tmp_path / f"rank{rank}.txt").read_text()
        assert outcome.startswith(f"OSError {errno.ENOSPC}: ") and "disk full" in outcome and str(step) in outcome, outcome
        assert len(outcome.splitlines()) == 1
    assert list((tmp_path / "run" / "checkpoints").iterdir()) == []
