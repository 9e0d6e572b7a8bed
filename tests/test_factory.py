"""timm-style list_models / create_model, torch.hub entry points, and Hub ids of catalog names (issue 15, items 7 and 10)."""

from __future__ import annotations

import pytest
import torch

import fourd_hub
from conftest import REPO_ROOT
from fourd_hub import FourDSModel, MooGForPointTracking, create_model, list_models
from fourd_hub.catalog import CATALOG
from fourd_hub.hub.settings import catalog_entry_for


def test_list_models_filters_like_timm():
    assert list_models() == sorted(CATALOG)
    assert list_models("4DS-*", pretrained=True) == ["4ds-b-dist-e", "4ds-b-dist-e-scannet-depth", "4ds-e"]
    assert list_models(family="moog") == ["moog-ego4d", "moog-ego4d-box-tracking", "moog-ego4d-point-tracking"]
    assert list_models(task="point-tracking") == ["moog-ego4d-point-tracking"] == list_models(task="points")
    assert list_models("nothing-*") == []
    with pytest.raises(KeyError):
        list_models(family="banana")


def test_create_model_builds_what_the_catalog_describes():
    model = create_model("4ds-s", num_hidden_layers=1)
    assert isinstance(model, FourDSModel) and model.config.hidden_size == 384 and model.config.num_hidden_layers == 1
    head = create_model("moog-ego4d-point-tracking", num_tokens=8)
    # A fresh model holds all of its weights, even for an entry whose released file is a head alone.
    assert isinstance(head, MooGForPointTracking) and not head.config.use_pretrained_backbone and head.config.readout["num_frames"] == 16
    with pytest.raises(ValueError, match="did you mean 4ds-e"):
        create_model("4ds-ee")
    with pytest.raises(ValueError, match="no released weights.*pretrained=False"):
        create_model("4ds-g", pretrained=True)


def test_torch_hub_loads_every_catalog_name_from_this_repository():
    import importlib.util

    # Loaded from its file, as torch.hub loads it (the repository root need not be on sys.path).
    spec = importlib.util.spec_from_file_location("hubconf", REPO_ROOT / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    assert all(callable(getattr(hubconf, name)) for name in CATALOG)
    model = torch.hub.load(str(REPO_ROOT), "4ds-s", source="local", num_hidden_layers=1, trust_repo=True)
    assert isinstance(model, FourDSModel) and model.config.num_hidden_layers == 1


def test_the_hub_id_of_a_catalog_name_is_that_name(monkeypatch):
    assert catalog_entry_for("fourd-hub/4ds-e") is CATALOG["4ds-e"]
    monkeypatch.setenv("FOURD_HUB_ORG", "my-mirror")
    assert catalog_entry_for("my-mirror/moog-ego4d") is CATALOG["moog-ego4d"]
    assert catalog_entry_for("someone-else/4ds-e") is None
    assert fourd_hub.FourDSConfig.from_pretrained("fourd-hub/4ds-s").hidden_size == 384
