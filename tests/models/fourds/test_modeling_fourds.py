"""4DS model: config, outputs and their documented semantics, inputs, HF integration, task models."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForDepthEstimation,
    AutoModelForVideoClassification,
)

import fourd_hub
from fourd_hub import (
    FourDSConfig,
    FourDSForBoxTracking,
    FourDSForCameraPoseEstimation,
    FourDSForDepthEstimation,
    FourDSForPointTracking,
    FourDSForVideoClassification,
    FourDSModel,
)
from fourd_hub.models.fourds.modeling_fourds import readout_feature_index
from fourd_hub.layers import jax_resize

from conftest import tiny_fourds_kwargs


@pytest.fixture
def tiny_config() -> FourDSConfig:
    return FourDSConfig(**tiny_fourds_kwargs())


@pytest.fixture
def tiny_model(tiny_config) -> FourDSModel:
    torch.manual_seed(0)
    return FourDSModel(tiny_config).eval()


# ---------------------------------------------------------------------------------------------
# Config


def test_presets_are_table_1():
    # Table 1 of the paper (width, depth, MLP, heads), typed in from the paper.
    table_1 = {
        "S": (384, 12, 1536, 6), "B": (768, 12, 3072, 12), "L": (1024, 24, 4096, 16), "H": (1280, 32, 5120, 16),
        "G": (1664, 48, 8192, 16), "e": (1792, 56, 15360, 16), "j": (4096, 64, 32768, 32),
    }
    for size, expected in table_1.items():
        config = FourDSConfig.from_preset(size)
        got = (config.hidden_size, config.num_hidden_layers, config.intermediate_size, config.num_attention_heads)
        assert got == expected, size
        assert config.patch_size == [2, 16, 16] and config.num_frames == 16
        assert config.image_size == ([256, 256] if size == "j" else [224, 224])
    with pytest.raises(ValueError, match="known sizes"):
        FourDSConfig.from_preset("XL")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(num_attention_heads=5), "divisible by num_attention_heads"),
        (dict(image_size=[30, 24]), "not divisible by the patch size"),
        (dict(patch_size=[2, 8]), "patch_size must be 3"),
        (dict(readout_depth=0.0), "readout_depth"),
        (dict(num_hidden_layers=0), "positive integer"),
    ],
)
def test_config_validation(overrides, message):
    with pytest.raises(ValueError, match=message):
        FourDSConfig(**tiny_fourds_kwargs(**overrides))


def test_config_json_round_trip(tmp_path, tiny_config):
    tiny_config.save_pretrained(tmp_path)
    loaded = FourDSConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == tiny_config.to_dict()
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "fourds"


# ---------------------------------------------------------------------------------------------
# Outputs


def test_feature_list_has_the_original_semantics(tiny_model, tiny_video):
    with torch.no_grad():
        out = tiny_model(tiny_video, output_features=True, output_hidden_states=True)
    layers = tiny_model.config.num_hidden_layers
    assert len(out.features) == len(out.hidden_states) == layers + 1
    # Entry 0 is the embedding, entry i >= 1 the input of block i - 1: entries 0 and 1 are equal,
    # and the output of the last block is not in the list.
    assert torch.equal(out.features[0], out.features[1])
    for i in range(1, layers):
        assert torch.equal(out.features[i + 1], out.hidden_states[i])
    assert not any(torch.equal(f, out.last_hidden_state) for f in out.features)
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)
    assert out.last_hidden_state.shape == (2, 2 * 4 * 3, 32)


def test_readout_features_are_the_selected_entry_resized_in_time(tiny_model, tiny_video):
    with torch.no_grad():
        out = tiny_model(tiny_video, output_features=True, readout_depth=0.5)
    index = readout_feature_index(len(out.features), 0.5)
    assert index == 1
    tokens = out.features[index].reshape(2, 2, 12, 32)
    torch.testing.assert_close(out.readout_features, jax_resize(tokens, {1: 4}))
    assert out.readout_features.shape == (2, 4, 12, 32)


def test_readout_index_for_4ds_b_is_block_9_output():
    # architecture.md: for B (12 blocks, list of 13) the readout reads index 11 = output of block 9.
    assert readout_feature_index(13, 0.95) == 11


def test_readout_features_can_be_skipped(tiny_model, tiny_video):
    with torch.no_grad():
        out = tiny_model(tiny_video, compute_readout_features=False)
    assert out.readout_features is None and out.features is None and out.hidden_states is None


def _count_block_calls(model: FourDSModel) -> list[int]:
    """Forward hooks on every block; the returned list grows by one block index per block call."""
    calls: list[int] = []
    for index, layer in enumerate(model.layers):
        layer.register_forward_hook(lambda module, args, output, index=index: calls.append(index))
    return calls


@pytest.mark.parametrize(
    "layers, readout_depth, blocks_run",
    [(12, 0.95, 10), (3, 0.95, 1), (3, 1.0, 2), (3, 0.5, 0)],  # 12 layers at 0.95: 4DS-B's 10 of 12
)
def test_stop_at_readout_runs_only_the_blocks_read_and_is_bit_identical(tiny_video, layers, readout_depth, blocks_run):
    torch.manual_seed(0)
    model = FourDSModel(FourDSConfig(**tiny_fourds_kwargs(num_hidden_layers=layers, readout_depth=readout_depth))).eval()
    calls = _count_block_calls(model)
    with torch.no_grad():
        full = model(tiny_video)
        assert calls == list(range(layers))
        calls.clear()
        early = model(tiny_video, stop_at_readout=True)
    assert calls == list(range(blocks_run))
    assert torch.equal(early.readout_features, full.readout_features)
    assert early.last_hidden_state is None
    # Asking for every block's output (or none of the readout) runs them all, whatever the flag.
    for kwargs in (dict(output_hidden_states=True), dict(output_features=True), dict(compute_readout_features=False)):
        calls.clear()
        with torch.no_grad():
            out = model(tiny_video, stop_at_readout=True, **kwargs)
        assert calls == list(range(layers)), kwargs
        assert torch.equal(out.last_hidden_state, full.last_hidden_state)


def test_4ds_e_readout_needs_52_of_56_blocks():
    # features[k] is the output of block k - 2, so index 53 (of 57) needs blocks 0..51.
    assert readout_feature_index(57, 0.95) == 53


def test_frame_features_stop_at_the_readout_block(tiny_video):
    torch.manual_seed(0)
    model = FourDSModel(FourDSConfig(**tiny_fourds_kwargs(num_hidden_layers=12))).eval()
    calls = _count_block_calls(model)
    with torch.no_grad():
        features, _ = model.frame_features(tiny_video)
        assert calls == list(range(10))
        full = model(tiny_video).readout_features
    assert torch.equal(features, full.unflatten(2, (4, 3)))


def test_position_embedding_identity_at_native_grid(tiny_model):
    table = tiny_model.embeddings.position_embedding
    assert torch.equal(tiny_model.embeddings.resampled_position_embedding(tuple(table.shape[:3])), table)


def test_other_frame_counts_and_resolutions_resample_position_embedding(tiny_model):
    video = torch.rand(1, 8, 3, 48, 16)
    with torch.no_grad():
        out = tiny_model(video, output_features=True)
    grid = (4, 6, 2)
    assert out.last_hidden_state.shape == (1, 4 * 6 * 2, 32)
    assert out.readout_features.shape == (1, 8, 12, 32)
    embedding = tiny_model.embeddings
    patches = embedding.patch_embedding(video.transpose(1, 2)).permute(0, 2, 3, 4, 1)
    expected = patches + jax_resize(embedding.position_embedding, dict(enumerate(grid)))
    torch.testing.assert_close(out.features[0], expected.flatten(1, 3))


def test_model_is_deterministic_and_batch_independent(tiny_model, tiny_video):
    with torch.no_grad():
        both = tiny_model(tiny_video).last_hidden_state
        first = tiny_model(tiny_video[:1]).last_hidden_state
    torch.testing.assert_close(both[:1], first, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: torch.rand(4, 3, 32, 24), ValueError, "unsqueeze"),
        (lambda: torch.rand(1, 4, 32, 24, 3), ValueError, "channels-last"),
        (lambda: (torch.rand(1, 4, 3, 32, 24) * 255).to(torch.uint8), TypeError, "/ 255"),
        (lambda: torch.full((1, 4, 3, 32, 24), float("nan")), ValueError, "NaN"),
        (lambda: torch.rand(1, 4, 3, 32, 24) * 255, ValueError, r"\[0, 1\]"),
        (lambda: torch.rand(1, 3, 3, 32, 24), ValueError, "frames"),
        (lambda: torch.rand(1, 4, 3, 30, 24), ValueError, "height"),
        (lambda: torch.rand(1, 4, 3, 32, 0), ValueError, "width"),
        (lambda: [[0.0]], TypeError, "torch.Tensor"),
    ],
)
def test_bad_video_inputs_are_explained(tiny_model, make, error, message):
    with pytest.raises(error, match=message):
        tiny_model(make())


# ---------------------------------------------------------------------------------------------
# HF integration


def test_save_and_load_are_bit_exact(tmp_path, tiny_model, tiny_video):
    tiny_model.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    loaded = FourDSModel.from_pretrained(tmp_path).eval()
    for (name, a), (_, b) in zip(tiny_model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    with torch.no_grad():
        assert torch.equal(loaded(tiny_video).last_hidden_state, tiny_model(tiny_video).last_hidden_state)


def test_load_in_bfloat16(tmp_path, tiny_model, tiny_video):
    tiny_model.save_pretrained(tmp_path)
    model = FourDSModel.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    with torch.no_grad():
        out = model(tiny_video)
    assert out.last_hidden_state.dtype == torch.bfloat16
    with torch.no_grad():
        reference = tiny_model(tiny_video).last_hidden_state
    assert (out.last_hidden_state.float() - reference).abs().max() < 0.25


def test_meta_device(tmp_path, tiny_model):
    with torch.device("meta"):
        model = FourDSModel(FourDSConfig.from_preset("e"))
    assert sum(p.numel() for p in model.parameters()) == 3_809_464_064
    with torch.no_grad():
        out = model(torch.empty(1, 16, 3, 224, 224, device="meta"))
    assert out.last_hidden_state.shape == (1, 1568, 1792) and out.readout_features.shape == (1, 16, 196, 1792)
    tiny_model.save_pretrained(tmp_path)
    loaded = FourDSModel.from_pretrained(tmp_path, device_map="meta")
    assert all(p.device.type == "meta" for p in loaded.parameters())


def test_auto_classes_resolve_after_import(tmp_path, tiny_config):
    assert fourd_hub.FourDSModel is FourDSModel
    FourDSModel(tiny_config).save_pretrained(tmp_path / "backbone")
    assert isinstance(AutoConfig.from_pretrained(tmp_path / "backbone"), FourDSConfig)
    assert type(AutoModel.from_pretrained(tmp_path / "backbone")) is FourDSModel
    FourDSForDepthEstimation(FourDSConfig(**tiny_fourds_kwargs())).save_pretrained(tmp_path / "depth")
    assert type(AutoModelForDepthEstimation.from_pretrained(tmp_path / "depth")) is FourDSForDepthEstimation
    config = FourDSConfig(**tiny_fourds_kwargs(), id2label={0: "a", 1: "b", 2: "c"})
    FourDSForVideoClassification(config).save_pretrained(tmp_path / "cls")
    model = AutoModelForVideoClassification.from_pretrained(tmp_path / "cls")
    assert type(model) is FourDSForVideoClassification and model.head.readout.output_proj.out_features == 3


def test_task_model_loads_backbone_checkpoint(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    depth = FourDSForDepthEstimation.from_pretrained(tmp_path)
    assert torch.equal(depth.fourds.layers[0].mlp.fc_in.weight, tiny_model.layers[0].mlp.fc_in.weight)


# ---------------------------------------------------------------------------------------------
# Task models


def _task_model(cls, **config_overrides):
    torch.manual_seed(0)
    return cls(FourDSConfig(**tiny_fourds_kwargs(), **config_overrides))


def test_depth_model_loss_and_gradients(tiny_video):
    model = _task_model(FourDSForDepthEstimation, readout={"num_params": 16, "num_heads": 2})
    labels = torch.rand(2, 4, 32, 24) * 5
    out = model(tiny_video, labels=labels)
    assert out.predicted_depth.shape == (2, 4, 32, 24)
    assert list(out.keys())[0] == "loss"
    out.loss.backward()
    assert model.head.readout.query.grad is not None and model.fourds.embeddings.patch_embedding.weight.grad is not None
    with pytest.raises(ValueError, match="predicts 4 frames at 32x24"):
        model(torch.rand(1, 4, 3, 16, 24))


def test_point_tracking_pixel_coordinates(tiny_video, monkeypatch):
    model = _task_model(FourDSForPointTracking, readout={"num_params": 16, "num_heads": 2, "temporal_tile_size": 2})
    seen = {}
    original_forward = model.head.forward

    def spy(features, queries):
        seen["queries"] = queries.clone()
        return original_forward(features, queries)

    monkeypatch.setattr(model.head, "forward", spy)
    query_points = torch.tensor([[[12.0, 8.0], [24.0, 32.0]]]).repeat(2, 1, 1)  # pixel (x, y), W=24, H=32
    out = model(tiny_video, query_points=query_points)
    # x is divided by the width and y by the height; (x, y) order kept (the head's order is "xy").
    torch.testing.assert_close(seen["queries"][0], torch.tensor([[0.5, 0.25], [1.0, 1.0]]))
    assert out.tracks.shape == (2, 4, 2, 2) and out.visible.shape == (2, 4, 2) and out.visible.dtype == torch.bool
    torch.testing.assert_close(out.tracks, out.normalized_tracks * torch.tensor([24.0, 32.0]))
    labels = query_points.unsqueeze(1).repeat(1, 4, 1, 1)
    out = model(tiny_video, query_points=query_points, labels=labels, visibility_labels=torch.ones(2, 4, 2, dtype=torch.bool))
    assert out.loss.ndim == 0 and out.loss > 0
    out.loss.backward()
    with pytest.raises(ValueError, match="visibility_labels"):
        model(tiny_video, query_points=query_points, labels=labels)
    with pytest.raises(ValueError, match=r"\(B=2, Q, 2\)"):
        model(tiny_video, query_points=torch.rand(2, 3))


def test_box_tracking_converts_xyxy_pixels_to_head_order(tiny_video, monkeypatch):
    model = _task_model(FourDSForBoxTracking, readout={"num_params": 16, "num_heads": 2})
    assert model.readout_config.coordinate_order == "yxyx"
    seen = {}
    original_forward = model.head.forward

    def spy(features, queries):
        seen["queries"] = queries.clone()
        prediction = original_forward(features, queries)
        seen["values"] = prediction.values.clone()
        return prediction

    monkeypatch.setattr(model.head, "forward", spy)
    boxes = torch.tensor([[[6.0, 8.0, 12.0, 24.0]]]).repeat(2, 1, 1)  # x1, y1, x2, y2 in a 24x32 frame
    out = model(tiny_video, query_boxes=boxes)
    torch.testing.assert_close(seen["queries"][0, 0], torch.tensor([0.25, 0.25, 0.75, 0.5]))  # y1, x1, y2, x2
    head_values = seen["values"]
    expected = head_values[..., [1, 0, 3, 2]] * torch.tensor([24.0, 32.0, 24.0, 32.0])
    torch.testing.assert_close(out.boxes, expected)
    out = model(tiny_video, query_boxes=boxes, labels=boxes.unsqueeze(1).repeat(1, 4, 1, 1))
    out.loss.backward()


def test_camera_pose_is_a_rigid_transform(tiny_video):
    model = _task_model(FourDSForCameraPoseEstimation, readout={"num_params": 16, "num_heads": 2})
    out = model(tiny_video, labels=torch.eye(4).repeat(2, 1, 1))
    rotation = out.pose[:, :3, :3]
    torch.testing.assert_close(rotation @ rotation.transpose(1, 2), torch.eye(3).repeat(2, 1, 1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(2), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.pose[:, 3], torch.tensor([0.0, 0, 0, 1]).repeat(2, 1))
    torch.testing.assert_close(out.pose[:, :3, 3], out.raw_pose[:, :, 3])
    out.loss.backward()


@pytest.mark.parametrize(
    "cls, inputs",
    [
        (FourDSForDepthEstimation, {}),
        (FourDSForPointTracking, {"query_points": torch.tensor([[[12.0, 8.0], [3.0, 30.0]]]).repeat(2, 1, 1)}),
        (FourDSForCameraPoseEstimation, {}),
    ],
)
def test_task_models_stop_after_the_readout_block_with_identical_outputs(tiny_video, monkeypatch, cls, inputs):
    torch.manual_seed(0)
    model = cls(FourDSConfig(**tiny_fourds_kwargs(num_hidden_layers=12), readout={"num_params": 16, "num_heads": 2, "temporal_tile_size": 2})).eval()
    calls = _count_block_calls(model.fourds)
    with torch.no_grad():
        early = model(tiny_video, **inputs)
    assert calls == list(range(10))  # readout_depth 0.95 of 12 blocks reads block 9's output
    # The same task forward on a backbone that runs every block.
    monkeypatch.setattr(model, "backbone_features", lambda video: model.fourds(video, return_dict=True).readout_features)
    calls.clear()
    with torch.no_grad():
        full = model(tiny_video, **inputs)
    assert calls == list(range(12))
    assert early.keys() == full.keys()
    for key in early.keys():
        assert torch.equal(early[key], full[key]), key


def test_classification_loss(tiny_video):
    model = _task_model(FourDSForVideoClassification, id2label={i: str(i) for i in range(5)}, readout={"num_params": 16, "num_heads": 2})
    out = model(tiny_video, labels=torch.tensor([1, 4]))
    assert out.logits.shape == (2, 5)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([1, 4])))


def test_hf_trainer_trains_a_task_model_unchanged(tmp_path, tiny_video):
    from torch.utils.data import Dataset
    from transformers import Trainer, TrainingArguments

    class Clips(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            generator = torch.Generator().manual_seed(i)
            return {
                "pixel_values_videos": torch.rand(4, 3, 32, 24, generator=generator),
                "labels": torch.rand(4, 32, 24, generator=generator) + 1.0,
            }

    model = _task_model(FourDSForDepthEstimation, readout={"num_params": 16, "num_heads": 2})
    before = model.head.readout.output_proj.weight.detach().clone()
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=2, learning_rate=1e-3,
        report_to=[], save_strategy="no", logging_steps=1, use_cpu=True, disable_tqdm=True,
    )
    result = Trainer(model=model, args=args, train_dataset=Clips()).train()
    assert result.global_step == 2 and result.training_loss > 0
    assert not torch.equal(before, model.head.readout.output_proj.weight)


def test_gradient_checkpointing_gives_the_same_gradients(tiny_video):
    def gradients(checkpointing: bool):
        model = _task_model(FourDSForDepthEstimation, readout={"num_params": 16, "num_heads": 2}).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        model(tiny_video, labels=torch.rand(2, 4, 32, 24) + 1).loss.backward()
        return model.fourds.layers[0].mlp.fc_in.weight.grad

    torch.testing.assert_close(gradients(True), gradients(False))


def test_fresh_models_initialise_every_learned_embedding():
    depth = _task_model(FourDSForDepthEstimation, readout={"num_params": 16, "num_heads": 2})
    points = _task_model(FourDSForPointTracking, readout={"num_params": 16, "num_heads": 2, "temporal_tile_size": 2})
    for tensor in (
        depth.fourds.embeddings.position_embedding, depth.head.readout.query, depth.head.readout.temporal_embedding,
        points.head.temporal_tile_embedding, points.head.readout.temporal_embedding,
    ):
        assert tensor.std() > 0.005
    assert torch.equal(depth.fourds.layers[0].attention_norm.weight, torch.ones(32))
