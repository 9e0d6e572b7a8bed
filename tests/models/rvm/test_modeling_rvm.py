"""RVM on tiny random configs: config and presets, position tables, streaming, the initial state,
task models and their recurrent protocol, save/load, input validation, the video reconstruction of
the pipelines (``reconstruct_video``). Parity with the original is in test_parity_rvm.py, masked
reconstruction / pretraining in test_pretraining_rvm.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, AutoModelForDepthEstimation, AutoModelForPreTraining, AutoModelForVideoClassification

from fourd_hub import (
    RVM_PRESETS,
    RVMConfig,
    RVMForBoxTracking,
    RVMForCameraPoseEstimation,
    RVMForDepthEstimation,
    RVMForMaskedVideoReconstruction,
    RVMForPointTracking,
    RVMForVideoClassification,
    RVMModel,
)
from fourd_hub.models.rvm.configuration_rvm import RVM_DEBUG, debug_config
from fourd_hub.models.rvm.modeling_rvm import RVMPositionTables, mae_sinusoid_table


def video(batch=2, frames=4, height=32, width=24, seed=0) -> torch.Tensor:
    return torch.rand(batch, frames, 3, height, width, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def model() -> RVMModel:
    torch.manual_seed(0)
    return RVMModel(debug_config()).eval()


# ----------------------------------------------------------------------------------------------
# Config


def test_presets_are_the_sizes_table_and_describe_the_released_files():
    expected = {  # rvm.md section 4: width, encoder layers / heads / MLP, core blocks / heads x dim / MLP
        "S": (384, 12, 6, 1536, 4, 8, 48, 2048),
        "B": (768, 12, 12, 3072, 4, 12, 64, 3072),
        "L": (1024, 24, 16, 4096, 4, 16, 64, 4096),
        "H": (1280, 32, 16, 5120, 4, 16, 80, 5120),
    }
    assert set(RVM_PRESETS) == set(expected)
    for name, sizes in expected.items():
        config = RVMConfig.from_preset(name)
        core = config.core_spec()
        assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size,
                core.num_layers, core.num_heads, core.head_dim, core.mlp_size) == sizes, name
        decoder = config.decoder_spec()
        assert (decoder.hidden_size, decoder.num_layers, decoder.num_heads, decoder.mlp_size, decoder.num_delta_classes) == (512, 8, 16, 2048, 64)
        assert config.patch_size == [16, 16] and config.base_token_shape == [16, 16] and config.masking_ratio == 0.95
        assert config.preset == name
    with pytest.raises(ValueError, match="unknown RVM preset"):
        RVMConfig.from_preset("XL")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(hidden_size=30), "divisible by num_attention_heads"),
        (dict(image_size=[30, 24]), "multiple of the patch"),
        (dict(core=dict(num_layers=1, num_heads=5, num_feats=24, mlp_size=8)), "not divisible by num_heads"),
        (dict(core=dict(num_layers=1, num_heads=2, num_feats=24)), "it needs"),
        (dict(decoder=dict(num_layers=1, num_heads=2, num_feats=16, mlp_size=32, dropout=0.1)), "unknown fields"),
        (dict(masking_ratio=1.0), "masking_ratio"),
        (dict(state_layer_norm_eps=0.0), "state_layer_norm_eps"),
        (dict(base_token_shape=[0, 3]), "base_token_shape"),
        (dict(reconstruction_loss="l1"), "reconstruction_loss"),
        (dict(num_hidden_layers=True), "num_hidden_layers"),
    ],
)
def test_config_rejects_bad_values_by_name(overrides, message):
    with pytest.raises(ValueError, match=message):
        debug_config(**overrides)


def test_the_visible_count_is_computed_in_float64():
    config = debug_config()
    assert config.num_visible(256, 0.95) == 12 and config.num_visible(15, 0.6) == 6  # float32 would give 5
    assert int(np.float32(15) * (np.float32(1) - np.float32(0.6))) == 5


# ----------------------------------------------------------------------------------------------
# Position tables (trap 3)


def test_the_table_is_the_1d_mae_sinusoid_over_the_raster_index():
    table = mae_sinusoid_table(6, 8)
    position, channel = 4, 5  # odd channel: cos(p / 10000 ** (2 * (5 // 2) / 8))
    assert table[position, channel] == np.cos(position / 10000 ** (4 / 8))
    assert table[position, 4] == np.sin(position / 10000 ** (4 / 8))
    tables = RVMPositionTables(8, (2, 3))
    assert torch.equal(tables.base_table().reshape(6, 8), torch.from_numpy(table.astype(np.float32)))


def test_tables_are_cached_per_grid_and_the_base_grid_is_not_resized():
    tables = RVMPositionTables(16, (4, 6))
    cpu = torch.device("cpu")
    base = tables((4, 6), cpu, torch.float32)
    assert torch.equal(base, tables.base_table())
    assert tables((4, 6), cpu, torch.float32) is base and tables((3, 2), cpu, torch.float32) is tables((3, 2), cpu, torch.float32)
    assert len(tables._tables) == 2
    # Shrinking an axis takes jax's antialiased cubic, not torch's bicubic (a = -0.75, no antialiasing).
    shrunk = tables((2, 3), cpu, torch.float32)
    torch_bicubic = F.interpolate(base.permute(2, 0, 1)[None], size=(2, 3), mode="bicubic", align_corners=False)[0].permute(1, 2, 0)
    assert (shrunk - torch_bicubic).abs().max() > 1e-2
    decoder = RVMPositionTables(16)  # never resized: built at each grid
    assert torch.equal(decoder((2, 3), cpu, torch.float32).reshape(6, 16), torch.from_numpy(mae_sinusoid_table(6, 16).astype(np.float32)))


# ----------------------------------------------------------------------------------------------
# Backbone: layouts, streaming, initial state


def test_output_layouts(model):
    clip = video()
    with torch.no_grad():
        out = model(clip, output_encoder_tokens=True)
    rows, cols = 32 // 8, 24 // 8
    assert out.last_hidden_state.shape == (2, 4, 1 + rows * cols, 32) and out.encoder_hidden_states.shape == out.last_hidden_state.shape
    assert torch.equal(out.cls_features, out.last_hidden_state[:, :, 0])
    assert torch.equal(out.patch_features, out.last_hidden_state[:, :, 1:].reshape(2, 4, rows, cols, 32))  # row-major
    assert torch.equal(out.readout_features, out.last_hidden_state[:, :, 1:])
    assert torch.equal(out.state, out.last_hidden_state[:, -1]) and not out.initial_state.any()
    features, state = model.frame_features(clip)
    assert model.frame_features_layout == "(T, h, w, D)" and torch.equal(features, out.patch_features) and torch.equal(state, out.state)
    # Causal: frame t's features depend on frames 0..t only.
    changed = clip.clone()
    changed[:, 2:] = torch.rand_like(changed[:, 2:])
    with torch.no_grad():
        assert torch.equal(model(changed).last_hidden_state[:, :2], out.last_hidden_state[:, :2])


@pytest.mark.parametrize("chunk", [1, 3, 16])
def test_streaming_in_chunks_equals_one_call(model, chunk):
    clip = video(batch=2, frames=20)
    with torch.no_grad():
        whole = model(clip)
        features, carried = [], None
        for start in range(0, clip.shape[1], chunk):
            out = model(clip[:, start : start + chunk], initial_state=carried)
            features.append(out.last_hidden_state)
            carried = out.state
    streamed = torch.cat(features, dim=1)
    assert streamed.shape == whole.last_hidden_state.shape == (2, 20, 13, 32)
    assert (streamed - whole.last_hidden_state).abs().max() <= 1e-5
    assert (carried - whole.state).abs().max() <= 1e-5


def test_any_frame_size_that_is_a_multiple_of_the_patch(model):
    for height, width in ((8, 8), (16, 40), (48, 24)):
        with torch.no_grad():
            out = model(video(batch=1, frames=2, height=height, width=width))
        assert out.patch_features.shape == (1, 2, height // 8, width // 8, 32)
    with pytest.raises(ValueError, match="multiple of the patch size 8"):
        model(video(height=30))


def test_the_initial_state_is_zeros_and_a_given_one_is_checked(model):
    state = model.initial_state(3, generator=torch.Generator().manual_seed(0))
    assert state.shape == (3, 13, 32) and not state.any()
    assert model.initial_state(1, image_size=(16, 16)).shape == (1, 5, 32)
    clip = video()
    with torch.no_grad():
        default = model(clip).last_hidden_state
        assert torch.equal(model(clip, initial_state=torch.zeros(13, 32)).last_hidden_state, default)  # (1 + N, D)
        assert torch.equal(model(clip, initial_state=torch.zeros(1, 13, 32)).last_hidden_state, default)  # batch 1, broadcast
        other = model(clip, initial_state=torch.randn(2, 13, 32)).last_hidden_state
    assert not torch.allclose(other, default)
    with pytest.raises(ValueError, match=r"1 \+ h\*w=13.*model.initial_state"):
        model(clip, initial_state=torch.zeros(2, 7, 32))
    with pytest.raises(ValueError, match="NaN"):
        model(clip, initial_state=torch.full((2, 13, 32), float("nan")))
    with pytest.raises(TypeError, match="float tensor"):
        model(clip, initial_state=torch.zeros(2, 13, 32, dtype=torch.long))


def test_bad_videos_are_refused_naming_the_input(model):
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\).*unsqueeze"):
        model(torch.rand(4, 3, 32, 24))
    with pytest.raises(ValueError, match="channels-last"):
        model(torch.rand(1, 2, 32, 24, 3))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        model(video() * 255)
    with pytest.raises(TypeError, match="float"):
        model((video() * 255).to(torch.uint8))


def test_bfloat16_runs_close_to_float32(model):
    clip = video()
    low = RVMModel(debug_config()).eval()
    low.load_state_dict(model.state_dict())
    low = low.to(torch.bfloat16)
    with torch.no_grad():
        reference, reduced = model(clip).last_hidden_state, low(clip).last_hidden_state
    assert reduced.dtype == torch.bfloat16 and (reduced.float() - reference).abs().max() < 0.1


# ----------------------------------------------------------------------------------------------
# Save / load, Auto classes


def test_save_load_round_trip_and_auto_classes(model, tmp_path):
    model.save_pretrained(tmp_path / "backbone")
    assert AutoConfig.from_pretrained(tmp_path / "backbone").model_type == "rvm"
    loaded = AutoModel.from_pretrained(tmp_path / "backbone").eval()
    assert type(loaded) is RVMModel
    with torch.no_grad():
        assert torch.equal(model(video()).last_hidden_state, loaded(video()).last_hidden_state)
    # The backbone's directory holds the decoder: the reconstruction model loads it whole.
    wrapper = AutoModelForPreTraining.from_pretrained(tmp_path / "backbone")
    assert type(wrapper) is RVMForMaskedVideoReconstruction
    assert all(torch.equal(a, b) for a, b in zip(wrapper.rvm.state_dict().values(), model.state_dict().values()))
    depth = RVMForDepthEstimation(debug_config())
    depth.save_pretrained(tmp_path / "depth")
    assert type(AutoModelForDepthEstimation.from_pretrained(tmp_path / "depth")) is RVMForDepthEstimation
    classifier = RVMForVideoClassification(debug_config(num_labels=5))
    classifier.save_pretrained(tmp_path / "cls")
    assert type(AutoModelForVideoClassification.from_pretrained(tmp_path / "cls")) is RVMForVideoClassification


# ----------------------------------------------------------------------------------------------
# Task models: the shared heads on the patch features, the recurrent protocol


TASK_MODELS = [RVMForDepthEstimation, RVMForPointTracking, RVMForBoxTracking, RVMForCameraPoseEstimation, RVMForVideoClassification]


@pytest.mark.parametrize("cls", TASK_MODELS)
def test_task_models_run_stream_and_leave_the_config_alone(cls):
    config = debug_config(num_labels=3)
    before = config.to_dict()
    torch.manual_seed(0)
    task_model = cls(config).eval()
    assert config.to_dict() == before and task_model.config is not config
    assert task_model.rvm.decoder is None  # readouts read features
    clip = video()
    arguments = {
        RVMForPointTracking: {"query_points": torch.tensor([[[4.0, 6.0], [20.0, 10.0]]] * 2)},
        RVMForBoxTracking: {"query_boxes": torch.tensor([[[2.0, 2.0, 12.0, 20.0]]] * 2)},
    }.get(cls, {})
    with torch.no_grad():
        out = task_model(clip, **arguments)
        given = task_model(clip, initial_state=out.state, **arguments)
        features, states = task_model.readout_inputs(clip)
    assert out.state.shape == (2, 13, 32)
    assert features.shape == (2, 4, 12, 32) and states.shape == (2, 4, 13, 32)
    assert torch.equal(states[:, -1], out.state) and torch.equal(features, states[:, :, 1:])
    first = next(v for v in out.values() if isinstance(v, torch.Tensor) and v.is_floating_point())
    second = next(v for v in given.values() if isinstance(v, torch.Tensor) and v.is_floating_point())
    assert not torch.equal(first, second)  # the state was used


def test_task_outputs():
    torch.manual_seed(0)
    clip = video()
    with torch.no_grad():
        depth = RVMForDepthEstimation(debug_config()).eval()(clip)
        points = RVMForPointTracking(debug_config()).eval()(clip, torch.tensor([[[4.0, 6.0]]] * 2))
        boxes = RVMForBoxTracking(debug_config()).eval()(clip, torch.tensor([[[2.0, 2.0, 12.0, 20.0]]] * 2))
        pose = RVMForCameraPoseEstimation(debug_config()).eval()(clip, labels=torch.eye(4).expand(2, 4, 4))
        logits = RVMForVideoClassification(debug_config(num_labels=7)).eval()(clip, labels=torch.tensor([1, 2]))
    assert depth.predicted_depth.shape == (2, 4, 32, 24) and depth.readout_features.shape == (2, 4, 12, 32)
    assert points.tracks.shape == (2, 4, 1, 2) and points.visible.shape == (2, 4, 1)
    assert boxes.boxes.shape == (2, 4, 1, 4)
    assert pose.pose.shape == (2, 4, 4) and pose.loss is not None
    assert logits.logits.shape == (2, 7) and logits.loss is not None


def test_depth_reads_one_frame_at_a_time_so_it_streams():
    torch.manual_seed(0)
    depth_model = RVMForDepthEstimation(debug_config()).eval()
    assert depth_model.readout_config.num_frames == 1 and depth_model.readout_config.decoding_patch_size == (1, 8, 8)
    clip = video(frames=7)
    with torch.no_grad():
        whole = depth_model(clip)
        first = depth_model(clip[:, :3])
        rest = depth_model(clip[:, 3:], initial_state=first.state)
    streamed = torch.cat([first.predicted_depth, rest.predicted_depth], dim=1)
    assert (streamed - whole.predicted_depth).abs().max() <= 1e-5
    labels = torch.rand(2, 7, 32, 24) + 0.5
    assert depth_model(clip, labels=labels).loss > 0
    with pytest.raises(ValueError, match="predicts 32x24 frames"):
        depth_model(video(height=16))
    with pytest.raises(ValueError, match="one frame's state at a time"):
        RVMForDepthEstimation(debug_config(readout=dict(num_frames=4)))


def test_the_tracking_heads_read_clips_of_the_configured_length():
    torch.manual_seed(0)
    tracker = RVMForPointTracking(debug_config()).eval()
    with pytest.raises(ValueError, match="built for 4 frames"):
        tracker(video(frames=3), torch.tensor([[[4.0, 6.0]]] * 2))


def test_a_table_cached_under_inference_mode_still_trains():
    torch.manual_seed(0)
    backbone = RVMModel(debug_config())
    with torch.inference_mode():  # as the pipelines run
        backbone(video())
    backbone(video()).last_hidden_state.mean().backward()
    assert backbone.embeddings.patch_embedding.weight.grad is not None


def test_training_a_head_reaches_the_backbone():
    torch.manual_seed(0)
    classifier = RVMForVideoClassification(debug_config(num_labels=3))
    classifier(video(), labels=torch.tensor([0, 2])).loss.backward()
    assert classifier.rvm.core.input_update.weight.grad is not None and classifier.head.readout.query.grad is not None
    assert math.isfinite(float(classifier.rvm.embeddings.cls_token.grad.abs().sum()))


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = RVMModel(debug_config())
    checkpointed = RVMModel(debug_config())
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.activation_checkpointing_enable()
    checkpointed.train()
    plain.train()
    clip = video()
    plain(clip).last_hidden_state.square().mean().backward()
    checkpointed(clip).last_hidden_state.square().mean().backward()
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters()):
        if name.startswith("decoder."):  # the features do not use the decoder
            assert a.grad is None and b.grad is None, name
            continue
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_debug_config_is_what_the_conformance_suite_builds():
    config = debug_config()
    assert config.token_grid() == (4, 3) and tuple(config.base_token_shape) != config.token_grid()  # the table is resized
    assert config.core_spec().num_feats != config.hidden_size  # attention width != model width (trap 4)
    assert config.decoder_spec().hidden_size != config.hidden_size and RVM_DEBUG["image_size"][0] != RVM_DEBUG["image_size"][1]


# ----------------------------------------------------------------------------------------------
# Video reconstruction (reconstruct_video: the video-reconstruction pipelines' protocol)


@pytest.fixture(scope="module")
def reconstructor() -> RVMForMaskedVideoReconstruction:
    torch.manual_seed(0)
    return RVMForMaskedVideoReconstruction(debug_config()).eval()


def test_reconstruct_video_is_forward_on_the_frames_before_each_frame(reconstructor):
    """Frame t is reconstruct(frames t - k .. t - 1 -> frame t, delta k), k = min(num_source_frames, t)."""
    clip = video(frames=6)
    sources = reconstructor.config.num_source_frames
    with torch.no_grad():
        out = reconstructor.reconstruct_video(clip, generator=torch.Generator().manual_seed(3))
        features = reconstructor.rvm(clip)
    num_patches, visible = 12, reconstructor.config.num_visible(12)
    assert out.predicted_frames.shape == (2, 6, 3, 32, 24) and out.mask.shape == (2, 6, 4, 3)
    assert (~out.mask).sum((-1, -2)).eq(visible).all() and torch.equal(out.mask[0], out.mask[1])  # one mask per frame for every video
    assert torch.equal(out.last_hidden_state, features.last_hidden_state)  # the states are the features
    assert out.state.shape == (2, sources, 13, 32) and torch.equal(out.state[:, -1], features.state)
    assert out.target_deltas[0].tolist() == [1] + [min(sources, t) for t in range(1, 6)]
    generator = torch.Generator().manual_seed(3)
    permutations = [torch.randperm(num_patches, generator=generator) for _ in range(6)]
    for t in range(1, 6):
        k = min(sources, t)
        before = None if t == k else features.last_hidden_state[:, t - k - 1]
        with torch.no_grad():
            direct = reconstructor(
                clip[:, t - k : t], clip[:, t : t + 1], target_deltas=torch.tensor([k]), mask=permutations[t], initial_state=before
            )
        assert torch.equal(direct.mask[:, 0], out.mask[:, t])
        assert (direct.reconstruction[:, 0] - out.predicted_frames[:, t]).abs().max() <= 1e-5, t
    # Frame 0 has no frame before it: its one source is the state before it (zeros), delta 1.
    rvm, shown = reconstructor.rvm, permutations[0][:visible]
    with torch.no_grad():
        tokens = rvm.embeddings.patches(clip[:, :1]).flatten(2, 3)[:, :, shown]
        encoded = rvm.encoder(rvm.embeddings.with_cls(tokens).flatten(0, 1)).unflatten(0, (2, 1))
        first = rvm.decoder(encoded, shown.expand(2, 1, -1), torch.zeros(2, 1, 13, 32), (4, 3), torch.ones(2, 1, dtype=torch.long))
    assert (first[:, 0] - out.predicted_frames[:, 0]).abs().max() <= 1e-5


@pytest.mark.parametrize("chunk", [1, 3, 5])
def test_reconstruct_video_in_chunks_equals_one_call(reconstructor, chunk):
    clip = video(frames=7)
    with torch.no_grad():
        whole = reconstructor.reconstruct_video(clip, generator=torch.Generator().manual_seed(0))
        generator, state, parts, masks = torch.Generator().manual_seed(0), None, [], []
        for start in range(0, 7, chunk):
            out = reconstructor.reconstruct_video(clip[:, start : start + chunk], initial_state=state, generator=generator)
            state = out.state
            parts.append(out.predicted_frames)
            masks.append(out.mask)
    assert torch.equal(torch.cat(masks, 1), whole.mask)
    assert (torch.cat(parts, 1) - whole.predicted_frames).abs().max() <= 1e-5
    assert (state - whole.state).abs().max() <= 1e-5


def test_reconstruct_video_is_seeded_and_starts_from_a_given_state(reconstructor):
    clip = video(frames=3, batch=1)
    with torch.no_grad():
        first = reconstructor.reconstruct_video(clip, generator=torch.Generator().manual_seed(1))
        again = reconstructor.reconstruct_video(clip, generator=torch.Generator().manual_seed(1))
        other = reconstructor.reconstruct_video(clip, generator=torch.Generator().manual_seed(2))
        zeros = reconstructor.reconstruct_video(clip, initial_state=torch.zeros(1, 13, 32), generator=torch.Generator().manual_seed(1))
        ratio = reconstructor.reconstruct_video(clip, masking_ratio=0.5, num_source_frames=1)
    assert torch.equal(first.predicted_frames, again.predicted_frames) and torch.equal(first.mask, again.mask)
    assert not torch.equal(first.mask, other.mask)
    assert torch.equal(first.predicted_frames, zeros.predicted_frames)  # None is the zero state
    assert (~ratio.mask).sum((-1, -2)).eq(6).all() and ratio.target_deltas.tolist() == [[1, 1, 1]] and ratio.state.shape[1] == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"initial_state": torch.zeros(1, 2, 7, 32)}, ValueError, r"reconstruction context .*\(B=1, k >= 1, 1 \+ h\*w=13, D=32\)"),
        ({"initial_state": torch.zeros(1, 0, 13, 32)}, ValueError, "k >= 1"),
        ({"initial_state": torch.zeros(1, 5, 32)}, ValueError, "initial_state must have shape"),
        ({"num_source_frames": 0}, ValueError, "num_source_frames must be an integer from 1 to 63"),
        ({"num_source_frames": 64}, ValueError, "one-hot over 64"),
        ({"masking_ratio": 1.0}, ValueError, r"masking_ratio must be in \[0, 1\)"),
    ],
)
def test_reconstruct_video_refuses_bad_arguments_by_name(reconstructor, kwargs, error, message):
    with pytest.raises(error, match=message):
        reconstructor.reconstruct_video(video(batch=1, frames=2), **kwargs)


def test_reconstruct_video_without_a_decoder_is_a_clear_error():
    backbone = RVMModel(debug_config(), add_decoder=False)
    with pytest.raises(ValueError, match="no decoder .* cannot reconstruct frames; its features still work"):
        RVMForMaskedVideoReconstruction.from_base_model(backbone)
    wrapper = RVMForMaskedVideoReconstruction(debug_config())
    wrapper.rvm.decoder = None
    with pytest.raises(RuntimeError, match="no decoder weights, so it cannot reconstruct"):
        wrapper.reconstruct_video(video(batch=1, frames=2))
