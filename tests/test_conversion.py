"""The converter: layouts, strictness, config inference, bad files, atomic and sharded output, CLI.

Checkpoints here are synthetic original-format files written by the tests (random arrays with
the original key names), so these tests run without the reference directory.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fourd_hub import FourDSConfig, FourDSForDepthEstimation, FourDSModel
from fourd_hub.cli import main as cli_main
from fourd_hub.conversion import CheckpointError, ConversionError, convert_checkpoint, convert_state_dict
from fourd_hub.conversion import npz as npz_module
from fourd_hub.cards import read_provenance, write_conversion_card

from conftest import config_kwargs_from_case, fourds_cases, load_npz, tiny_fourds_kwargs

WIDTH, LAYERS, MLP, HEADS = 32, 2, 48, 4


def original_backbone(prefix: str = "params/", rng=None, layers: int = LAYERS) -> dict[str, np.ndarray]:
    """A random 4DS backbone in the original key layout: patch 2x8x8, 4 frames of 32x24."""
    rng = rng or np.random.default_rng(0)
    head_dim = WIDTH // HEADS

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.1

    params = {
        f"{prefix}encoder/patch_embedding/Conv_0/kernel": r(2, 8, 8, 3, WIDTH),
        f"{prefix}encoder/patch_embedding/Conv_0/bias": r(WIDTH),
        f"{prefix}encoder/posenc/embeddings": r(2, 4, 3, WIDTH),
    }
    for i in range(layers):
        block = f"{prefix}processor/layers_{i}/"
        for norm in ("attention_norm", "mlp_norm"):
            params[block + f"{norm}/scale"] = 1 + r(WIDTH)
            params[block + f"{norm}/bias"] = r(WIDTH)
        for proj in ("query", "key", "value"):
            params[block + f"attention/{proj}/kernel"] = r(WIDTH, HEADS, head_dim)
            params[block + f"attention/{proj}/bias"] = r(HEADS, head_dim)
        params[block + "attention/out/kernel"] = r(HEADS, head_dim, WIDTH)
        params[block + "attention/out/bias"] = r(WIDTH)
        params[block + "mlp/dense_in/kernel"] = r(WIDTH, MLP)
        params[block + "mlp/dense_in/bias"] = r(MLP)
        params[block + "mlp/dense_out/kernel"] = r(MLP, WIDTH)
        params[block + "mlp/dense_out/bias"] = r(WIDTH)
    return params


def original_depth_readout(prefix: str, rng=None, num_params: int = 16, heads: int = 2) -> dict[str, np.ndarray]:
    """A random depth readout for 4 frames of 32x24 with 2x8x8 decoding patches (Q = 2*4*3)."""
    rng = rng or np.random.default_rng(1)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.1

    d = num_params // heads
    return {
        f"{prefix}LayerNorm_0/scale": 1 + r(WIDTH), f"{prefix}LayerNorm_0/bias": r(WIDTH),
        f"{prefix}temporal_posenc/embeddings": r(4, 1, WIDTH),
        f"{prefix}query": r(24, heads, d),
        f"{prefix}key_embedding/kernel": r(WIDTH, heads, d), f"{prefix}key_embedding/bias": r(heads, d),
        f"{prefix}value_embedding/kernel": r(WIDTH, heads, d), f"{prefix}value_embedding/bias": r(heads, d),
        f"{prefix}Dense_0/kernel": r(num_params, num_params), f"{prefix}Dense_0/bias": r(num_params),
        f"{prefix}LayerNorm_1/scale": 1 + r(num_params), f"{prefix}LayerNorm_1/bias": r(num_params),
        f"{prefix}MLP_0/Dense_0/kernel": r(num_params, 4 * num_params), f"{prefix}MLP_0/Dense_0/bias": r(4 * num_params),
        f"{prefix}MLP_0/Dense_1/kernel": r(4 * num_params, num_params), f"{prefix}MLP_0/Dense_1/bias": r(num_params),
        f"{prefix}Dense_1/kernel": r(num_params, 128), f"{prefix}Dense_1/bias": r(128),
    }


def save_npz(path: Path, params: dict[str, np.ndarray]) -> Path:
    np.savez(path, **params)
    return path


def no_partial_dirs(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if ".partial-" in p.name]


# ---------------------------------------------------------------------------------------------
# Layouts and the conversion itself


@pytest.mark.parametrize(
    "prefix, expected",
    [
        ("params/", "4DS backbone under 'params/'"),
        ("", "4DS backbone at the top level"),
        ("params/layers_0/", "4DS backbone under 'params/layers_0/'"),
        ("layers_0/", "4DS backbone under 'layers_0/'"),
    ],
)
def test_backbone_layouts_are_accepted_and_reported(tmp_path, prefix, expected, tiny_video):
    params = original_backbone(prefix)
    source = save_npz(tmp_path / "ckpt.npz", params)
    result = convert_checkpoint(source, tmp_path / "out", progress=False)
    assert result.layout == expected
    assert result.model_class == "FourDSModel"
    model = FourDSModel.from_pretrained(tmp_path / "out")
    # The weights land where the key table says: patch embedding kernel (t,h,w,in,out) -> (out,in,t,h,w).
    kernel = params[f"{prefix}encoder/patch_embedding/Conv_0/kernel"]
    assert torch.equal(model.embeddings.patch_embedding.weight, torch.from_numpy(kernel.transpose(4, 3, 0, 1, 2)))
    q = params[f"{prefix}processor/layers_1/attention/query/kernel"]
    assert torch.equal(model.layers[1].attention.q_proj.weight, torch.from_numpy(q.reshape(WIDTH, -1).T))
    assert model.config.num_frames == 4 and model.config.image_size == [32, 24] and model.config.patch_size == [2, 8, 8]


def test_backbone_with_depth_readout(tmp_path, tiny_video):
    params = {**original_backbone("params/layers_0/"), **original_depth_readout("params/layers_2/")}
    # The converter returns the provenance; the card is written by the caller, inside the staging directory.
    result = convert_checkpoint(
        save_npz(tmp_path / "ckpt.npz", params), tmp_path / "out", progress=False,
        on_staged=lambda directory, staged: write_conversion_card(staged, directory),
    )
    assert "depth readout (learned queries) under 'params/layers_2/'" in result.layout
    assert result.provenance.original_sha256 == result.source_sha256
    model = FourDSForDepthEstimation.from_pretrained(tmp_path / "out").eval()
    with torch.no_grad():
        depth = model(tiny_video).predicted_depth
    assert depth.shape == (2, 4, 32, 24) and torch.isfinite(depth).all()
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"config.json", "model.safetensors", "README.md"} <= files
    provenance = read_provenance(tmp_path / "out" / "README.md")
    assert provenance.original_sha256 == result.source_sha256 and provenance.original_file == "ckpt.npz"
    assert provenance.model_class == "FourDSForDepthEstimation" and provenance.layout == result.layout


def test_streaming_and_in_memory_conversions_agree(tmp_path):
    params = {**original_backbone("params/layers_0/"), **original_depth_readout("params/layers_2/")}
    state_dict, config, model_class = convert_state_dict(params)
    assert model_class is FourDSForDepthEstimation
    convert_checkpoint(save_npz(tmp_path / "c.npz", params), tmp_path / "out", progress=False)
    loaded = FourDSForDepthEstimation.from_pretrained(tmp_path / "out").state_dict()
    assert set(loaded) == set(state_dict)
    for key, value in state_dict.items():
        assert torch.equal(loaded[key], value), key


def test_sharded_output_round_trips(tmp_path):
    params = original_backbone()
    source = save_npz(tmp_path / "c.npz", params)
    convert_checkpoint(source, tmp_path / "single", progress=False)
    result = convert_checkpoint(source, tmp_path / "sharded", max_shard_size="40KB", progress=False, verify=True)
    assert len(result.files) > 2
    index = json.loads((tmp_path / "sharded" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(result.files)
    single = FourDSModel.from_pretrained(tmp_path / "single").state_dict()
    sharded = FourDSModel.from_pretrained(tmp_path / "sharded").state_dict()
    for key in single:
        assert torch.equal(single[key], sharded[key]), key


def test_bfloat16_conversion(tmp_path):
    params = original_backbone()
    convert_checkpoint(save_npz(tmp_path / "c.npz", params), tmp_path / "out", dtype="bfloat16", progress=False, verify=True)
    model = FourDSModel.from_pretrained(tmp_path / "out", dtype=torch.bfloat16)
    weight = model.embeddings.patch_embedding.bias
    assert weight.dtype == torch.bfloat16
    expected = torch.from_numpy(params["params/encoder/patch_embedding/Conv_0/bias"]).to(torch.bfloat16)
    assert torch.equal(weight, expected)


# ---------------------------------------------------------------------------------------------
# Strictness and config inference


def test_unused_original_key_is_named(tmp_path):
    params = original_backbone()
    params["params/encoder/extra_thing/kernel"] = np.zeros((3, 3), np.float32)
    with pytest.raises(ConversionError, match="extra_thing"):
        convert_checkpoint(save_npz(tmp_path / "c.npz", params), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and no_partial_dirs(tmp_path)


def test_unfilled_model_parameter_is_named(tmp_path):
    params = original_backbone()
    del params["params/processor/layers_1/mlp/dense_out/bias"]
    with pytest.raises(ConversionError, match=r"layers\.1\.mlp\.fc_out\.bias"):
        convert_checkpoint(save_npz(tmp_path / "c.npz", params), tmp_path / "out", progress=False)


def test_shape_mismatch_is_named(tmp_path):
    params = original_backbone()
    params["params/processor/layers_0/mlp/dense_out/kernel"] = np.zeros((MLP + 1, WIDTH), np.float32)
    with pytest.raises(ConversionError, match=r"layers\.0\.mlp\.fc_out\.weight"):
        convert_checkpoint(save_npz(tmp_path / "c.npz", params), tmp_path / "out", progress=False)


def test_preset_mismatch_is_refused_with_the_fields(tmp_path):
    source = save_npz(tmp_path / "c.npz", original_backbone())
    with pytest.raises(ConversionError, match=r"hidden_size: checkpoint has 32, preset 'B' says 768"):
        convert_checkpoint(source, tmp_path / "out", preset="B", progress=False)


def test_explicit_config_supplies_what_shapes_cannot(tmp_path):
    source = save_npz(tmp_path / "c.npz", original_backbone())
    config = FourDSConfig(**tiny_fourds_kwargs(num_hidden_layers=LAYERS, intermediate_size=MLP, readout_depth=0.5))
    convert_checkpoint(source, tmp_path / "out", config=config, progress=False)
    assert FourDSModel.from_pretrained(tmp_path / "out").config.readout_depth == 0.5


def test_catalog_name_of_other_family_is_refused(tmp_path):
    source = save_npz(tmp_path / "c.npz", original_backbone())
    with pytest.raises(ConversionError, match="MooG"):
        convert_checkpoint(source, tmp_path / "out", name="moog-ego4d", progress=False)
    with pytest.raises(KeyError, match="known names"):
        convert_checkpoint(source, tmp_path / "out", name="4ds-zz", progress=False)


def test_other_architecture_is_refused(tmp_path):
    moog_like = {"pretrained_model/predictor_sa/layer_0/self_att/dense_query/kernel": np.zeros((4, 2, 2), np.float32)}
    with pytest.raises(ConversionError, match="MooG"):
        convert_checkpoint(save_npz(tmp_path / "m.npz", moog_like), tmp_path / "out", progress=False)
    other = {"conv1/kernel": np.zeros((3, 3, 3, 8), np.float32)}
    with pytest.raises(ConversionError, match="not a 4DS checkpoint"):
        convert_checkpoint(save_npz(tmp_path / "o.npz", other), tmp_path / "out", progress=False)


def test_wrong_rank_is_refused(tmp_path):
    params = original_backbone()
    params["params/processor/layers_0/attention/query/kernel"] = np.zeros((WIDTH, WIDTH), np.float32)
    with pytest.raises(ConversionError, match="rank 3"):
        convert_checkpoint(save_npz(tmp_path / "c.npz", params), tmp_path / "out", progress=False)


# ---------------------------------------------------------------------------------------------
# Bad files and atomicity


def test_missing_and_empty_and_text_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        convert_checkpoint(tmp_path / "nope.npz", tmp_path / "out", progress=False)
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        convert_checkpoint(tmp_path / "empty.npz", tmp_path / "out", progress=False)
    (tmp_path / "text.npz").write_text("this is not an archive\n")
    with pytest.raises(CheckpointError, match="not a readable .npz"):
        convert_checkpoint(tmp_path / "text.npz", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and no_partial_dirs(tmp_path)


def test_truncated_npz(tmp_path):
    source = save_npz(tmp_path / "c.npz", original_backbone())
    data = source.read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        truncated = tmp_path / f"truncated_{cut}.npz"
        truncated.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated"):
            convert_checkpoint(truncated, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and no_partial_dirs(tmp_path)


def test_pickled_npz_is_never_unpickled(tmp_path, monkeypatch):
    import pickle

    calls = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: calls.append(a) or None)
    source = tmp_path / "pickled.npz"
    np.savez(source, **{"params/encoder/posenc/embeddings": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(CheckpointError, match="pickled"):
        convert_checkpoint(source, tmp_path / "out", progress=False)
    assert not calls


def test_corrupt_member_data_is_reported(tmp_path):
    # A member whose stored CRC does not match: zip reports it when that array is read.
    params = original_backbone()
    buffer = io.BytesIO()
    np.savez(buffer, **params)
    raw = bytearray(buffer.getvalue())
    key = b"params/processor/layers_1/mlp/dense_in/kernel.npy"
    start = raw.index(key) + len(key) + 200  # inside the array's data (past the .npy header)
    raw[start : start + 8] = b"\xff" * 8
    source = tmp_path / "corrupt.npz"
    source.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="dense_in/kernel"):
        convert_checkpoint(source, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and no_partial_dirs(tmp_path)


def test_nan_weights_are_refused(tmp_path):
    params = original_backbone()
    params["params/encoder/posenc/embeddings"][0, 0, 0, 0] = np.nan
    with pytest.raises(ConversionError, match="NaN"):
        convert_checkpoint(save_npz(tmp_path / "c.npz", params), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and no_partial_dirs(tmp_path)


def test_interrupted_conversion_leaves_nothing(tmp_path, monkeypatch):
    source = save_npz(tmp_path / "c.npz", original_backbone())
    original_load = npz_module.NpzCheckpoint.load
    calls = {"n": 0}

    def flaky_load(self, key):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return original_load(self, key)

    monkeypatch.setattr(npz_module.NpzCheckpoint, "load", flaky_load)
    with pytest.raises(KeyboardInterrupt):
        convert_checkpoint(source, tmp_path / "out", max_shard_size="20KB", progress=False)
    assert not (tmp_path / "out").exists() and no_partial_dirs(tmp_path)


def test_existing_output_needs_overwrite(tmp_path):
    source = save_npz(tmp_path / "c.npz", original_backbone())
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="overwrite"):
        convert_checkpoint(source, tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "keep.txt").exists()
    # --overwrite replaces only an empty directory or an earlier model, never unrelated files.
    with pytest.raises(FileExistsError, match=r"not a model directory.*keep\.txt"):
        convert_checkpoint(source, tmp_path / "out", overwrite=True, progress=False)
    assert (tmp_path / "out" / "keep.txt").read_text() == "precious"
    (tmp_path / "out" / "keep.txt").unlink()
    convert_checkpoint(source, tmp_path / "out", overwrite=True, progress=False)  # empty: written
    (tmp_path / "out" / "stale.txt").write_text("from an earlier conversion")
    convert_checkpoint(source, tmp_path / "out", overwrite=True, progress=False)  # a model: replaced
    assert not (tmp_path / "out" / "stale.txt").exists() and (tmp_path / "out" / "model.safetensors").exists()


# ---------------------------------------------------------------------------------------------
# Partial configs and assumptions (issue 15 item 5), on the reference 4DS file (backbone + depth)


@pytest.fixture(scope="module")
def fourds_case(cases):
    return next(iter(fourds_cases(cases).values()))


def test_partial_config_claims_only_its_fields_and_lists_what_is_assumed(reference, fourds_case, tmp_path):
    source = reference / "fourds_tiny_checkpoint.npz"
    known = config_kwargs_from_case(fourds_case)
    result = convert_checkpoint(source, tmp_path / "one", config={"readout_depth": known["readout_depth"]}, progress=False)
    config = FourDSForDepthEstimation.from_pretrained(tmp_path / "one").config
    assert config.readout_depth == known["readout_depth"] and config.hidden_size == known["hidden_size"]
    assert config.num_frames == known["num_frames"] and config.image_size == known["image_size"]  # from the position embedding
    assert [a.field for a in result.assumptions] == ["readout.decoding_patch_size"]
    patch = result.assumptions[0]
    assert patch.value == config.readout["decoding_patch_size"] and "not stored in the file" in str(patch)
    assert json.loads(patch.config_json) == {"readout": {"decoding_patch_size": patch.value}}
    # Nothing given: readout_depth is assumed too; no Table 1 size fits the tiny file, so no --preset is offered.
    without = convert_checkpoint(source, tmp_path / "none", progress=False)
    assert [a.field for a in without.assumptions] == ["readout_depth", "readout.decoding_patch_size"]
    assert all(a.presets == () and a.source.startswith("4DS") for a in without.assumptions)
    # Every value the case knows: nothing assumed, the same config as the full one.
    given = {"readout_depth": known["readout_depth"], "readout": {"decoding_patch_size": known["readout"]["decoding_patch_size"]}}
    full = convert_checkpoint(source, tmp_path / "known", config=given, progress=False)
    assert full.assumptions == []
    arrays = load_npz(source)
    _, from_partial, _ = convert_state_dict(arrays, config=given)
    assert from_partial.to_dict() == convert_state_dict(arrays, config=FourDSConfig(**known))[1].to_dict()


def test_partial_config_contradicting_a_shape_is_refused_naming_the_field(reference, fourds_case, tmp_path, capsys):
    source = reference / "fourds_tiny_checkpoint.npz"
    frames = config_kwargs_from_case(fourds_case)["num_frames"]
    contradiction = rf"num_frames: checkpoint has {frames}, the given config says {frames * 2}"
    with pytest.raises(ConversionError, match=contradiction) as caught:
        convert_checkpoint(source, tmp_path / "out", config={"num_frames": frames * 2}, progress=False)
    assert "image_size" not in str(caught.value) and not (tmp_path / "out").exists()
    with pytest.raises(ConversionError, match="holds a depth head, the given config describes a points head"):
        convert_checkpoint(source, tmp_path / "out", config={"readout": {"task": "points"}}, progress=False)
    with pytest.raises(ConversionError, match="'readout_dept' \\(did you mean 'readout_depth'\\?\\)"):
        convert_checkpoint(source, tmp_path / "out", config={"readout_dept": 0.5}, progress=False)
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"num_frames": frames * 2}))
    assert cli_main(["convert", str(source), str(tmp_path / "out"), "--config", str(partial), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "num_frames: checkpoint has" in err and "hidden_size" not in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_convert_and_errors(tmp_path, capsys):
    source = save_npz(tmp_path / "c.npz", original_backbone())
    assert cli_main(["convert", str(source), str(tmp_path / "out"), "--quiet"]) == 0
    assert "wrote FourDSModel" in capsys.readouterr().out
    assert cli_main(["convert", str(source), str(tmp_path / "out"), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli_main(["convert", str(tmp_path / "missing.npz"), str(tmp_path / "o2"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert cli_main(["convert", str(source), str(tmp_path / "o3"), "--preset", "Z", "--quiet"]) == 2
    assert "unknown preset 'Z'; presets: 4DS: S, B, L, H, G, e, j" in capsys.readouterr().err
    assert cli_main(["convert", str(source), str(tmp_path / "o4"), "--max-shard-size", "lots", "--quiet"]) == 2
    assert "cannot read size" in capsys.readouterr().err


def test_cli_list_prints_the_catalog(capsys):
    from fourd_hub.catalog import CATALOG

    assert cli_main(["list"]) == 0
    out = capsys.readouterr().out
    for name in CATALOG:
        assert name in out
    assert cli_main(["list", "--json", "--family", "fourds"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["name"] for row in rows} == {n for n, e in CATALOG.items() if e.family == "fourds"}


def test_console_script_is_installed():
    import shutil
    import subprocess

    exe = shutil.which("fourd-hub")
    assert exe, "the fourd-hub console script is not on PATH (pip install -e . installs it)"
    out = subprocess.run([exe, "list", "--family", "fourds"], capture_output=True, text=True, check=True).stdout
    assert "4ds-e" in out


def test_verification_detects_a_corrupted_write(tmp_path):
    from fourd_hub.conversion.convert import plan_conversion, verify_conversion

    source = save_npz(tmp_path / "c.npz", original_backbone())
    convert_checkpoint(source, tmp_path / "out", verify=False, progress=False)
    plan = plan_conversion(source)
    verify_conversion(tmp_path / "out", plan, torch.float32, progress=False)  # intact: passes
    weights = tmp_path / "out" / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-5] ^= 0xFF  # flip bits in the last tensor's data
    weights.write_bytes(bytes(raw))
    with pytest.raises(ConversionError, match="verification failed"):
        verify_conversion(tmp_path / "out", plan, torch.float32, progress=False)


def test_verification_reads_what_loading_reads_and_checks_the_recorded_sha256(tmp_path):
    """Intact tensors under a recorded sha256 that does not match (a header rewritten after the
    write) fail verification as a load would fail, not only a changed tensor."""
    from fourd_hub.conversion.convert import plan_conversion, verify_conversion
    from fourd_hub.weight_files import CHECKSUM_METADATA_KEY, read_safetensors_header

    source = save_npz(tmp_path / "c.npz", original_backbone())
    convert_checkpoint(source, tmp_path / "out", verify=False, progress=False)
    weights = tmp_path / "out" / "model.safetensors"
    recorded = read_safetensors_header(weights)[1][CHECKSUM_METADATA_KEY]
    raw = weights.read_bytes()
    weights.write_bytes(raw.replace(recorded.encode(), ("0" * 64).encode(), 1))
    with pytest.raises(ConversionError, match="verification failed: .*sha256"):
        verify_conversion(tmp_path / "out", plan_conversion(source), torch.float32, progress=False)


# ---------------------------------------------------------------------------------------------
# Clear errors (issue 14 item 4): a missing or mis-ranked array is a CheckpointError naming it


def _backbone_with_depth() -> dict[str, np.ndarray]:
    return {**original_backbone("params/layers_0/"), **original_depth_readout("params/layers_2/")}


@pytest.mark.parametrize(
    "key",
    [
        "params/layers_0/processor/layers_0/mlp/dense_in/kernel",  # read by the backbone's config inference
        "params/layers_0/processor/layers_0/attention/query/kernel",
        "params/layers_2/key_embedding/kernel",  # read by the readout's
        "params/layers_2/MLP_0/Dense_0/kernel",
        "params/layers_2/Dense_1/kernel",
    ],
)
def test_missing_array_read_by_config_inference_is_named(tmp_path, key):
    params = _backbone_with_depth()
    del params[key]
    with pytest.raises(CheckpointError, match="missing") as caught:
        convert_checkpoint(save_npz(tmp_path / "c.npz", params), tmp_path / "out", progress=False)
    assert key in str(caught.value)
    assert not (tmp_path / "out").exists() and no_partial_dirs(tmp_path)


def test_missing_array_of_the_mapping_names_the_original_key(tmp_path):
    params = original_backbone()
    del params["params/processor/layers_1/mlp/dense_out/bias"]
    with pytest.raises(ConversionError, match="missing") as caught:
        convert_checkpoint(save_npz(tmp_path / "c.npz", params), tmp_path / "out", progress=False)
    assert "'params/processor/layers_1/mlp/dense_out/bias'" in str(caught.value)


@pytest.mark.parametrize(
    "key, shape",
    [
        ("params/layers_2/key_embedding/kernel", (WIDTH, 16)),  # was "not enough values to unpack"
        ("params/layers_2/key_embedding/kernel", (WIDTH, 2, 8, 1)),  # was "too many values to unpack"
        ("params/layers_0/processor/layers_0/attention/query/kernel", (WIDTH,)),  # was an IndexError
        ("params/layers_0/processor/layers_0/mlp/dense_in/kernel", (WIDTH * MLP,)),
        ("params/layers_0/encoder/patch_embedding/Conv_0/kernel", (8, 8, 3, WIDTH)),
        ("params/layers_0/encoder/posenc/embeddings", (2, 12, WIDTH)),
        ("params/layers_2/temporal_posenc/embeddings", (4, WIDTH)),
    ],
)
def test_wrong_rank_names_the_tensor(tmp_path, key, shape):
    params = _backbone_with_depth()
    params[key] = np.zeros(shape, np.float32)
    with pytest.raises(CheckpointError, match=r"rank \d, expected rank \d") as caught:
        convert_checkpoint(save_npz(tmp_path / "c.npz", params), tmp_path / "out", progress=False)
    assert key in str(caught.value)


def test_empty_axis_is_refused_naming_the_array(tmp_path):
    params = original_backbone()
    params["params/processor/layers_0/attention/query/kernel"] = np.zeros((WIDTH, 0, 8), np.float32)
    with pytest.raises(CheckpointError, match=r"empty axis.*layers_0/attention/query/kernel"):
        convert_checkpoint(save_npz(tmp_path / "c.npz", params), tmp_path / "out", progress=False)


def test_every_deleted_or_reshaped_array_is_a_checkpoint_error():
    """Fuzz over the tiny file's keys (deleted, rank 1, one rank more): planning from the headers raises a
    CheckpointError naming the key, never a KeyError, IndexError or unpacking error."""
    from fourd_hub.conversion.convert import _plan_from_shapes

    shapes = {key: value.shape for key, value in _backbone_with_depth().items()}
    _plan_from_shapes(dict(shapes), None, None, None)  # intact: plans
    for key in shapes:
        for variant in (None, (3,), (*shapes[key], 2)):
            corrupted = dict(shapes)
            if variant is None:
                del corrupted[key]
            else:
                corrupted[key] = variant
            with pytest.raises(CheckpointError) as caught:
                _plan_from_shapes(corrupted, None, None, None)
            assert key in str(caught.value), (key, variant, str(caught.value))


def test_npz_checkpoint_missing_member_is_a_checkpoint_error(tmp_path):
    source = save_npz(tmp_path / "c.npz", original_backbone())
    with npz_module.NpzCheckpoint(source) as checkpoint:
        with pytest.raises(CheckpointError, match="'params/nope' is missing"):
            checkpoint.load("params/nope")
        with pytest.raises(CheckpointError, match="'params/nope' is missing"):
            checkpoint.info("params/nope")


def test_cli_missing_and_misranked_arrays_are_one_line(tmp_path, capsys):
    params = original_backbone()
    del params["params/processor/layers_0/mlp/dense_in/kernel"]
    assert cli_main(["convert", str(save_npz(tmp_path / "m.npz", params)), str(tmp_path / "o1"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fourd-hub convert: error: original array 'params/processor/layers_0/mlp/dense_in/kernel'")
    assert "missing" in err and "Traceback" not in err and err.count("\n") == 1
    params = original_backbone()
    params["params/encoder/posenc/embeddings"] = np.zeros((2, 12, WIDTH), np.float32)
    assert cli_main(["convert", str(save_npz(tmp_path / "r.npz", params)), str(tmp_path / "o2"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "'params/encoder/posenc/embeddings'" in err and "rank 3, expected rank 4" in err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists() and no_partial_dirs(tmp_path)


# ---------------------------------------------------------------------------------------------
# --max-shard-size


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1000000", 1_000_000), (1_000_000, 1_000_000), (np.int64(40), 40), ("2GB", 2 * 10**9), ("500MB", 500 * 10**6),
        ("40KB", 40_000), ("1.5GiB", 3 * 2**29), ("1.1GB", 1_100_000_000), (" 8 kib ", 8192), ("7B", 7),
    ],
)
def test_parse_size_accepts_bytes_and_units(text, expected):
    from fourd_hub.conversion.convert import parse_size

    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["0", 0, -5, "-1GB", "inf", "nan", float("inf"), float("nan"), "lots", "1e6", "1.5", "", "0.1B", True, "GB"])
def test_parse_size_refuses_with_the_accepted_forms(text):
    from fourd_hub.conversion.convert import parse_size

    with pytest.raises(ValueError, match=r"number of bytes \(1000000\).*KB, MB, GB.*KiB, MiB, GiB") as caught:
        parse_size(text)
    assert repr(text) in str(caught.value) or str(text) in str(caught.value)


def test_cli_max_shard_size_plain_bytes_and_refusals(tmp_path, capsys):
    source = save_npz(tmp_path / "c.npz", original_backbone())
    assert cli_main(["convert", str(source), str(tmp_path / "out"), "--max-shard-size", "40000", "--quiet"]) == 0
    capsys.readouterr()
    assert len(list((tmp_path / "out").glob("*.safetensors"))) > 1
    for bad in ("0", "-1", "inf", "nan", "lots"):
        assert cli_main(["convert", str(source), str(tmp_path / "o2"), f"--max-shard-size={bad}", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "--max-shard-size" in err and repr(bad) in err and "1000000" in err and "Traceback" not in err
    assert not (tmp_path / "o2").exists() and no_partial_dirs(tmp_path)


# ---------------------------------------------------------------------------------------------
# --overwrite onto what is not a converted directory: refused up front


@pytest.fixture
def no_reading(monkeypatch):
    """Fail the test if the source checkpoint is opened (the refusal must come first)."""

    def opened(self, path):
        raise AssertionError(f"the source {path} was read before the output was checked")

    monkeypatch.setattr(npz_module.NpzCheckpoint, "__init__", opened)


def test_overwrite_refuses_an_existing_file_before_reading(tmp_path, no_reading):
    target = tmp_path / "out"
    target.write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(NotADirectoryError, match=f"{target}.*existing file"):
            convert_checkpoint(tmp_path / "c.npz", target, overwrite=overwrite, progress=False)
    assert target.read_text() == "precious" and no_partial_dirs(tmp_path)
    with pytest.raises(NotADirectoryError, match=f"{target} is a file"):
        convert_checkpoint(tmp_path / "c.npz", target / "sub", overwrite=True, progress=False)


def test_overwrite_refuses_a_symlinked_directory_before_reading(tmp_path, no_reading):
    real = tmp_path / "real"
    real.mkdir()
    (real / "keep.txt").write_text("precious")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with pytest.raises(FileExistsError, match=f"{link}: it is a symbolic link"):
        convert_checkpoint(tmp_path / "c.npz", link, overwrite=True, progress=False)
    assert link.is_symlink() and (real / "keep.txt").read_text() == "precious" and no_partial_dirs(tmp_path)


def test_cli_overwrite_onto_a_file_or_link_is_one_line(tmp_path, capsys):
    source = save_npz(tmp_path / "c.npz", original_backbone())
    (tmp_path / "file").write_text("precious")
    (tmp_path / "link").symlink_to(tmp_path, target_is_directory=True)
    for name in ("file", "link"):
        assert cli_main(["convert", str(source), str(tmp_path / name), "--overwrite", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert str(tmp_path / name) in err and "Traceback" not in err and err.count("\n") == 1
    assert (tmp_path / "file").read_text() == "precious" and (tmp_path / "link").is_symlink() and no_partial_dirs(tmp_path)
