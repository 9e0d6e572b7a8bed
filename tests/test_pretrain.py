"""The pretraining trainer in one process: recipes, schedule, optimiser groups, FLOPs, checkpoints,
resume, export and the command line. (Two processes: test_pretrain_distributed.py.)"""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from fourd_hub.training.checkpoint import export_checkpoint, latest_checkpoint, list_checkpoints
from fourd_hub.training.optim import no_weight_decay_parameter_names, parameter_groups
from fourd_hub.training.parallel import transformer_blocks
from fourd_hub.data.pretraining import pretraining_stream
from fourd_hub.training.pretrain import (
    build_model,
    clip_generator,
    clip_random_inputs,
    learning_rate_at,
    main,
    micro_batch_generator,
    pretrain,
    training_flops_per_clip,
)
from fourd_hub.training.recipes import RECIPES, get_recipe

pytestmark = pytest.mark.training


def test_paper_recipes_match_table_4():
    # Hand-typed from the paper (Table 4) and architecture.md section 5.
    for name in ("4ds-s", "4ds-b", "4ds-l", "4ds-h", "4ds-g", "4ds-e"):
        recipe = RECIPES[name]
        assert (recipe.max_steps, recipe.warmup_steps, recipe.learning_rate, recipe.global_batch_size) == (488_282, 10_000, 1e-4, 2048)
        assert (recipe.weight_decay, recipe.betas, recipe.crop_size, recipe.num_frames, recipe.frame_stride) == (0.05, (0.9, 0.95), (224, 224), 16, 2)
        assert recipe.min_resize_factor == 1.15 and recipe.mixed_precision == "bf16"
        config = recipe.build_config()
        assert config.mask_ratio == 0.95 and config.num_decoder_layers == 4 and config.decoder_patch_size == (2, 16, 16)
    j = RECIPES["4ds-j"]
    assert (j.max_steps, j.warmup_steps, j.learning_rate, j.crop_size) == (1_000_000, 100_000, 2e-4, (256, 256))
    config = j.build_config()
    assert (config.num_decoder_layers, config.decoder_patch_size, config.hidden_size) == (2, (4, 32, 32), 4096)
    moog = RECIPES["moog-movi"]
    assert (moog.num_frames, moog.global_batch_size, moog.learning_rate, moog.warmup_steps, moog.min_learning_rate) == (8, 128, 1e-4, 1000, 1e-7)
    assert (moog.betas[1], moog.grad_clip, moog.build_config().encoder_strides) == (0.95, 1.0, [1, 1, 1, 2, 1, 2])


def test_recipe_validation_and_overrides():
    assert get_recipe("debug", max_steps=5).max_steps == 5
    with pytest.raises(ValueError, match="unknown recipe"):
        get_recipe("4ds-x")
    with pytest.raises(ValueError, match="unknown recipe fields"):
        get_recipe("debug", max_step=5)
    for bad in (dict(max_steps=0), dict(family="vit"), dict(mixed_precision="fp16"), dict(learning_rate=0.0),
                dict(min_learning_rate=1.0), dict(grad_clip=-1.0), dict(crop_size=(32,)), dict(min_resize_factor=0.5),
                dict(betas=(0.9, 1.5)), dict(micro_batch_size=True)):
        with pytest.raises(ValueError):
            get_recipe("debug", **bad)
    assert get_recipe("debug").gradient_accumulation_steps(2) == 2  # 8 clips = 2 x 2 processes x 2
    with pytest.raises(ValueError, match="not a multiple"):
        get_recipe("debug").gradient_accumulation_steps(3)


def test_learning_rate_schedule():
    recipe = get_recipe("debug", max_steps=110, warmup_steps=10, learning_rate=1e-3, min_learning_rate=1e-5)
    assert learning_rate_at(0, recipe) == 0.0  # warm-up starts from 0
    assert learning_rate_at(5, recipe) == pytest.approx(5e-4)
    assert learning_rate_at(10, recipe) == pytest.approx(1e-3)
    assert learning_rate_at(60, recipe) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)  # half-way down the cosine
    assert learning_rate_at(110, recipe) == pytest.approx(1e-5)
    values = [learning_rate_at(s, recipe) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_no_weight_decay_on_norms_biases_and_positions():
    model = build_model(get_recipe("debug"))
    exempt = no_weight_decay_parameter_names(model)
    assert "fourds.embeddings.position_embedding" in exempt and "decoder.latent_tokens" in exempt
    assert "fourds.layers.0.attention_norm.weight" in exempt and "fourds.layers.0.mlp.fc_in.bias" in exempt
    assert "fourds.layers.0.mlp.fc_in.weight" not in exempt and "decoder.to_pixels.weight" not in exempt
    decay, no_decay = parameter_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert len(transformer_blocks(model)) == 4


def test_micro_batch_generators_are_distinct_and_reproducible():
    draw = lambda *key: torch.rand(4, generator=micro_batch_generator(*key))  # noqa: E731
    assert torch.equal(draw(0, 3, 1, 0), draw(0, 3, 1, 0))
    keys = [(0, 3, 1, 0), (1, 3, 1, 0), (0, 4, 1, 0), (0, 3, 0, 0), (0, 3, 1, 1)]
    values = [draw(*key) for key in keys]
    assert all(not torch.equal(values[0], other) for other in values[1:])


def test_clip_generators_depend_on_seed_and_sample_index_only():
    draw = lambda *key: torch.rand(4, generator=clip_generator(*key))  # noqa: E731
    assert torch.equal(draw(0, 5), draw(0, 5))
    values = [draw(0, 5), draw(1, 5), draw(0, 6), draw(5, 0)]
    assert all(not torch.equal(values[0], other) for other in values[1:])


def _stream_batches(recipe, micro_batch_size: int, world_size: int, count: int) -> list[dict]:
    """The first ``count`` micro-batches of every rank, for a layout of the same global batch."""
    recipe = recipe.replace(micro_batch_size=micro_batch_size)
    batches = []
    for rank in range(world_size):
        stream = iter(pretraining_stream(recipe, rank, world_size))
        batches += [next(stream) for _ in range(count)]
    return batches


def _by_clip(batches: list[dict], values: list[torch.Tensor]) -> dict[int, torch.Tensor]:
    return {int(i): v for batch, value in zip(batches, values) for i, v in zip(batch["sample_index"], value)}


@pytest.mark.parametrize("name, key", [("debug", "mask"), ("debug-moog", "initial_state"), ("debug-moog", "subsample_offsets")])
def test_clip_random_inputs_do_not_depend_on_the_grouping(name, key):
    """The clips of one step (global batch 8), grouped as 1 micro-batch of 8, 2 of 4 or 4 of 2 in
    one process, or 2 of 2 in each of 2 processes: every clip gets the same random input, bit for bit."""
    recipe = get_recipe(name, mixed_precision="fp32")
    model = build_model(recipe).train()
    reference = None
    for micro_batch_size, world_size in ((8, 1), (4, 1), (2, 1), (2, 2)):
        batches = _stream_batches(recipe, micro_batch_size, world_size, 8 // (micro_batch_size * world_size))
        inputs = [clip_random_inputs(model, batch["sample_index"], recipe.seed)[key] for batch in batches]
        per_clip = _by_clip(batches, inputs)
        assert sorted(per_clip) == list(range(8))
        if reference is None:
            reference = per_clip
            assert len({tuple(v.flatten().tolist()) for v in per_clip.values()}) == 8  # clips do differ
        assert all(torch.equal(per_clip[i], reference[i]) for i in range(8)), (micro_batch_size, world_size)


def test_every_pretraining_model_draws_its_clip_inputs_itself():
    """The trainer asks the model class for a clip's random inputs (no list of families in the
    trainer), and a class without clip_random_inputs is refused by name."""
    from fourd_hub.models.moog.modeling_moog import MooGForNextFramePrediction

    model = build_model(get_recipe("debug-moog"))
    inputs = clip_random_inputs(model, torch.tensor([3, 4]), seed=0)
    assert inputs["initial_state"].shape == (2, 16, 32) and inputs["subsample_offsets"].shape == (2, model.config.num_frames, 2)
    own = MooGForNextFramePrediction.clip_random_inputs(model.config, clip_generator(0, 3))
    assert torch.equal(inputs["initial_state"][:1], own["initial_state"]) and torch.equal(inputs["subsample_offsets"][:1], own["subsample_offsets"])
    assert not torch.equal(inputs["initial_state"][0], inputs["initial_state"][1])


def test_a_pretraining_model_without_clip_inputs_is_refused(monkeypatch):
    from fourd_hub.models.moog.modeling_moog import MooGForNextFramePrediction

    model = build_model(get_recipe("debug-moog"))
    monkeypatch.delattr(MooGForNextFramePrediction, "clip_random_inputs")
    with pytest.raises(TypeError, match="MooGForNextFramePrediction has no per-clip random inputs"):
        clip_random_inputs(model, torch.tensor([0]), seed=0)


def test_step_loss_does_not_depend_on_the_grouping():
    """4DS draws all its randomness per clip, so the step's loss (the mean over micro-batches of
    equal size = the mean over clips) is the same for 1 micro-batch of 4 and 2 of 2, to float rounding."""
    recipe = get_recipe("debug", mixed_precision="fp32")
    model = build_model(recipe).train()

    def step_loss(micro_batch_size: int) -> torch.Tensor:
        batches = _stream_batches(recipe, micro_batch_size, 1, 4 // micro_batch_size)
        losses = []
        for batch in batches:
            inputs = clip_random_inputs(model, batch["sample_index"], recipe.seed)
            losses.append(model(batch["pixel_values_videos"], **inputs).loss)
        return torch.stack(losses).mean()

    whole, halves = step_loss(4), step_loss(2)
    assert torch.allclose(whole, halves, rtol=1e-6, atol=0), (whole.item(), halves.item())


@pytest.mark.parametrize("name", ["debug", "debug-moog"])
def test_resume_with_another_micro_batch_size_follows_the_run(name, tmp_path):
    """docs/training.md: a resumed run may change micro_batch_size; its losses are those of the
    uninterrupted run up to float rounding (here float32: within 1e-6), for every family."""
    recipe = get_recipe(name, max_steps=4, checkpoint_every=2, mixed_precision="fp32")
    reference = pretrain(recipe, tmp_path / "run", progress=False, export=False).losses
    for micro_batch_size in (1, 8):
        copy = tmp_path / f"resumed-{micro_batch_size}"
        shutil.copytree(tmp_path / "run", copy)
        shutil.rmtree(copy / "checkpoints" / "step_00000004")
        resumed = pretrain(recipe.replace(micro_batch_size=micro_batch_size), copy, progress=False, export=False).losses
        assert sorted(resumed) == [2, 3]
        for step in resumed:
            assert resumed[step] == pytest.approx(reference[step], rel=1e-6, abs=0), (micro_batch_size, step)


def test_training_flops_match_the_analytic_count():
    recipe = get_recipe("4ds-b")
    config = recipe.build_config()
    width, mlp, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    patches = 8 * 14 * 14
    visible = patches - int(patches * 0.95)

    def block(n):  # q, k, v, out + MLP matmuls, then q.k and attention.v
        return 2 * n * (4 * width * width + 2 * width * mlp) + 4 * n * n * width

    forward = (layers - 4) * block(visible) + 4 * block(visible + patches)
    forward += 2 * patches * width * 3 * 2 * 16 * 16 + 2 * patches * width * 3 * 2 * 16 * 16  # patch embed + decoder
    counted = training_flops_per_clip(recipe)
    # Training = forward + backward (2x forward); the patch embedding's input gradient is not needed.
    assert 0.97 * 3 * forward < counted < 1.03 * 3 * forward


def test_single_process_run_checkpoint_resume_and_export(tmp_path, capsys):
    recipe = get_recipe("debug", max_steps=4, checkpoint_every=2, keep_checkpoints=1)
    result = pretrain(recipe, tmp_path / "run", progress=False)
    assert sorted(result.losses) == [0, 1, 2, 3] and all(math.isfinite(v) for v in result.losses.values())
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_00000004"]  # keep_checkpoints=1
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    assert {"loss", "lr", "grad_norm", "clips_per_s", "tokens_per_s"} <= set(lines[-1])
    assert "mfu" not in lines[-1]  # no known peak on a CPU
    recorded = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert recorded["name"] == "debug" and recorded["max_steps"] == 4

    # Extending the run is a new schedule: refused, with the reason.
    with pytest.raises(ValueError, match="max_steps"):
        pretrain(recipe.replace(max_steps=6), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        pretrain(recipe, tmp_path / "run", progress=False, resume=False)
    # Asking for the same run again resumes at its end: nothing to do.
    again = pretrain(recipe, tmp_path / "run", progress=False, export=False)
    assert again.start_step == again.end_step == 4 and again.losses == {}

    exported = export_checkpoint(latest_checkpoint(tmp_path / "run"), tmp_path / "export")
    from fourd_hub import FourDSForPreTraining

    a = FourDSForPreTraining.from_pretrained(exported)
    b = FourDSForPreTraining.from_pretrained(result.export_dir)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_tensorboard_logging(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is in the dev dependencies")
    pretrain(get_recipe("debug", max_steps=2, checkpoint_every=0), tmp_path, progress=False, tensorboard=True, export=False)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_video_file_data(tmp_path):
    """A recipe reads a folder of video files (PyAV) instead of synthetic scenes."""
    from video_factory import moving_shapes_frames, write_test_video

    (tmp_path / "videos").mkdir()
    for i in range(3):
        write_test_video(tmp_path / "videos" / f"clip{i}.mp4", moving_shapes_frames(24, 48, 64, seed=i), fps=24)
    recipe = get_recipe("debug", data=str(tmp_path / "videos"), max_steps=2, checkpoint_every=0)
    result = pretrain(recipe, tmp_path / "run", progress=False, export=False)
    assert sorted(result.losses) == [0, 1]


def test_command_line_errors(tmp_path, capsys):
    assert main(["--recipe", "debug", "--output-dir", str(tmp_path), "--set", "nonsense=1"]) == 2
    assert "unknown recipe fields" in capsys.readouterr().err
    assert main(["--recipe", "debug", "--output-dir", str(tmp_path), "--set", "max_steps"]) == 2
    assert "FIELD=VALUE" in capsys.readouterr().err
    assert main(["--recipe", "debug", "--output-dir", str(tmp_path / "x"), "--data", str(tmp_path / "none")]) == 2
    assert main(["export", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "neither a training checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--recipe", "4ds-x", "--output-dir", str(tmp_path)])


def test_command_line_run(tmp_path, capsys):
    assert main(["--recipe", "debug-moog", "--output-dir", str(tmp_path), "--max-steps", "2", "--no-progress",
                 "--set", "checkpoint_every=0", "--set", "mixed_precision=\"fp32\""]) == 0
    out = capsys.readouterr().out
    assert "step 2: loss" in out and (tmp_path / "final" / "model.safetensors").is_file()


def test_activation_checkpointing_and_compile_keep_the_losses(tmp_path):
    """Recomputing blocks in backward changes memory, not the numbers; per-block torch.compile
    (inductor on CPU) gives the same losses up to kernel rounding."""
    recipe = get_recipe("debug", max_steps=3, checkpoint_every=0, mixed_precision="fp32")
    eager = pretrain(recipe, tmp_path / "eager", progress=False, export=False).losses
    checkpointed = pretrain(recipe.replace(activation_checkpointing=True), tmp_path / "ac", progress=False, export=False).losses
    assert checkpointed == eager
    compiled = pretrain(recipe.replace(compile=True), tmp_path / "compiled", progress=False, export=False).losses
    assert sorted(compiled) == sorted(eager)
    for step in eager:
        assert compiled[step] == pytest.approx(eager[step], rel=1e-4)
