"""Loading a model directory is as strict as converting a file (issue 14, part 1).

Every case writes a tiny model, damages one thing, and asserts the error type, that the message
names the damaged tensor or file, and (where it matters) that nothing was built for minutes.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import fourd_hub
from fourd_hub import FourDSForDepthEstimation, FourDSForVideoClassification, FourDSModel
from fourd_hub.models.fourds.configuration_fourds import debug_config
from fourd_hub.weight_files import WeightsError, find_weights, read_safetensors_header

KEY = "layers.0.attention.q_proj.weight"


@pytest.fixture
def backbone_dir(tmp_path) -> Path:
    torch.manual_seed(0)
    FourDSModel(debug_config()).save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def _first_weight(directory: Path) -> str:
    assert KEY in load_file(directory / "model.safetensors")
    return KEY


def _rewrite(directory: Path, change) -> None:
    tensors = load_file(directory / "model.safetensors")
    change(tensors)
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})


def _set_config(directory: Path, **fields) -> None:
    path = directory / "config.json"
    values = json.loads(path.read_text())
    values.update(fields)
    path.write_text(json.dumps(values))


def test_a_pickle_is_refused_with_how_to_convert_it(backbone_dir):
    state = load_file(backbone_dir / "model.safetensors")
    (backbone_dir / "model.safetensors").unlink()
    torch.save(state, backbone_dir / "pytorch_model.bin")
    with pytest.raises(WeightsError, match=r"pytorch_model\.bin.*never loads pickles.*save_file"):
        FourDSModel.from_pretrained(backbone_dir)
    with pytest.raises(ValueError, match="safetensors weights only"):
        FourDSModel.from_pretrained(backbone_dir, use_safetensors=False)


def test_missing_unexpected_shape_and_dtype_name_the_tensor(backbone_dir, tmp_path):
    key = _first_weight(backbone_dir)
    cases = {
        "missing": (lambda t: t.pop(key), rf"missing weights: {key}"),
        "shape": (lambda t: t.__setitem__(key, torch.zeros(3, 5)), rf"shape mismatches: {key} is \[3, 5\]"),
        "int32": (lambda t: t.__setitem__(key, t[key].to(torch.int32)), rf"wrong dtypes: {key} is stored as I32"),
        "extra": (lambda t: t.__setitem__("encoder.layer.9.extra", torch.zeros(2)), r"unexpected weights: encoder\.layer\.9\.extra"),
    }
    for name, (change, message) in cases.items():
        directory = tmp_path / name
        shutil.copytree(backbone_dir, directory)
        _rewrite(directory, change)
        with pytest.raises(WeightsError, match=message):
            FourDSModel.from_pretrained(directory)


def test_fewer_blocks_in_the_config_than_in_the_weights(backbone_dir):
    _set_config(backbone_dir, num_hidden_layers=2)
    with pytest.raises(WeightsError, match=r"unexpected weights: .*\.2\."):
        FourDSModel.from_pretrained(backbone_dir)


def test_nan_in_a_weight_is_named(backbone_dir):
    key = _first_weight(backbone_dir)

    def poison(tensors):
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[3] = float("nan")

    _rewrite(backbone_dir, poison)
    with pytest.raises(WeightsError, match=rf"{key} holds NaN or inf"):
        fourd_hub.from_pretrained(backbone_dir)


def test_absurd_sizes_are_refused_before_anything_is_built(backbone_dir, monkeypatch):
    from fourd_hub.models.fourds import modeling_fourds

    built = []
    original = modeling_fourds.FourDSBlock.__init__

    def counting_init(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(modeling_fourds.FourDSBlock, "__init__", counting_init)
    _set_config(backbone_dir, num_hidden_layers=10**6)
    with pytest.raises(WeightsError, match="more than .* parameter tensors"):
        FourDSModel.from_pretrained(backbone_dir)
    assert len(built) < 1000  # stopped at the parameter budget, not after a million blocks
    _set_config(backbone_dir, num_hidden_layers=3, hidden_size=10**9, num_attention_heads=1)
    with pytest.raises(WeightsError, match="shape mismatches"):  # built on the meta device: no allocation
        FourDSModel.from_pretrained(backbone_dir)


@pytest.mark.parametrize("content", [b"", b"\x03\x00", b"garbage that is not safetensors at all", b"\xff" * 8 + b"{}"])
def test_unreadable_safetensors_name_the_file(backbone_dir, content):
    (backbone_dir / "model.safetensors").write_bytes(content)
    with pytest.raises(WeightsError, match="model.safetensors"):
        FourDSModel.from_pretrained(backbone_dir)


def test_truncated_safetensors_at_any_offset(backbone_dir):
    data = (backbone_dir / "model.safetensors").read_bytes()
    for cut in (9, 100, len(data) // 2, len(data) - 1):
        (backbone_dir / "model.safetensors").write_bytes(data[:cut])
        with pytest.raises(WeightsError, match="model.safetensors.*(truncated|not JSON|not a safetensors)"):
            find_weights(backbone_dir)


@pytest.mark.parametrize("content", ["[1, 2]", '"fourds"', "{not json"])
def test_config_json_that_is_not_an_object(backbone_dir, content):
    (backbone_dir / "config.json").write_text(content)
    with pytest.raises(ValueError, match="config.json"):
        FourDSModel.from_pretrained(backbone_dir)


def _shard(directory: Path) -> None:
    """Turn the single file into two shards plus an index, as transformers writes them."""
    tensors = load_file(directory / "model.safetensors")
    (directory / "model.safetensors").unlink()
    names = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": names[: len(names) // 2], "model-00002-of-00002.safetensors": names[len(names) // 2 :]}
    for file, keys in halves.items():
        save_file({k: tensors[k] for k in keys}, directory / file, metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: file for file, keys in halves.items() for k in keys}}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))


def test_sharded_directories_load_and_their_index_cannot_leave_the_directory(backbone_dir, tmp_path):
    reference = FourDSModel.from_pretrained(backbone_dir).state_dict()
    _shard(backbone_dir)
    loaded = FourDSModel.from_pretrained(backbone_dir).state_dict()
    assert all(torch.equal(reference[k], loaded[k]) for k in reference)
    index_path = backbone_dir / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    outside = tmp_path / "x.safetensors"
    shutil.copy(backbone_dir / "model-00002-of-00002.safetensors", outside)
    index["weight_map"] = {k: ("../x.safetensors" if v.startswith("model-00002") else v) for k, v in index["weight_map"].items()}
    index_path.write_text(json.dumps(index))
    with pytest.raises(WeightsError, match=r"'\.\./x\.safetensors'.*not a plain file name"):
        FourDSModel.from_pretrained(backbone_dir)
    # A shard that is a symlink to a file outside the directory is refused too.
    index["weight_map"] = {k: ("model-00002-of-00002.safetensors" if v == "../x.safetensors" else v) for k, v in index["weight_map"].items()}
    index_path.write_text(json.dumps(index))
    (backbone_dir / "model-00002-of-00002.safetensors").unlink()
    os.symlink(outside, backbone_dir / "model-00002-of-00002.safetensors")
    with pytest.raises(WeightsError, match="outside the model directory"):
        FourDSModel.from_pretrained(backbone_dir)


def test_converted_weights_carry_a_checksum_and_a_flipped_byte_is_caught(models, tmp_path):
    directory = tmp_path / "converted"
    shutil.copytree(models["fourds-depth"], directory)
    weights = find_weights(directory)
    assert set(weights.checksums) == set(weights.files)  # the converter recorded every file's digest
    FourDSForDepthEstimation.from_pretrained(directory)  # intact: loads
    path = weights.files[-1]
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # one bit of the last tensor's data
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=f"{path.name} is corrupted"):
        FourDSForDepthEstimation.from_pretrained(directory)


def test_header_offsets_must_tile_the_data(backbone_dir):
    path = backbone_dir / "model.safetensors"
    tensors, _ = read_safetensors_header(path)
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    name = next(iter(k for k in header if k != "__metadata__"))
    header[name]["data_offsets"][1] += 4  # overlaps the next tensor
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + size :])
    with pytest.raises(WeightsError, match=f"tensor '{name}'"):
        find_weights(backbone_dir)


def test_task_models_on_other_checkpoints_follow_the_prefix_rule(backbone_dir, models):
    reference = FourDSModel.from_pretrained(backbone_dir).state_dict()
    depth = FourDSForDepthEstimation.from_pretrained(backbone_dir)  # a fresh head on a backbone checkpoint
    assert all(torch.equal(depth.fourds.state_dict()[k], reference[k]) for k in reference)
    backbone = FourDSModel.from_pretrained(models["fourds-depth"])  # the backbone of a task checkpoint
    task_state = load_file(models["fourds-depth"] / "model.safetensors")
    assert all(torch.equal(v, task_state["fourds." + k]) for k, v in backbone.state_dict().items())


def test_head_directories_are_checked_as_strictly(reference, tmp_path):
    from fourd_hub.conversion import convert_checkpoint
    from fourd_hub.modeling_utils import read_head_directory

    head = tmp_path / "head"
    convert_checkpoint(reference / "moog_tiny_points_checkpoint.npz", head, progress=False)
    file = head / "model.safetensors"
    tensors = load_file(file)
    key = sorted(tensors)[0]
    for change, message in (
        (lambda t: t.__setitem__(key, t[key].to(torch.int32)), rf"{key} \(I32\)"),
        (lambda t: t.__setitem__(key, torch.full_like(t[key], float("inf"))), rf"{key} holds NaN or inf"),
        (lambda t: t.__setitem__("backbone.w", torch.zeros(1)), "outside the head"),
    ):
        changed = dict(tensors)
        change(changed)
        save_file(changed, file, metadata={"format": "pt"})
        with pytest.raises(WeightsError, match=message):
            read_head_directory(head)


# ----------------------------------------------------------------------------------------------
# Loading in bounded memory: plain reads, each tensor cast as it arrives (issue 18).


def _state(model) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


@pytest.fixture
def reads(monkeypatch):
    """The calls of the plain-read loader (fourd_hub.modeling_utils.read_state)."""
    from fourd_hub import modeling_utils

    calls = []
    original = modeling_utils.read_state

    def counting(*args, **kwargs):
        calls.append(args[0].directory)
        return original(*args, **kwargs)

    monkeypatch.setattr(modeling_utils, "read_state", counting)
    return calls


@pytest.mark.parametrize("sharded", [False, True])
def test_plain_reads_load_what_transformers_loads_bit_for_bit(backbone_dir, sharded, monkeypatch, reads):
    from fourd_hub import modeling_utils

    if sharded:
        _shard(backbone_dir)  # two files: read in parallel threads
    saved = {}
    for file in backbone_dir.glob("*.safetensors"):
        saved.update(load_file(file))
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        loaded = {}
        for mode in ("always", "never"):
            monkeypatch.setattr(modeling_utils, "_PLAIN_READS", mode)
            loaded[mode] = _state(FourDSModel.from_pretrained(backbone_dir, dtype=dtype))
        plain, mapped = loaded["always"], loaded["never"]
        assert plain.keys() == mapped.keys() == saved.keys()
        for key, tensor in saved.items():
            assert plain[key].dtype == mapped[key].dtype == dtype, key
            assert torch.equal(plain[key], mapped[key]), key
            # torch's float32 -> dtype rounding, applied to what the file holds.
            assert torch.equal(plain[key], tensor.to(dtype)), key
    assert len(reads) == 3  # once per dtype with "always", never with "never"


def test_a_load_that_casts_reads_plainly_and_never_maps_the_file(backbone_dir, monkeypatch, reads):
    import safetensors
    import transformers.modeling_utils

    def no_memory_map(*args, **kwargs):
        raise AssertionError("the safetensors file was memory-mapped")

    with monkeypatch.context() as patched:
        patched.setattr(transformers.modeling_utils, "safe_open", no_memory_map)
        patched.setattr(safetensors, "safe_open", no_memory_map)
        model = FourDSModel.from_pretrained(backbone_dir, dtype=torch.bfloat16)
    assert reads == [backbone_dir] and model.dtype == torch.bfloat16
    FourDSModel.from_pretrained(backbone_dir)  # no cast: transformers' own (memory-mapped, zero-copy) reading
    assert reads == [backbone_dir]


def test_fresh_parts_and_unused_weights_keep_transformers_rules_in_bfloat16(backbone_dir, models, reads):
    from fourd_hub import MooGForPointTracking, MooGModel
    from fourd_hub.models.moog.configuration_moog import debug_config as moog_debug_config

    # A task model on a backbone checkpoint: its head is fresh (initialised, not meta), in bfloat16.
    saved = load_file(backbone_dir / "model.safetensors")
    depth = FourDSForDepthEstimation.from_pretrained(backbone_dir, dtype=torch.bfloat16)
    state = depth.state_dict()
    assert all(torch.equal(state["fourds." + key], tensor.to(torch.bfloat16)) for key, tensor in saved.items())
    head = {key: value for key, value in state.items() if key.startswith("head.")}
    assert head and all(v.dtype == torch.bfloat16 and v.device.type == "cpu" and bool(torch.isfinite(v).all()) for v in head.values())
    assert any(bool(v.abs().sum() > 0) for v in head.values())  # initialised, not left empty
    # The backbone of a task checkpoint: the head's weights are hashed, not loaded.
    task_file = load_file(models["fourds-depth"] / "model.safetensors")
    backbone = FourDSModel.from_pretrained(models["fourds-depth"], dtype=torch.bfloat16)
    assert all(torch.equal(v, task_file["fourds." + k].to(torch.bfloat16)) for k, v in backbone.state_dict().items())
    # MooG's base class on a tracking checkpoint (whose backbone has no decoder): a fresh decoder.
    torch.manual_seed(0)
    MooGForPointTracking(moog_debug_config()).save_pretrained(backbone_dir.parent / "points")
    points_file = load_file(backbone_dir.parent / "points" / "model.safetensors")
    moog = MooGModel.from_pretrained(backbone_dir.parent / "points", dtype=torch.bfloat16)
    decoder = {k: v for k, v in moog.state_dict().items() if k.startswith("decoder.")}
    assert decoder and all(v.dtype == torch.bfloat16 and v.device.type == "cpu" for v in decoder.values())
    rest = {k: v for k, v in moog.state_dict().items() if not k.startswith("decoder.")}
    assert all(torch.equal(v, points_file["moog." + k].to(torch.bfloat16)) for k, v in rest.items())
    assert len(reads) == 3


def test_a_flipped_byte_is_caught_while_reading_and_checks_still_run_after_the_cast(models, tmp_path, monkeypatch, reads):
    directory = tmp_path / "converted"
    shutil.copytree(models["fourds-depth"], directory)
    path = find_weights(directory).files[-1]
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # one bit of the last tensor's data
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=f"{path.name} is corrupted"):
        FourDSForDepthEstimation.from_pretrained(directory, dtype=torch.bfloat16)
    assert reads == [directory]  # caught by the hash computed while reading
    monkeypatch.setenv("FOURD_HUB_VERIFY_WEIGHTS", "0")
    assert FourDSForDepthEstimation.from_pretrained(directory, dtype=torch.bfloat16).dtype == torch.bfloat16


@pytest.mark.parametrize(("value", "dtype"), [(float("nan"), torch.bfloat16), (float("-inf"), torch.bfloat16), (1e6, torch.float16)])
def test_nan_inf_and_overflow_of_the_cast_are_refused(backbone_dir, value, dtype):
    key = _first_weight(backbone_dir)

    def poison(tensors):
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[5] = value  # 1e6 is finite in float32, inf in float16 (max 65504)

    _rewrite(backbone_dir, poison)
    with pytest.raises(WeightsError, match=rf"{key} holds NaN or inf"):
        FourDSModel.from_pretrained(backbone_dir, dtype=dtype)


def test_read_tensor_data_gives_every_tensor_its_bytes_in_file_order(tmp_path):
    from fourd_hub.weight_files import read_tensor_data

    tensors = {
        "a": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "b": torch.tensor([1.5, -2.25], dtype=torch.bfloat16),
        "c": torch.arange(40, dtype=torch.int64),  # larger than a: the scratch buffer grows
        "d": torch.zeros(0, 4),
        "e": torch.tensor(7.0),
    }
    save_file(tensors, tmp_path / "model.safetensors")
    weights = find_weights(tmp_path)
    got, order = {}, []

    def consume(header, data):
        order.append(header.name)
        got[header.name] = bytes(data)  # the scratch buffer is reused: copy

    read_tensor_data(weights, consume, wanted=lambda header: header.name != "b")
    assert got == {name: t.reshape(-1).view(torch.uint8).numpy().tobytes() for name, t in tensors.items() if name != "b"}
    assert order == sorted(order, key=lambda name: weights.tensors[name].offsets[0])
    assert weights.tensors["c"].nbytes == 40 * 8 and weights.tensors["d"].nbytes == 0
    # A file cut short after its header was checked: an error naming it, not a short tensor.
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[:-4])
    with pytest.raises(WeightsError, match=r"model\.safetensors ended at byte"):
        read_tensor_data(weights, consume)


def test_loading_for_another_task_silences_only_its_own_load_report(tmp_path):
    """The backbone's load report (the other task's head: "not used") is dropped for that load only:
    transformers' verbosity is untouched, and a load outside it still reports."""
    import logging as pylogging

    from transformers.utils import logging as hf_logging

    torch.manual_seed(0)
    FourDSForDepthEstimation(debug_config()).save_pretrained(tmp_path / "depth")
    records: list[str] = []

    class Keep(pylogging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    reporter = pylogging.getLogger("transformers.modeling_utils")
    handler = Keep(level=pylogging.WARNING)
    reporter.addHandler(handler)
    verbosity = hf_logging.get_verbosity()
    try:
        FourDSForVideoClassification.from_pretrained(tmp_path / "depth")  # the depth head is never read
        assert hf_logging.get_verbosity() == verbosity
        assert not [r for r in records if "depth" in r.lower() or "UNEXPECTED" in r], records
        FourDSModel.from_pretrained(tmp_path / "depth")  # the plain prefix rule: the head is reported unused
        assert any("head" in r for r in records), records
    finally:
        reporter.removeHandler(handler)


@pytest.mark.parametrize("family", [spec.name for spec in fourd_hub.registry.families()])
def test_a_task_model_on_another_tasks_directory_is_built_once_in_the_loaded_dtype(family, tmp_path, monkeypatch):
    """Loading task B from a directory saved for task A builds B on the meta device: its backbone
    is the loaded one's tensors (no second copy, no float32 detour), its head fresh and finite."""
    spec = fourd_hub.registry.get_family(family)
    config = spec.load("debug_config")()
    saved_task, loaded_task = "box-tracking", "depth-estimation"  # heads every family has
    torch.manual_seed(0)
    spec.task_model(saved_task)(copy.deepcopy(config)).save_pretrained(tmp_path / saved_task)
    saved = load_file(tmp_path / saved_task / "model.safetensors")
    built: list[tuple[str, str]] = []
    original_init = torch.nn.Module.__init__

    def record_device(module, *args, **kwargs):  # where each module's tensors are first created
        original_init(module, *args, **kwargs)
        built.append((type(module).__name__, str(torch.empty(0).device)))

    monkeypatch.setattr(torch.nn.Module, "__init__", record_device)
    model = spec.task_model(loaded_task).from_pretrained(tmp_path / saved_task, dtype=torch.bfloat16)
    monkeypatch.undo()
    prefix = model.base_model_prefix + "."
    assert built and built[-1][1] == "meta"  # the task model itself is built on meta, after the backbone
    tensors = dict(model.state_dict())
    assert all(t.device.type == "cpu" and t.dtype in (torch.bfloat16,) for t in tensors.values() if t.is_floating_point())
    backbone = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    assert backbone and all(torch.equal(v, saved[prefix + k].to(v.dtype)) for k, v in backbone.items())
    head = {k: v for k, v in tensors.items() if not k.startswith(prefix)}
    assert head and all(bool(torch.isfinite(v.float()).all()) for v in head.values())


def test_a_fresh_weight_the_initialiser_leaves_unset_is_refused(tmp_path, monkeypatch):
    torch.manual_seed(0)
    FourDSForDepthEstimation(debug_config()).save_pretrained(tmp_path / "depth")
    monkeypatch.setattr(FourDSForVideoClassification, "_init_weights", lambda self, module: None)
    with pytest.raises(RuntimeError, match="left .* unset"):
        FourDSForVideoClassification.from_pretrained(tmp_path / "depth")


def test_another_tasks_directory_with_offloaded_weights_is_refused_not_reinitialised(tmp_path):
    torch.manual_seed(0)
    FourDSForDepthEstimation(debug_config()).save_pretrained(tmp_path / "depth")
    with pytest.raises(ValueError, match="cannot keep offloaded weights .*meta device"):
        FourDSForVideoClassification.from_pretrained(
            tmp_path / "depth", device_map={"embeddings": "cpu", "layers": "disk"}, offload_folder=str(tmp_path / "offload")
        )
    assert not FourDSForVideoClassification.from_pretrained(tmp_path / "depth").training  # eval mode, as from_pretrained gives
