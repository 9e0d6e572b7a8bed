"""Converting MooG files: prefix handling, absent decoder, standalone heads and their errors.

Uses the reference fixture checkpoints as realistic files (keys as the original writes them)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fourd_hub import FourDSConfig, MooGConfig, MooGForBoxTracking, MooGForNextFramePrediction, MooGForPointTracking, MooGModel
from fourd_hub.cli import main as cli_main
from fourd_hub.conversion import ConversionError, convert_checkpoint, convert_state_dict
from fourd_hub.conversion.convert import _plan_from_shapes
from fourd_hub.conversion.heads import load_readout_head
from fourd_hub.conversion.npz import CheckpointError

from conftest import load_npz, moog_cases, moog_config_kwargs


@pytest.fixture(scope="module")
def case(cases):
    name, values = next(iter(moog_cases(cases).items()))
    return name, values


def _save(path, arrays):
    np.savez(path, **arrays)
    return path


def test_prefix_is_optional_and_reported(reference, case, tmp_path):
    name, values = case
    arrays = load_npz(reference / f"{name}_backbone_checkpoint.npz")
    config = MooGConfig(**moog_config_kwargs(values))
    bare = {k.removeprefix("pretrained_model/"): v for k, v in arrays.items()}
    wrapped = {f"params/{k}": v for k, v in arrays.items()}
    states = []
    for label, variant in (("prefixed", arrays), ("bare", bare), ("params", wrapped)):
        result = convert_checkpoint(_save(tmp_path / f"{label}.npz", variant), tmp_path / label, config=config, progress=False)
        assert result.model_class == "MooGModel" and "with its reconstruction decoder" in result.layout
        states.append(MooGModel.from_pretrained(tmp_path / label).state_dict())
    description = _plan_from_shapes({k: v.shape for k, v in bare.items()}, None, None, config)[0]
    assert "at the top level" in description
    for other in states[1:]:
        assert all(torch.equal(other[k], states[0][k]) for k in states[0])


def test_absent_decoder_is_reported_and_the_model_says_it_cannot_predict(reference, case, tmp_path):
    name, values = case
    arrays = load_npz(reference / f"{name}_backbone_checkpoint.npz")
    no_decoder = {k: v for k, v in arrays.items() if "/decoder/" not in k}
    config = MooGConfig(**moog_config_kwargs(values))
    result = convert_checkpoint(_save(tmp_path / "nd.npz", no_decoder), tmp_path / "nd", config=config, progress=False)
    assert "WITHOUT decoder" in result.layout
    model = MooGModel.from_pretrained(tmp_path / "nd")
    assert model.config.decoder is None and model.decoder is None
    with pytest.raises(RuntimeError, match="cannot reconstruct"):
        model.decode(torch.zeros(1, 1, values["num_tokens"], values["token_dim"]), (8, 8))
    with pytest.raises(ValueError, match="needs a decoder"):
        MooGForNextFramePrediction.from_pretrained(tmp_path / "nd")


def test_file_determines_widths_and_conflicts_are_named(reference, case, tmp_path):
    name, values = case
    arrays = load_npz(reference / f"{name}_backbone_checkpoint.npz")
    # Without a config: widths, depths and heads from the file, strides / token count from the preset.
    _, config, _ = convert_state_dict(arrays)
    assert config.hidden_size == values["token_dim"]
    assert config.encoder_conv_features == values["encoder"]["conv_features"]
    assert config.predictor["num_layers"] == values["predictor_sa"]["num_layers"]
    assert config.decoder["fourier_bases"] == values["decoder"]["fourier_bases"]
    assert config.num_tokens == MooGConfig.from_preset("ego4d").num_tokens  # not stored in the file
    wrong = MooGConfig(**{**moog_config_kwargs(values), "hidden_size": values["token_dim"] * 2})
    with pytest.raises(ConversionError, match="hidden_size: checkpoint has"):
        convert_state_dict(arrays, config=wrong)
    with pytest.raises(ConversionError, match="MooG checkpoint but the config is a FourDSConfig"):
        convert_state_dict(arrays, config=FourDSConfig())


def test_unknown_and_missing_keys_are_listed(reference, case, tmp_path):
    name, values = case
    arrays = load_npz(reference / f"{name}_backbone_checkpoint.npz")
    config = MooGConfig(**moog_config_kwargs(values))
    extra = dict(arrays, **{"pretrained_model/encoder/backbone/Extra_0/kernel": np.zeros((3,), np.float32)})
    with pytest.raises(ConversionError, match="Extra_0"):
        convert_state_dict(extra, config=config)
    missing = {k: v for k, v in arrays.items() if "predictor_ca/layer_1/MLP_in" not in k}
    with pytest.raises(ConversionError, match=r"corrector\.layers\.1\.mlp\.fc_in"):
        convert_state_dict(missing, config=config)
    outside = dict(arrays, **{"attention_readout/LayerNorm_0/scale": np.ones((4,), np.float32)})
    with pytest.raises(ConversionError, match="convert on their own"):
        convert_state_dict(outside, config=config)


def test_heads_convert_on_their_own_and_attach(reference, case, tmp_path):
    name, values = case
    config = MooGConfig(**moog_config_kwargs(values))
    convert_checkpoint(reference / f"{name}_backbone_checkpoint.npz", tmp_path / "backbone", config=config, progress=False)
    for task, model_class in (("points", MooGForPointTracking), ("boxes", MooGForBoxTracking)):
        source = reference / f"{name}_{task}_checkpoint.npz"
        result = convert_checkpoint(source, tmp_path / task, progress=False)
        assert result.model_class == "ReadoutHeadModel" and "standalone" in result.layout
        described = json.loads((tmp_path / task / "readout_head.json").read_text())
        assert described["readout"]["task"] == task and described["feature_dim"] == values["token_dim"]
        readout, feature_dim, state = load_readout_head(tmp_path / task)
        original = load_npz(source)
        assert sum(t.numel() for t in state.values()) == sum(a.size for a in original.values())
        model = model_class.from_backbone(tmp_path / "backbone", head=tmp_path / task)
        assert model.config.readout["task"] == task
    with pytest.raises(ValueError, match="holds a boxes head"):
        MooGForPointTracking.from_backbone(tmp_path / "backbone", head=tmp_path / "boxes")
    with pytest.raises(CheckpointError, match="readout_head.json is missing"):
        MooGForPointTracking.from_backbone(tmp_path / "backbone", head=tmp_path / "backbone")
    other_width = MooGModel(MooGConfig(**{**moog_config_kwargs(values), "hidden_size": 48}))
    with pytest.raises(ValueError, match="48 wide"):
        MooGForPointTracking.from_backbone(other_width, head=tmp_path / "points")


def test_cli_converts_moog_and_heads(reference, case, tmp_path, capsys):
    name, values = case
    source = str(reference / f"{name}_backbone_checkpoint.npz")
    # No config: the file gives every width; what it cannot (token count, strides) comes from the
    # Ego4D preset, and the layout line says so.
    assert cli_main(["convert", source, str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert "MooGModel" in captured.out
    assert "from the Ego4D preset (default) (not stored in the file)" in captured.out + captured.err
    # An explicit preset is a claim about the file: every contradiction is named.
    assert cli_main(["convert", source, str(tmp_path / "p"), "--preset", "ego4d", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "hidden_size: checkpoint has" in err and "Traceback" not in err
    assert cli_main(["convert", str(reference / f"{name}_points_checkpoint.npz"), str(tmp_path / "h"), "--quiet"]) == 0
    assert (tmp_path / "h" / "readout_head.json").is_file()
