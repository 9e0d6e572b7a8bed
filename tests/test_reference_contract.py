"""The parity tests' contract on FOURD_HUB_REFERENCE_DIR: set and missing fails, unset and absent skips."""

from __future__ import annotations

import pytest

import conftest


def test_set_but_missing_directory_fails(monkeypatch, tmp_path):
    monkeypatch.setenv("FOURD_HUB_REFERENCE_DIR", str(tmp_path / "missing"))
    with pytest.raises(pytest.fail.Exception, match="is set but is not a directory"):
        conftest.reference_dir()


def test_unset_and_absent_default_skips(monkeypatch, tmp_path):
    monkeypatch.delenv("FOURD_HUB_REFERENCE_DIR", raising=False)
    monkeypatch.setattr(conftest, "DEFAULT_REFERENCE_DIR", tmp_path / "missing")
    with pytest.raises(pytest.skip.Exception, match="no reference outputs"):
        conftest.reference_dir()


def test_set_directory_is_used(monkeypatch, tmp_path):
    monkeypatch.setenv("FOURD_HUB_REFERENCE_DIR", str(tmp_path))
    assert conftest.reference_dir() == tmp_path
