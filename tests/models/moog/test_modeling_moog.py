"""MooG on tiny random configs: streaming, initial state, decoding and subsampling, task models,
save/load, input validation. Parity with the original is in test_parity_moog.py."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForDepthEstimation

import fourd_hub.models.moog.modeling_moog as moog_module
from fourd_hub import (
    MooGConfig,
    MooGForBoxTracking,
    MooGForDepthEstimation,
    MooGForNextFramePrediction,
    MooGForPointTracking,
    MooGModel,
)
from fourd_hub.layers import flax_same_padding
from fourd_hub.models.moog.modeling_moog import gather_pixels, subsample_pixel_indices

from conftest import tiny_moog_kwargs


def tiny_config(**overrides) -> MooGConfig:
    return MooGConfig(**tiny_moog_kwargs(**overrides))


def video(batch=2, frames=4, height=16, width=12, seed=0) -> torch.Tensor:
    return torch.rand(batch, frames, 3, height, width, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def model() -> MooGModel:
    torch.manual_seed(0)
    return MooGModel(tiny_config()).eval()


# ----------------------------------------------------------------------------------------------
# Config


def test_presets_are_the_released_and_movi_architectures():
    ego4d = MooGConfig.from_preset("ego4d")
    assert ego4d.encoder_strides == [2, 1, 1, 2, 1, 1] and ego4d.encoder_position_update == "concat"
    assert ego4d.encoder_output_size == 512 + 80 and ego4d.decoder["cross_attention_only"] is False
    movi = MooGConfig.from_preset("movi")
    assert movi.encoder_strides == [1, 1, 1, 2, 1, 2] and movi.encoder_position_update == "project_add"
    assert movi.decoder["cross_attention_only"] is True and movi.encoder_output_size == 512
    with torch.device("meta"):
        movi_model = MooGModel(movi)
    assert movi_model.decoder.transformer.layers[0].self_attention is None
    assert movi_model.encoder.transformer.output_proj is None  # hidden size == input width: no projection back
    with pytest.raises(ValueError, match="unknown MooG preset"):
        MooGConfig.from_preset("kinetics")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(encoder_position_update="add"), "encoder_position_update"),
        (dict(encoder_strides=[2]), "encoder_strides"),
        (dict(predictor=dict(num_layers=1, qkv_size=10, num_heads=4)), "not divisible"),
        (dict(corrector=dict(num_layers=1, qkv_size=8, num_heads=2, dropout=0.1)), "unknown fields"),
        (dict(decoder=dict(num_layers=1, qkv_size=8, num_heads=2, position_update="sum")), "position_update"),
        (dict(num_tokens=0), "num_tokens"),
        (dict(state_layer_norm_eps=0.0), "state_layer_norm_eps"),
        (dict(encoder_transformer=dict(qkv_size=8, num_heads=2)), "num_layers"),
    ],
)
def test_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_save_load_round_trip_and_auto_classes(model, tmp_path):
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "moog"
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is MooGModel
    state = model.initial_state(2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = model(video(), initial_state=state).last_hidden_state
        b = loaded(video(), initial_state=state).last_hidden_state
    assert torch.equal(a, b)
    depth = MooGForDepthEstimation(tiny_config())
    depth.save_pretrained(tmp_path / "depth")
    assert type(AutoModelForDepthEstimation.from_pretrained(tmp_path / "depth")) is MooGForDepthEstimation


# ----------------------------------------------------------------------------------------------
# Backbone


@pytest.mark.parametrize("chunk", [1, 3, 16])
def test_streaming_in_chunks_equals_one_call(model, chunk):
    clip = video(batch=2, frames=20)
    state = model.initial_state(2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        whole = model(clip, initial_state=state)
        features, carried = [], state
        for start in range(0, clip.shape[1], chunk):
            out = model(clip[:, start : start + chunk], initial_state=carried)
            features.append(out.last_hidden_state)
            carried = out.state
    streamed = torch.cat(features, dim=1)
    assert streamed.shape == whole.last_hidden_state.shape == (2, 20, 8, 16)
    assert (streamed - whole.last_hidden_state).abs().max() <= 1e-5
    assert (carried - whole.state).abs().max() <= 1e-5


def test_inference_encodes_each_frame_just_before_its_step(model, monkeypatch):
    """At inference the encoder sees one frame group at a time (its activations never exist for the
    whole chunk: flat streaming memory); with autograd recording, one call over every frame. Same
    features and encoder tokens either way."""
    clip = video(batch=2, frames=5)
    state = model.initial_state(2, generator=torch.Generator().manual_seed(3))
    calls = []
    encoder_forward = model.encoder.forward
    monkeypatch.setattr(model.encoder, "forward", lambda frames: calls.append(frames.shape[0]) or encoder_forward(frames))
    with torch.inference_mode():
        grouped = model(clip, initial_state=state, output_encoder_tokens=True)
    assert calls == [2 * moog_module.ENCODER_FRAMES_AT_INFERENCE] * 5
    calls.clear()
    whole = model(clip, initial_state=state, output_encoder_tokens=True)  # autograd records: training's path
    assert calls == [2 * 5]
    assert torch.equal(grouped.last_hidden_state, whole.last_hidden_state.detach())
    assert torch.equal(grouped.encoder_hidden_states, whole.encoder_hidden_states.detach())
    assert torch.equal(grouped.state, whole.state.detach())


def test_initial_state_is_seeded_noise_and_validated(model):
    a = model.initial_state(2, generator=torch.Generator().manual_seed(5))
    b = model.initial_state(2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == (2, 8, 16)
    big = MooGModel(tiny_config(num_tokens=64, hidden_size=64)).initial_state(4, generator=torch.Generator().manual_seed(0))
    assert abs(big.std().item() - 1e-4) < 1e-5  # the original's 1e-4 * N(0, 1)
    with torch.no_grad():
        out1 = model(video(), generator=torch.Generator().manual_seed(5))
        out2 = model(video(), initial_state=a)
        shared = model(video(), initial_state=a[0])  # (N, D): the same state for every video
    assert torch.equal(out1.last_hidden_state, out2.last_hidden_state) and torch.equal(out1.initial_state, a)
    assert torch.equal(shared.initial_state[1], a[0])
    with pytest.raises(ValueError, match="initial_state must have shape"):
        model(video(), initial_state=torch.zeros(2, 8, 15))
    with pytest.raises(ValueError, match="NaN"):
        model(video(), initial_state=torch.full((2, 8, 16), float("nan")))
    with pytest.raises(TypeError, match="float"):
        model(video(), initial_state=torch.zeros(2, 8, 16, dtype=torch.long))


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (torch.rand(4, 3, 16, 12), ValueError, "unsqueeze"),
        (torch.rand(1, 4, 16, 12, 3), ValueError, "channels-last"),
        ((torch.rand(1, 4, 3, 16, 12) * 255).to(torch.uint8), TypeError, "255"),
        (torch.full((1, 4, 3, 16, 12), float("nan")), ValueError, "NaN"),
        (torch.rand(1, 4, 3, 16, 12) * 255, ValueError, r"\[0, 1\]"),
    ],
)
def test_bad_videos_are_refused(model, bad, error, message):
    with pytest.raises(error, match=message):
        model(bad)


def test_any_resolution_and_flax_same_padding(model):
    # Odd sizes: Flax SAME pads the extra pixel after, output ceil(size / stride).
    assert flax_same_padding(8, 3, 2) == (0, 1) and flax_same_padding(7, 3, 2) == (1, 1)
    assert flax_same_padding(5, 3, 1) == (1, 1)
    with torch.no_grad():
        out = model(video(frames=2, height=15, width=9), output_encoder_tokens=True)
    assert out.encoder_hidden_states.shape == (2, 2, 8 * 5, 12 + 12)


def test_position_tables_are_cached(monkeypatch):
    calls = []
    original = moog_module.grid_fourier_features

    def counting(*args):
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(moog_module, "grid_fourier_features", counting)
    model = MooGModel(tiny_config()).eval()
    with torch.no_grad():
        out = model(video(frames=5))
        model(video(frames=3))
        model.decode(out.states_before_frames, (16, 12))
    assert sorted(calls) == [(8, 6, 3), (16, 12, 2)]  # one encoder table, one decoder table


# ----------------------------------------------------------------------------------------------
# Decoding and next-frame prediction


def test_subsampling_is_the_original_roll_then_nearest_resize():
    generator = torch.Generator().manual_seed(0)
    rows, cols = subsample_pixel_indices((3, 2), (16, 12), 4, generator=generator)
    assert rows.shape == (3, 2, 4) and cols.shape == (3, 2, 3)
    images = torch.rand(6, 16, 12, 5)
    picked = gather_pixels(images, rows.flatten(0, 1), cols.flatten(0, 1))
    # Independent re-statement of the original: roll by the offsets, then take nearest-resize
    # samples at index factor * j + factor // 2.
    offsets_generator = torch.Generator().manual_seed(0)
    offsets = torch.randint(0, 4, (3, 2, 2), generator=offsets_generator).flatten(0, 1)
    for n in range(6):
        rolled = torch.roll(images[n], shifts=(int(offsets[n, 0]), int(offsets[n, 1])), dims=(0, 1))
        expected = rolled[2::4, 2::4]
        assert torch.equal(picked[n], expected)
    with pytest.raises(ValueError, match="divisible"):
        subsample_pixel_indices((1,), (15, 12), 4)


def test_next_frame_prediction_inference_and_training():
    torch.manual_seed(0)
    model = MooGForNextFramePrediction(tiny_config()).eval()
    clip = video()
    with torch.no_grad():
        out = model(clip)
    assert out.predicted_frames.shape == clip.shape and out.loss is None and out.sampled_rows is None
    with torch.no_grad():
        scored = model(clip, labels=clip)
    assert torch.allclose(scored.loss, ((scored.predicted_frames - clip) ** 2).mean())

    model.train()
    out = model(clip, generator=torch.Generator().manual_seed(1))
    assert out.predicted_frames.shape == (2, 4, 3, 4, 3)  # subsample factor 4
    b, t = 1, 2
    expected = clip[b, t][:, out.sampled_rows[b, t]][:, :, out.sampled_cols[b, t]]
    assert torch.equal(out.target_frames[b, t], expected)
    out.loss.backward()
    assert model.moog.encoder.convs[0].weight.grad is not None


def test_cross_attention_only_decoder_decodes_each_pixel_independently():
    # Without self-attention between pixel queries, decoding a subset of pixels gives exactly the
    # full-resolution values there (with self-attention, as in the Ego4D decoder, it does not).
    torch.manual_seed(0)
    model = MooGForNextFramePrediction(tiny_config(decoder=dict(tiny_moog_kwargs()["decoder"], cross_attention_only=True))).eval()
    clip = video()
    state = model.moog.initial_state(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(clip, initial_state=state)
        sub = model(clip, initial_state=state, subsample_factor=4, generator=torch.Generator().manual_seed(1))
    for b, t in ((0, 0), (1, 3)):
        expected = full.predicted_frames[b, t][:, sub.sampled_rows[b, t]][:, :, sub.sampled_cols[b, t]]
        assert torch.allclose(sub.predicted_frames[b, t], expected, atol=1e-5)


def _decode_all_pixels_at_once(model: MooGModel, states: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The decoder before chunking: every pixel query of a frame through the whole transformer."""
    decoder, frames = model.decoder, []
    for t in range(states.shape[1]):
        table = decoder.position_embedding.table(*size, states.device, states.dtype).unsqueeze(0)
        zeros = states.new_zeros(states.shape[0], *size, decoder.state_dim)
        queries = decoder.position_embedding(zeros, table).flatten(1, 2)
        frames.append(decoder.output_proj(decoder.transformer(queries, context=states[:, t])).unflatten(1, size).permute(0, 3, 1, 2))
    return torch.stack(frames, dim=1)


@pytest.mark.parametrize(
    "decoder",
    [
        dict(num_layers=2, qkv_size=8, num_heads=2, mlp_size=24, fourier_bases=2),  # self-attending (Ego4D-like)
        dict(num_layers=2, qkv_size=8, num_heads=2, mlp_size=24, fourier_bases=2, cross_attention_only=True),  # MOVi-like
        dict(num_layers=1, qkv_size=8, num_heads=2, mlp_size=24, fourier_bases=2, hidden_size=12, position_update="project_add"),
    ],
)
def test_chunked_decoding_equals_decoding_every_pixel_at_once(decoder):
    torch.manual_seed(0)
    model = MooGModel(tiny_config(decoder=decoder)).eval()
    states = torch.randn(2, 3, 8, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = _decode_all_pixels_at_once(model, states, (16, 12))
        for chunk_size in (None, 1, 7, 10_000):
            got = model.decode(states, (16, 12), chunk_size=chunk_size)
            assert (got - expected).abs().max() <= 1e-6, chunk_size
    # With autograd recording (no first-block cache) the same frames, and gradients flow.
    got = model.decode(states, (16, 12), chunk_size=7)
    assert (got - expected).abs().max() <= 1e-6
    got.sum().backward()
    assert model.decoder.transformer.layers[0].mlp.fc_in.weight.grad is not None
    with pytest.raises(ValueError, match="chunk_size"):
        model.decode(states, (16, 12), chunk_size=0)


def test_first_block_cache_follows_the_weights():
    torch.manual_seed(0)
    model = MooGModel(tiny_config()).eval()
    states = torch.randn(1, 2, 8, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first = model.decode(states, (16, 12))
        model.decoder.transformer.layers[0].self_attention.q_proj.weight.mul_(2.0)  # e.g. an optimizer step
        changed = model.decode(states, (16, 12))
        expected = _decode_all_pixels_at_once(model, states, (16, 12))
    assert not torch.equal(first, changed)
    assert (changed - expected).abs().max() <= 1e-6
    with torch.inference_mode():
        assert (model.decode(states, (16, 12)) - expected).abs().max() <= 1e-6


def test_decoding_at_a_lower_resolution(model):
    states = torch.randn(2, 3, 8, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        low = model.decode(states, (16, 12), resolution=(8, 6))
        assert low.shape == (2, 3, 3, 8, 6)
        # The same as decoding an 8x6 image: the grid spans the same [-1, 1] extent.
        assert torch.equal(low, model.decode(states, (8, 6)))
        assert model.decode(states, (16, 12), resolution=4).shape == (2, 3, 3, 4, 4)
    rows, cols = subsample_pixel_indices((2, 3), (16, 12), 4)
    with pytest.raises(ValueError, match="rows / cols"):
        model.decode(states, (16, 12), rows, cols, resolution=(8, 6))
    for bad in ((0, 6), (8,), "8x6", (8.5, 6)):
        with pytest.raises(ValueError, match="resolution"):
            model.decode(states, (16, 12), resolution=bad)


def test_next_frame_prediction_at_a_lower_resolution():
    torch.manual_seed(0)
    model = MooGForNextFramePrediction(tiny_config()).eval()
    clip = video()
    state = model.moog.initial_state(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(clip, labels=clip, initial_state=state, resolution=(8, 6))
        full = model(clip, initial_state=state)
        reconstructed = model.reconstruct_video(clip, initial_state=state, resolution=(8, 6))
    assert out.predicted_frames.shape == out.target_frames.shape == (2, 4, 3, 8, 6)
    expected_targets = torch.nn.functional.interpolate(clip.flatten(0, 1), size=(8, 6), mode="bilinear", antialias=True)
    torch.testing.assert_close(out.target_frames, expected_targets.unflatten(0, (2, 4)))
    torch.testing.assert_close(out.loss, ((out.predicted_frames - out.target_frames) ** 2).mean())
    assert torch.equal(out.state, full.state)  # the recurrence does not depend on the decoding grid
    # The pipelines' protocol keeps the video's size: decoded at 8x6, resized back.
    assert reconstructed.predicted_frames.shape == clip.shape
    model.train()
    with pytest.raises(ValueError, match="subsample_factor=1"):
        model(clip, resolution=(8, 6))
    assert model(clip, resolution=(8, 6), subsample_factor=1).loss.ndim == 0


def test_decoder_reads_the_state_before_each_frame(model):
    with torch.no_grad():
        out = model(video(frames=3), generator=torch.Generator().manual_seed(0))
    before = out.states_before_frames
    assert torch.equal(before[:, 0], out.initial_state) and torch.equal(before[:, 2], out.last_hidden_state[:, 1])


def test_model_without_decoder_says_it_cannot_predict(tmp_path):
    no_decoder = MooGModel(tiny_config(decoder=None))
    assert no_decoder.decoder is None
    with pytest.raises(RuntimeError, match="no decoder"):
        no_decoder.decode(torch.zeros(1, 1, 8, 16), (16, 12))
    with pytest.raises(ValueError, match="needs a decoder"):
        MooGForNextFramePrediction(tiny_config(decoder=None))


# ----------------------------------------------------------------------------------------------
# Readout task models


def test_point_and_box_tracking_task_models():
    torch.manual_seed(0)
    readout = dict(num_params=16, num_heads=2, query_mlp_sizes=[12, 10], temporal_tile_size=2)
    points = MooGForPointTracking(tiny_config(readout=readout))
    assert points.moog.decoder is None  # readouts read features; no pixel decoder carried
    clip = video()
    queries = torch.tensor([[[6.0, 8.0], [0.0, 16.0]]]).repeat(2, 1, 1)
    labels = torch.rand(2, 4, 2, 2) * torch.tensor([12.0, 16.0])
    out = points(clip, queries, labels=labels, visibility_labels=torch.ones(2, 4, 2, dtype=torch.bool))
    assert out.tracks.shape == (2, 4, 2, 2) and out.visible.dtype == torch.bool
    assert torch.allclose(out.tracks, out.normalized_tracks * torch.tensor([12.0, 16.0]))
    out.loss.backward()
    assert points.moog.corrector.layers[0].cross_attention.k_proj.weight.grad is not None
    with pytest.raises(ValueError, match=r"\(B=2, Q, 2\)"):
        points(clip, queries[0])

    boxes = MooGForBoxTracking(tiny_config(readout=dict(readout, temporal_tile_size=1)))
    query_boxes = torch.tensor([[[1.0, 2.0, 6.0, 10.0]]]).repeat(2, 1, 1)
    out = boxes(clip, query_boxes, labels=torch.rand(2, 4, 1, 4) * 10)
    assert out.boxes.shape == (2, 4, 1, 4) and out.loss.ndim == 0

    # Both return the state after the last frame, the backbone's own: pass it back to continue.
    start = torch.randn(2, *points.moog.initial_state(1).shape[1:])
    with torch.no_grad():
        backbone_state = points.moog(clip, initial_state=start).state
        tracked = points(clip, queries, initial_state=start)
        boxed = boxes(clip, query_boxes, initial_state=start)
    assert torch.equal(tracked.state, backbone_state)
    assert boxed.state.shape == backbone_state.shape


def test_depth_task_model_any_resolution_and_training():
    torch.manual_seed(0)
    model = MooGForDepthEstimation(tiny_config()).eval()
    with torch.no_grad():
        out = model(video(frames=3, height=8, width=12))
    assert out.predicted_depth.shape == (2, 3, 8, 12) and out.readout_features.shape == (2, 3, 8, 16)
    model.train()
    labels = torch.rand(2, 4, 16, 12) * 5
    out = model(video(), labels=labels, generator=torch.Generator().manual_seed(0))
    assert out.predicted_depth.shape == (2, 4, 4, 3) and torch.isfinite(out.loss)
    out.loss.backward()
    with pytest.raises(ValueError, match="depth labels must have shape"):
        model(video(), labels=torch.rand(2, 4, 16))


def test_from_backbone_drops_decoder_and_keeps_weights(model, tmp_path):
    model.save_pretrained(tmp_path / "backbone")
    task = MooGForPointTracking.from_backbone(tmp_path / "backbone", readout=dict(num_params=16, num_heads=2, temporal_tile_size=2))
    assert task.moog.decoder is None
    for name, tensor in task.moog.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name
    assert all(torch.isfinite(p).all() for p in task.head.parameters())
    state = model.initial_state(2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = task.backbone_features(video(), initial_state=state).last_hidden_state
        b = model(video(), initial_state=state).last_hidden_state
    assert torch.equal(a, b)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = MooGForNextFramePrediction(tiny_config()).train()
    clip, state = video(), torch.randn(2, 8, 16) * 1e-4

    def grads():
        model.zero_grad()
        model(clip, initial_state=state, subsample_factor=1, return_loss=True).loss.backward()
        return model.moog.predictor.layers[0].mlp.fc_in.weight.grad.clone()

    plain = grads()
    model.activation_checkpointing_enable()
    assert torch.allclose(grads(), plain, atol=1e-6)
