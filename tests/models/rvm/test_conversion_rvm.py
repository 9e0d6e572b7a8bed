"""Converting RVM files: detection against the other families, prefixes, the optional decoder,
sizes read from the shapes, every key accounted for, clear errors, and loading by catalog name.

Uses the reference fixture checkpoints as realistic files (keys as the original writes them)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fourd_hub import RVMConfig, RVMForMaskedVideoReconstruction, RVMModel
from fourd_hub.catalog import CATALOG, CatalogEntry, InputSpec
from fourd_hub.conversion import ConversionError, convert_checkpoint, convert_state_dict
from fourd_hub.conversion.convert import _plan, _plan_from_shapes
from fourd_hub.models.rvm import conversion_rvm
from fourd_hub.registry import families

from conftest import load_npz
from rvm_cases import channels_first, max_error, rvm_cases, rvm_config_kwargs

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def case(cases):
    name, values = next(iter(rvm_cases(cases).items()))
    return name, values


@pytest.fixture(scope="module")
def arrays(reference, case):
    return load_npz(reference / case[1]["checkpoint"])


def _shapes(arrays: dict) -> dict:
    return {k: tuple(v.shape) for k, v in arrays.items()}


def _save(path, arrays):
    np.savez(path, **arrays)
    return path


# ----------------------------------------------------------------------------------------------
# Detection: positive markers only, never another family's file


def test_rvm_files_are_rvm_only_and_other_families_files_never_are(reference):
    checkpoints = sorted(reference.glob("*checkpoint.npz"))
    assert any(path.name.startswith("rvm") for path in checkpoints) and any(not path.name.startswith("rvm") for path in checkpoints)
    for path in checkpoints:
        shapes = _shapes(load_npz(path))
        detected = [spec.name for spec in families() if spec.load("converter").detect(shapes)]
        is_rvm = conversion_rvm.detect(shapes)
        assert is_rvm == path.name.startswith("rvm"), path.name
        if is_rvm:
            assert detected == ["rvm"], path.name
    for family in ("fourds", "moog", "rvm"):  # every released file of every family, from the manifests
        for name, keys in json.loads((reference / "manifests" / f"{family}.json").read_text()).items():
            assert conversion_rvm.detect({k: tuple(v) for k, v in keys.items()}) == (family == "rvm"), name


def test_explain_names_the_missing_marker(arrays):
    no_core = {k: v for k, v in _shapes(arrays).items() if not k.startswith("rnn_core/")}
    assert not conversion_rvm.detect(no_core)
    assert "'rnn_core/state_layer_norm/scale' is missing" in conversion_rvm.explain(no_core)
    with pytest.raises(ConversionError, match=r"not a RVM checkpoint \('tokenizer/patch_embedding/Conv_0/kernel' is there but"):
        _plan_from_shapes(no_core, None, None, None)
    no_tokenizer = {k: v for k, v in _shapes(arrays).items() if not k.startswith("tokenizer/")}
    assert "'tokenizer/patch_embedding/Conv_0/kernel' is missing" in conversion_rvm.explain(no_tokenizer)


# ----------------------------------------------------------------------------------------------
# Layouts


def test_keys_at_the_root_or_under_params_convert_the_same(arrays, case, tmp_path):
    config = RVMConfig(**rvm_config_kwargs(case[1]))
    states = []
    for label, variant in (("root", arrays), ("params", {f"params/{k}": v for k, v in arrays.items()})):
        result = convert_checkpoint(_save(tmp_path / f"{label}.npz", variant), tmp_path / label, config=config, progress=False)
        assert result.model_class == "RVMModel" and "with its masked-reconstruction decoder" in result.layout
        assert ("at the model root" if label == "root" else "under 'params/'") in result.layout
        states.append(RVMModel.from_pretrained(tmp_path / label).state_dict())
    assert states[0].keys() == states[1].keys() and all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_a_file_without_decoder_converts_says_so_and_cannot_reconstruct(reference, arrays, case, tmp_path):
    decoder_parts = ("mask_token", "decoder/", "decoder_embedder/", "delta_embedder/", "detokenizer/")
    backbone = {k: v for k, v in arrays.items() if not k.startswith(decoder_parts)}
    config = RVMConfig(**rvm_config_kwargs(case[1]))  # describes a decoder: the file decides
    result = convert_checkpoint(_save(tmp_path / "nd.npz", backbone), tmp_path / "nd", config=config, progress=False)
    assert "WITHOUT decoder weights" in result.layout
    assert result.num_parameters == sum(a.size for a in backbone.values())
    model = RVMModel.from_pretrained(tmp_path / "nd").eval()
    assert model.config.decoder is None and model.decoder is None
    expected = load_npz(reference / case[1]["reference"])
    with torch.no_grad():
        features = model(channels_first(expected["video"])).last_hidden_state
    assert max_error(features, expected["features"]) <= 1e-4  # the features need no decoder
    with pytest.raises(ValueError, match="needs a decoder"):
        RVMForMaskedVideoReconstruction.from_pretrained(tmp_path / "nd")
    with pytest.raises(ValueError, match="no decoder"):
        RVMForMaskedVideoReconstruction.from_base_model(model)


def test_every_size_comes_from_the_file_and_the_rest_is_reported_as_assumed(arrays, case):
    values = case[1]
    _, config, model_class = convert_state_dict(arrays)
    kwargs = rvm_config_kwargs(values)
    assert model_class is RVMModel
    for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "patch_size", "core", "decoder"):
        assert getattr(config, name) == kwargs[name], name
    planned = _plan(_shapes(arrays), None, None, None)
    assert {a.field for a in planned.assumptions} == set(conversion_rvm.ASSUMABLE_FIELDS)
    assert config.base_token_shape == [16, 16] and "base grid 16x16 from the released RVM models' defaults" in planned.layout.description
    # A partial config claims its own fields only; a full one assumes nothing.
    known = {k: kwargs[k] for k in ("base_token_shape", "image_size", "num_frames", "masking_ratio")}
    assert _plan(_shapes(arrays), None, None, known).assumptions == []
    assert _plan(_shapes(arrays), None, None, {"base_token_shape": kwargs["base_token_shape"]}).config.base_token_shape == kwargs["base_token_shape"]
    assert _plan(_shapes(arrays), None, None, RVMConfig(**kwargs)).assumptions == []


def test_a_partial_config_with_what_the_file_lacks_reproduces_the_original(reference, case, tmp_path):
    """The sizes from the shapes, the base grid and clip from a partial config: parity as with a full one."""
    name, values = case
    kwargs = rvm_config_kwargs(values)
    claims = {k: kwargs[k] for k in ("base_token_shape", "image_size", "num_frames", "masking_ratio")}
    convert_checkpoint(reference / values["checkpoint"], tmp_path / "m", config=claims, progress=False)
    expected = load_npz(reference / values["reference"])
    model = RVMModel.from_pretrained(tmp_path / "m").eval()
    with torch.no_grad():
        features = model(channels_first(expected["video"])).last_hidden_state
    assert max_error(features, expected["features"]) <= 1e-4


def test_a_released_architecture_names_its_preset(reference):
    for keys in json.loads((reference / "manifests" / "rvm.json").read_text()).values():
        shapes = {k: tuple(v) for k, v in keys.items()}
        planned = _plan(shapes, None, None, None)
        assert len(planned.assumptions[0].presets) == 1, planned.assumptions[0]
        assert f"--preset {planned.config.preset or planned.assumptions[0].presets[0]}" in str(planned.assumptions[0])


def test_a_preset_name_shared_with_4ds_is_resolved_by_the_file(reference):
    """4DS and RVM both have presets S, B, L, H: the file's family decides which one --preset means."""
    shapes = {k: tuple(v) for k, v in next(iter(json.loads((reference / "manifests" / "rvm.json").read_text()).values())).items()}
    assert _plan(shapes, None, "S", None).config.model_type == "rvm"


# ----------------------------------------------------------------------------------------------
# Errors: every key accounted for, contradictions named


def test_conflicts_with_a_config_are_named(arrays):
    with pytest.raises(ConversionError, match=r"hidden_size: checkpoint has 32, the given config says 768") as caught:
        convert_state_dict(arrays, config=RVMConfig.from_preset("B"))
    assert "core.num_heads: checkpoint has" in str(caught.value)
    with pytest.raises(ConversionError, match=r"core\.num_feats: checkpoint has"):
        convert_state_dict(arrays, config={"core": {"num_feats": 1000}})


def test_unknown_missing_and_outside_keys_are_named(arrays, case):
    config = RVMConfig(**rvm_config_kwargs(case[1]))
    with pytest.raises(ConversionError, match="rnn_core/extra_gate/kernel"):
        convert_state_dict(dict(arrays, **{"rnn_core/extra_gate/kernel": np.zeros((2, 2), np.float32)}), config=config)
    with pytest.raises(ConversionError, match=r"original array 'mask_token' \(the mask token \(1, Dd\)\) is missing"):
        convert_state_dict({k: v for k, v in arrays.items() if k != "mask_token"}, config=config)
    missing_gate = {k: v for k, v in arrays.items() if k != "rnn_core/state_reset/kernel"}
    with pytest.raises(ConversionError, match=r"core\.state_reset\.weight \(original array 'rnn_core/state_reset/kernel'\)"):
        convert_state_dict(missing_gate, config=config)
    with pytest.raises(ConversionError, match="outside the RVM model"):
        convert_state_dict({**{f"params/{k}": v for k, v in arrays.items()}, "opt_state/count": np.zeros(1, np.float32)})
    no_middle = {k: v for k, v in arrays.items() if not k.startswith("encoder/layers_0/")}
    with pytest.raises(ConversionError, match="encoder blocks must be numbered 0..n-1"):
        convert_state_dict(no_middle)


def test_shapes_that_are_not_rvm_are_refused_by_name(arrays):
    def changed(key, array):
        return dict(arrays, **{key: array})

    conv = arrays["tokenizer/patch_embedding/Conv_0/kernel"]
    with pytest.raises(ConversionError, match="temporal kernel of 2"):
        convert_state_dict(changed("tokenizer/patch_embedding/Conv_0/kernel", np.concatenate([conv, conv])))
    # Same total attention width, another head split: flattening would hide it, so it is refused.
    prefix = "rnn_core/transformer/xa_blocks_1/ca_attention/"
    heads, dim = arrays[prefix + "query/kernel"].shape[1:]
    resplit = dict(arrays)
    for part in ("query", "key", "value"):
        resplit[f"{prefix}{part}/kernel"] = arrays[f"{prefix}{part}/kernel"].reshape(-1, heads * 2, dim // 2)
        resplit[f"{prefix}{part}/bias"] = arrays[f"{prefix}{part}/bias"].reshape(heads * 2, dim // 2)
    resplit[prefix + "out/kernel"] = arrays[prefix + "out/kernel"].reshape(heads * 2, dim // 2, -1)
    with pytest.raises(ConversionError, match="must share their head split"):
        convert_state_dict(resplit)
    detokenizer = arrays["detokenizer/Dense_0/kernel"]
    with pytest.raises(ConversionError, match="detokenizer outputs"):
        convert_state_dict(changed("detokenizer/Dense_0/kernel", detokenizer[:, :-3]))


# ----------------------------------------------------------------------------------------------
# Loading by catalog name: the same download-and-convert path as the other families


def test_from_pretrained_by_catalog_name_downloads_and_converts(reference, case, tmp_path, monkeypatch):
    from huggingface_hub import constants

    name, values = case
    path = reference / values["checkpoint"]
    entry = CatalogEntry(
        name="rvm-tiny-test", family="rvm", architecture="RVMModel", preset="S", description="test entry",
        num_parameters=sum(a.size for a in load_npz(path).values()), original_file=path.name, file_size=path.stat().st_size,
        input_spec=InputSpec(num_frames=values["num_frames"], image_size=tuple(values["image_size"])),
        config_overrides=rvm_config_kwargs(values),
    )
    monkeypatch.setitem(CATALOG, entry.name, entry)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FOURD_HUB_ORIGINAL_URL", str(reference))  # a local mirror of the bucket
    model = RVMModel.from_pretrained(entry.name).eval()
    assert model.config._name_or_path == entry.name and model.decoder is not None
    expected = load_npz(reference / values["reference"])
    with torch.no_grad():
        features = model(channels_first(expected["video"])).last_hidden_state
    assert max_error(features, expected["features"]) <= 1e-4
    wrapper = RVMForMaskedVideoReconstruction.from_pretrained(entry.name)  # the cached conversion, the same weights
    assert all(torch.equal(a, b) for a, b in zip(wrapper.rvm.state_dict().values(), model.state_dict().values()))
