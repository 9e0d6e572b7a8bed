"""Converting MooG files: prefix handling, absent decoder, standalone heads and their errors.

Uses the reference fixture checkpoints as realistic files (keys as the original writes them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import fourd_hub
from fourd_hub import FourDSConfig, MooGConfig, MooGForBoxTracking, MooGForNextFramePrediction, MooGForPointTracking, MooGModel
from fourd_hub.cli import main as cli_main
from fourd_hub.conversion import CheckpointError, ConversionError, convert_checkpoint, convert_state_dict
from fourd_hub.conversion.convert import _plan, _plan_from_shapes
from fourd_hub.modeling_utils import read_head_directory

from conftest import load_npz, moog_cases, moog_config_kwargs, moog_readout_kwargs


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
        assert result.model_class == model_class.__name__ and "standalone" in result.layout
        described = json.loads((tmp_path / task / "config.json").read_text())
        assert described["readout"]["task"] == task and described["hidden_size"] == values["token_dim"]
        assert described["use_pretrained_backbone"] is True and described["architectures"] == [model_class.__name__]
        _, state = read_head_directory(tmp_path / task)
        original = load_npz(source)
        assert sum(t.numel() for t in state.values()) == sum(a.size for a in original.values())
        model = model_class.from_backbone(tmp_path / "backbone", head=tmp_path / task)
        assert model.config.readout["task"] == task
    with pytest.raises(ValueError, match="holds a boxes head"):
        MooGForPointTracking.from_backbone(tmp_path / "backbone", head=tmp_path / "boxes")
    with pytest.raises(ValueError, match="not a standalone head"):
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
    assert "assumed: encoder_strides = " in captured.out  # what no tensor holds, and how to set it
    # An explicit preset is a claim about the file: every contradiction is named.
    assert cli_main(["convert", source, str(tmp_path / "p"), "--preset", "ego4d", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "hidden_size: checkpoint has" in err and "Traceback" not in err
    assert cli_main(["convert", str(reference / f"{name}_points_checkpoint.npz"), str(tmp_path / "h"), "--quiet"]) == 0
    assert json.loads((tmp_path / "h" / "config.json").read_text())["use_pretrained_backbone"] is True
    # A partial --config is a claim for its own fields only: the shapes give the widths.
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"num_tokens": values["num_tokens"]}))
    assert cli_main(["convert", source, str(tmp_path / "q"), "--config", str(partial), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert f"{values['num_tokens']} state tokens from the given config" in captured.out and "does not match" not in captured.err
    assert json.loads((tmp_path / "q" / "config.json").read_text())["num_tokens"] == values["num_tokens"]


# ---------------------------------------------------------------------------------------------
# Partial configs and assumptions (issue 15 item 5)


def test_partial_config_is_merged_with_the_shapes_and_the_rest_is_listed_as_assumed(reference, case, tmp_path):
    name, values = case
    source = reference / f"{name}_backbone_checkpoint.npz"
    ego4d = MooGConfig.from_preset("ego4d").to_dict()
    result = convert_checkpoint(source, tmp_path / "one", config={"num_tokens": values["num_tokens"]}, progress=False)
    config = MooGModel.from_pretrained(tmp_path / "one").config
    assert config.num_tokens == values["num_tokens"] and config.hidden_size == values["token_dim"]
    assert config.predictor["num_heads"] == values["predictor_sa"]["num_heads"] and config.preset is None
    assumed = {a.field: a for a in result.assumptions}
    assert set(assumed) == {"encoder_strides", "num_frames", "image_size", "decoder.subsample_factor"}
    assert assumed["encoder_strides"].value == ego4d["encoder_strides"] == config.encoder_strides
    assert assumed["decoder.subsample_factor"].value == ego4d["decoder"]["subsample_factor"]
    assert all(a.source == "Ego4D preset default" and a.presets == () for a in result.assumptions)
    # The line the CLI prints after "assumed: ", and the config that sets the value instead.
    frames = assumed["num_frames"]
    assert str(frames) == (
        f"num_frames = {ego4d['num_frames']} (Ego4D preset default; not stored in the file; set with --config FILE.json "
        f'holding {{"num_frames": {ego4d["num_frames"]}}})'
    )
    factor = ego4d["decoder"]["subsample_factor"]
    assert json.loads(assumed["decoder.subsample_factor"].config_json) == {"decoder": {"subsample_factor": factor}}
    # Without a config, the token count is assumed too; with every value the case knows, only the
    # decoder's training subsample factor (which the case does not give) is.
    without = convert_checkpoint(source, tmp_path / "none", progress=False)
    assert {a.field for a in without.assumptions} == set(assumed) | {"num_tokens"}
    known = {k: moog_config_kwargs(values)[k] for k in ("num_tokens", "encoder_strides", "num_frames", "image_size")}
    full = convert_checkpoint(source, tmp_path / "known", config=known, progress=False)
    assert [a.field for a in full.assumptions] == ["decoder.subsample_factor"]
    assert all(getattr(full.config, k) == v for k, v in known.items())
    # A full claim (a config object, a catalog entry, a preset) assumes nothing.
    claimed = convert_checkpoint(source, tmp_path / "object", config=MooGConfig(**moog_config_kwargs(values)), progress=False)
    assert claimed.assumptions == []


def test_partial_config_contradicting_the_shapes_is_refused_naming_the_field(reference, case, tmp_path):
    name, values = case
    arrays = load_npz(reference / f"{name}_backbone_checkpoint.npz")
    wider = {"num_tokens": values["num_tokens"], "hidden_size": values["token_dim"] * 2}
    with pytest.raises(ConversionError, match="hidden_size: checkpoint has") as caught:
        convert_state_dict(arrays, config=wider)
    assert "num_tokens" not in str(caught.value) and "leave the fields out" in str(caught.value)
    heads = values["predictor_sa"]["num_heads"]
    with pytest.raises(ConversionError, match=rf"predictor\.num_heads: checkpoint has {heads}, the given config says {heads + 1}"):
        convert_state_dict(arrays, config={"predictor": {"num_heads": heads + 1}})
    with pytest.raises(ConversionError, match="'num_token' \\(did you mean 'num_tokens'\\?\\)"):
        convert_state_dict(arrays, config={"num_token": values["num_tokens"]})
    with pytest.raises(ConversionError, match="model_type is 'fourds'"):
        convert_state_dict(arrays, config={"model_type": "fourds"})
    # A value no tensor holds is the config's to give, but it must still be a valid one.
    with pytest.raises(ConversionError, match="num_tokens"):
        convert_state_dict(arrays, config={"num_tokens": 0})


def test_partial_config_of_a_head_file(reference, case):
    """A head file with a partial config: the fields it names are used (and checked), the head's shapes give the rest."""
    name, values = case
    head = load_npz(reference / f"{name}_points_checkpoint.npz")
    _, config, model_class = convert_state_dict(head, config={"backbone": "my/backbone"})
    assert model_class is MooGForPointTracking and config.backbone == "my/backbone"
    assert config.hidden_size == values["token_dim"] and config.use_pretrained_backbone
    with pytest.raises(ConversionError, match=f"reads {values['token_dim']}-wide features"):
        convert_state_dict(head, config={"hidden_size": values["token_dim"] * 2})
    with pytest.raises(ConversionError, match="holds a points head, the given config describes a boxes head"):
        convert_state_dict(head, config={"readout": {"task": "boxes"}})


def test_a_file_of_a_preset_architecture_names_the_preset(reference):
    """The released MooG backbone's shapes (manifest) outside the catalog: the assumptions say --preset ego4d claims them all."""
    manifests = json.loads((reference / "manifests" / "moog.json").read_text())
    backbones = [{k: tuple(v) for k, v in m.items()} for m in manifests.values() if any("predictor_sa/" in k for k in m)]
    assert backbones
    for shapes in backbones:
        planned = _plan(shapes, None, None, None)
        assert planned.assumptions and all(a.presets == ("ego4d",) for a in planned.assumptions)
        assert "or --preset ego4d" in str(planned.assumptions[0])
        assert _plan(shapes, None, "ego4d", None).assumptions == []


def test_a_head_directory_loads_with_auto_classes_pushes_and_runs_a_pipeline(reference, case, video, tmp_path, monkeypatch):
    """A converted head is an ordinary directory: AutoConfig / AutoModel read it, push uploads it, a pipeline runs it."""
    import transformers

    from fourd_hub import MooGConfig, pipeline
    from fourd_hub.cli import main

    name, values = case
    config = MooGConfig(**moog_config_kwargs(values))
    convert_checkpoint(reference / f"{name}_backbone_checkpoint.npz", tmp_path / "backbone", config=config, progress=False)
    # The head names the backbone it reads (here a directory; a catalog head names its base model).
    head_config = MooGConfig(**moog_config_kwargs(values), readout=moog_readout_kwargs(values, "points"), backbone=str(tmp_path / "backbone"))
    convert_checkpoint(reference / f"{name}_points_checkpoint.npz", tmp_path / "head", config=head_config, progress=False)
    loaded_config = transformers.AutoConfig.from_pretrained(tmp_path / "head")
    assert type(loaded_config) is MooGConfig and loaded_config.use_pretrained_backbone and loaded_config.readout["task"] == "points"
    backbone = transformers.AutoModel.from_pretrained(tmp_path / "head")  # the base model of a task checkpoint
    expected_backbone = MooGModel.from_pretrained(tmp_path / "backbone")
    assert type(backbone) is MooGModel
    assert all(torch.equal(a, b) for a, b in zip(backbone.state_dict().values(), expected_backbone.state_dict().values()))
    tracker = fourd_hub.from_pretrained(tmp_path / "head")
    assert type(tracker) is MooGForPointTracking
    _, head_state = read_head_directory(tmp_path / "head")
    assert all(torch.equal(tracker.head.state_dict()[k], v) for k, v in head_state.items())

    path, _ = video
    result = pipeline("point-tracking", model=tmp_path / "head", progress=False)(path, end=6, points=[(0, 20.0, 20.0)])
    assert result.tracks.shape == (6, 1, 2) and np.isfinite(result.tracks).all()

    uploaded = {}

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        uploaded.update({p.name: p.read_bytes() for p in Path(folder_path).iterdir()})
        return "commit"

    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoUrl

    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kwargs: RepoUrl(f"https://huggingface.co/{repo_id}"))
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    assert main(["push", str(tmp_path / "head"), "me/points-head", "--quiet"]) == 0
    assert {"config.json", "model.safetensors", "README.md"} <= set(uploaded)
    assert json.loads(uploaded["config.json"])["use_pretrained_backbone"] is True


# ---------------------------------------------------------------------------------------------
# Clear errors (issue 14 item 4): missing or mis-ranked arrays read by config inference


@pytest.mark.parametrize(
    "key",
    [
        "pretrained_model/state_layer_norm/scale",
        "pretrained_model/predictor_sa/layer_0/MLP_in/kernel",
        "pretrained_model/decoder/transformer/layer_0/MLP_in/kernel",
        "pretrained_model/decoder/recon/kernel",
    ],
)
def test_missing_backbone_array_is_named(reference, case, tmp_path, key):
    name, _ = case
    arrays = load_npz(reference / f"{name}_backbone_checkpoint.npz")
    assert key in arrays
    del arrays[key]
    with pytest.raises(CheckpointError, match="missing") as caught:
        convert_checkpoint(_save(tmp_path / "c.npz", arrays), tmp_path / "out", progress=False)
    assert key in str(caught.value) and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "key, rank",
    [
        ("pretrained_model/encoder/backbone/Conv_0/kernel", 3),
        ("pretrained_model/predictor_sa/layer_0/self_att/dense_query/kernel", 2),
        ("pretrained_model/state_layer_norm/scale", 2),
        ("pretrained_model/decoder/recon/kernel", 1),
    ],
)
def test_misranked_backbone_array_is_named(reference, case, tmp_path, key, rank):
    name, _ = case
    arrays = load_npz(reference / f"{name}_backbone_checkpoint.npz")
    arrays[key] = arrays[key].reshape(*arrays[key].shape[: rank - 1], -1) if rank > 1 else arrays[key].reshape(-1)
    with pytest.raises(CheckpointError, match=rf"rank {rank}, expected rank") as caught:
        convert_checkpoint(_save(tmp_path / "c.npz", arrays), tmp_path / "out", progress=False)
    assert key in str(caught.value)


def test_head_file_missing_or_misranked_arrays_are_named(reference, case, tmp_path, capsys):
    name, _ = case
    head = load_npz(reference / f"{name}_points_checkpoint.npz")
    key = "attention_readout/key_embedding/kernel"
    flat = dict(head, **{key: head[key].reshape(head[key].shape[0], -1)})  # was "not enough values to unpack"
    with pytest.raises(CheckpointError, match=rf"{key}.*rank 2, expected rank 3"):
        convert_checkpoint(_save(tmp_path / "flat.npz", flat), tmp_path / "out", progress=False)
    for missing in (key, "attention_readout/LayerNorm_0/scale", "query_initializer/layers_1/Dense_1/kernel"):
        lacking = {k: v for k, v in head.items() if k != missing}
        with pytest.raises(CheckpointError, match="missing") as caught:
            convert_checkpoint(_save(tmp_path / "m.npz", lacking), tmp_path / "out", progress=False)
        assert missing in str(caught.value)
    # The CLI prints the same as one line (it used to print the bare key of a KeyError).
    assert cli_main(["convert", str(tmp_path / "m.npz"), str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "query_initializer/layers_1/Dense_1/kernel" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_every_deleted_or_reshaped_array_is_a_checkpoint_error(reference, case):
    """Fuzz over the fixture files' keys: planning raises CheckpointError naming the key, never a KeyError or unpacking error."""
    name, _ = case
    for file in ("backbone", "points", "boxes"):
        shapes = {k: v.shape for k, v in load_npz(reference / f"{name}_{file}_checkpoint.npz").items()}
        _plan_from_shapes(dict(shapes), None, None, None)
        last_conv = max(k for k in shapes if "encoder/backbone/Conv_" in k and k.endswith("/kernel")) if file == "backbone" else None
        for key in shapes:
            for variant in (None, (3,), (*shapes[key], 2)):
                corrupted = dict(shapes)
                if variant is None:
                    del corrupted[key]
                elif variant == tuple(shapes[key]):
                    continue
                else:
                    corrupted[key] = variant
                with pytest.raises(CheckpointError) as caught:
                    _plan_from_shapes(corrupted, None, None, None)
                if key == last_conv and variant is None:
                    # Without its last conv the file is a shallower encoder: the strides of the preset then do not fit.
                    assert "encoder_strides" in str(caught.value)
                    continue
                assert key in str(caught.value), (file, key, variant, str(caught.value))
