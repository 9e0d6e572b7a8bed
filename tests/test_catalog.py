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
