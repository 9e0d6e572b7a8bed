"""The catalog: the names of architecture.md, consistent presets and counts, clear errors."""

from __future__ import annotations

import pytest
import torch

from fourd_hub import FourDSConfig
from fourd_hub.catalog import CATALOG, ORIGINAL_URL_BASE, entry_for_file, get_entry
from fourd_hub import FOURDS_SIZES, get_family

RELEASED = {  # architecture.md section 1: name -> original file
    "4ds-b-dist-e": "scaling4d_dist_b.npz",
    "4ds-e": "scaling4d_e.npz",
    "4ds-b-dist-e-scannet-depth": "scaling4d_dist_b_depth.npz",
    "moog-ego4d": "moog_ego4d_backbone_ckpt_164335139.npz",
    "moog-ego4d-point-tracking": "moog_ego4d_point_track_head_ckpt_164335139.npz",
    "moog-ego4d-box-tracking": "moog_ego4d_box_track_head_ckpt_164335139.npz",
}


def test_released_files_are_listed_with_their_urls():
    for name, file_name in RELEASED.items():
        entry = get_entry(name)
        assert entry.original_file == file_name and entry.has_weights
        assert entry.original_url == ORIGINAL_URL_BASE + file_name
        assert entry_for_file(file_name) is entry
        assert entry.hub_repo_id("someone") == f"someone/{name}"


def test_every_4ds_size_has_a_config_entry():
    for size in FOURDS_SIZES:
        entry = get_entry(f"4ds-{size.lower()}")
        assert entry.family == "fourds" and entry.preset == size


def test_fourds_entries_build_models_with_their_parameter_count():
    classes = get_family("fourds").model_classes()
    for entry in CATALOG.values():
        if entry.family != "fourds":
            continue
        config = FourDSConfig.from_preset(entry.preset, **entry.config_overrides)
        assert [config.num_frames, *config.image_size] == [entry.input_spec.num_frames, *entry.input_spec.image_size]
        with torch.device("meta"):
            model = classes[entry.architecture](config)
        assert sum(p.numel() for p in model.parameters()) == entry.num_parameters, entry.name


def test_unknown_name_lists_known_names():
    with pytest.raises(KeyError, match="4ds-e"):
        get_entry("4ds-zz")
    assert get_entry("4DS-E") is get_entry("4ds-e")


def test_released_files_are_not_pinned_and_say_so():
    """Google DeepMind publishes no sha256: every released entry is "not pinned", in one phrase."""
    import dataclasses

    for entry in CATALOG.values():
        if entry.has_weights:
            assert not entry.checksum_pinned and entry.sha256 is None, entry.name
            assert entry.checksum_note == (
                "checksum: not pinned (no sha256 published for the original file; checked by size floor and strict conversion)"
            )
    pinned = dataclasses.replace(CATALOG["moog-ego4d"], sha256="CD" * 32)
    assert pinned.checksum_pinned and f"sha256 `{'cd' * 32}` pinned" in pinned.checksum_note
