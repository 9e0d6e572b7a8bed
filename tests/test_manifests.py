"""Every released 4DS, MooG and RVM file and every 4DS size: the converter maps each original key
(taken from the manifests the original code produced) to a model parameter of the same shape, with
nothing left over, and the parameter counts equal the manifest's (= the paper's Table 1 for 4DS)."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from fourd_hub.catalog import CATALOG, entry_for_file
from fourd_hub.conversion.convert import _plan_from_shapes

pytestmark = pytest.mark.parity


def _base_for(manifest_name: str):
    """(catalog entry, preset) described by a manifest entry's name."""
    file_name = manifest_name.split(" ")[0]
    if file_name.endswith(".npz"):
        entry = entry_for_file(file_name)
        assert entry is not None, f"{file_name} is not in the catalog"
        return entry, None
    match = re.match(r"4DS-(\w+) backbone", manifest_name)
    assert match, f"unrecognised manifest entry {manifest_name!r}"
    return None, match.group(1)


def test_every_fourds_manifest_converts_exactly(reference):
    manifests = json.loads((reference / "manifests" / "fourds.json").read_text())
    assert manifests
    for manifest_name, keys in manifests.items():
        shapes = {key: tuple(shape) for key, shape in keys.items()}
        entry, preset = _base_for(manifest_name)
        _, config, model_class, mapped = _plan_from_shapes(shapes, entry, preset, None)
        # Each original key used once, each model parameter filled once (checked inside), and:
        assert sorted(m.source for m in mapped) == sorted(shapes), manifest_name
        with torch.device("meta"):
            model = model_class(config)
        # A standalone head's directory holds its task model's head alone.
        counted = model.head if getattr(config, "use_pretrained_backbone", False) else model
        model_count = sum(p.numel() for p in counted.parameters())
        manifest_count = sum(math.prod(shape) for shape in shapes.values())
        assert model_count == manifest_count, f"{manifest_name}: {model_count} != {manifest_count}"
        if entry is not None:
            assert entry.num_parameters == manifest_count, entry.name
            assert model_class.__name__ == entry.architecture
        else:
            assert CATALOG[f"4ds-{preset.lower()}"].num_parameters == manifest_count
            assert config.preset == preset


def test_every_moog_manifest_converts_exactly(reference):
    """Backbone with decoder (MooGModel keys), the demo's backbone view (pretrained_model/, no
    decoder) and both heads (standalone): every key maps, shapes equal, counts equal."""
    manifests = json.loads((reference / "manifests" / "moog.json").read_text())
    assert len(manifests) >= 4
    seen_decoder = seen_no_decoder = 0
    for manifest_name, keys in manifests.items():
        shapes = {key: tuple(shape) for key, shape in keys.items()}
        file_name = manifest_name.split(" ")[0]
        entry = entry_for_file(file_name) if file_name.endswith(".npz") else CATALOG["moog-ego4d"]
        _, config, model_class, mapped = _plan_from_shapes(shapes, entry, None, None)
        assert sorted(m.source for m in mapped) == sorted(shapes), manifest_name
        with torch.device("meta"):
            model = model_class(config)
        # A standalone head's directory holds its task model's head alone.
        counted = model.head if getattr(config, "use_pretrained_backbone", False) else model
        model_count = sum(p.numel() for p in counted.parameters())
        manifest_count = sum(math.prod(shape) for shape in shapes.values())
        assert model_count == manifest_count, f"{manifest_name}: {model_count} != {manifest_count}"
        if model_class.__name__ == "MooGModel":
            if config.decoder is None:
                seen_no_decoder += 1
                assert model.decoder is None
            else:
                seen_decoder += 1
                assert entry.num_parameters == manifest_count  # the released file (~140 MB) is the full set
        else:
            assert model_class.__name__ == entry.architecture and config.use_pretrained_backbone
            assert config.backbone == entry.base_model
            assert entry.num_parameters == manifest_count, entry.name
            assert config.readout["task"] == ("points" if "point" in entry.name else "boxes")
    assert seen_decoder == 1 and seen_no_decoder == 1


def test_every_rvm_manifest_converts_exactly(reference):
    """The four released RVM files (encoder, core and decoder; S/B/H sizes inferred, rvm.md section 1):
    every key maps, shapes equal, counts equal the catalog's; the same with a leading ``params/``
    and without the decoder keys (then: no decoder, the encoder + core count)."""
    manifests = json.loads((reference / "manifests" / "rvm.json").read_text())
    assert len(manifests) == 4
    decoder_parts = ("mask_token", "decoder/", "decoder_embedder/", "delta_embedder/", "detokenizer/")
    seen = set()
    for manifest_name, keys in manifests.items():
        shapes = {key: tuple(shape) for key, shape in keys.items()}
        entry = entry_for_file(manifest_name.split(" ")[0])
        assert entry is not None and entry.family == "rvm", manifest_name
        variants = {
            "as released": shapes,
            "params/": {f"params/{key}": shape for key, shape in shapes.items()},
            "no decoder": {key: shape for key, shape in shapes.items() if not key.startswith(decoder_parts)},
        }
        for label, variant in variants.items():
            _, config, model_class, mapped = _plan_from_shapes(variant, entry, None, None)
            assert sorted(m.source for m in mapped) == sorted(variant), f"{manifest_name} ({label})"
            assert model_class.__name__ == entry.architecture == "RVMModel"
            with torch.device("meta"):
                model = model_class(config)
            model_count = sum(p.numel() for p in model.parameters())
            assert model_count == sum(math.prod(shape) for shape in variant.values()), f"{manifest_name} ({label})"
            assert (model.decoder is None) == (label == "no decoder") == (config.decoder is None)
            if label == "as released":
                assert entry.num_parameters == model_count, entry.name
                assert config.preset == entry.preset
                seen.add(entry.name)
    assert seen == {"rvm-s", "rvm-b", "rvm-l", "rvm-h"}
    # The README's 117M for RVM-B is not its file's count (rvm.md section 1): 160.3M in all, 125.8M without the decoder.
    assert CATALOG["rvm-b"].num_parameters == 160_270_848


def test_configs_by_name_describe_the_released_files_without_reading_them(reference, tmp_path, monkeypatch):
    """``<Config>.from_pretrained(name)`` downloads nothing and reads no weights (issue 15): from the
    catalog alone it describes the model the released file converts to, tensor for tensor."""
    from fourd_hub.hub import download
    from fourd_hub.registry import get_family

    def refuse(*args, **kwargs):
        raise AssertionError("a config by name must not download anything")

    monkeypatch.setattr(download, "download_file", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    checked = set()
    for family in ("fourds", "moog", "rvm"):
        for manifest_name, keys in json.loads((reference / "manifests" / f"{family}.json").read_text()).items():
            file_name = manifest_name.split(" ")[0]
            if "no decoder" in manifest_name:
                continue  # the demo's view of the backbone file; the file itself holds the decoder
            entry = entry_for_file(file_name) if file_name.endswith(".npz") else CATALOG["moog-ego4d"] if family == "moog" else None
            if entry is None:
                continue  # sizes without a released file
            shapes = {key: tuple(shape) for key, shape in keys.items()}
            _, planned, model_class, _ = _plan_from_shapes(shapes, entry, None, None)
            config = get_family(entry.family).load("config_class").from_pretrained(entry.name, cache_dir=tmp_path / "empty-cache")
            assert config.architectures == [entry.architecture]
            assert bool(config.use_pretrained_backbone) == bool(planned.use_pretrained_backbone), entry.name
            with torch.device("meta"):
                expected = {k: tuple(v.shape) for k, v in model_class(planned).state_dict().items()}
                got = {k: tuple(v.shape) for k, v in model_class(config).state_dict().items()}
            assert got == expected, entry.name
            checked.add(entry.name)
    assert {name for name, entry in CATALOG.items() if entry.has_weights} <= checked
