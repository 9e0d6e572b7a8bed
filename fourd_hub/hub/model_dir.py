"""Reading a model directory's ``config.json`` strictly: which family, which class it was saved as (torch-free)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..registry import FamilySpec, families, get_family

__all__ = ["OLD_HEAD_CONFIG_NAME", "read_model_config"]

#: What converted standalone heads were before the family layout (refused, with a hint).
OLD_HEAD_CONFIG_NAME = "readout_head.json"


def read_model_config(directory: str | os.PathLike) -> tuple[dict[str, Any], FamilySpec, str]:
    """``config.json`` of a model directory: (values, family, saved architecture name).

    Raises:
        FileNotFoundError: no ``config.json`` (an old standalone-head directory: how to re-convert).
        ValueError: not a JSON object, or not a fourd_hub family's ``model_type``.
    """
    directory = Path(directory)
    path = directory / "config.json"
    if not path.is_file():
        if (directory / OLD_HEAD_CONFIG_NAME).is_file():
            raise FileNotFoundError(
                f"{directory} is a standalone readout head converted by an older fourd_hub ({OLD_HEAD_CONFIG_NAME}); "
                "heads are now ordinary model directories: re-convert the original head file with "
                "`fourd-hub convert HEAD.npz OUT --name <catalog name>` (or `fourd-hub download <name> --force`)"
            )
        raise FileNotFoundError(f"{directory} has no config.json: not a saved fourd_hub model")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); re-convert or re-download the model") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(values).__name__}; re-convert or re-download the model")
    model_type = values.get("model_type")
    try:
        family = get_family(model_type)
    except KeyError:
        known = ", ".join(spec.name for spec in families())
        raise ValueError(f"{directory} holds a {model_type!r} model; fourd_hub loads {known} models") from None
    architectures = values.get("architectures")
    if not isinstance(architectures, list) or len(architectures) != 1 or not isinstance(architectures[0], str):
        # The class decides which weights the directory must hold: without it a task checkpoint
        # would silently load as its bare backbone.
        raise ValueError(
            f"{path}: architectures must name the one model class the weights were saved for "
            f"(e.g. [\"{family.load('base_model').__name__}\"]), got {architectures!r}; restore config.json or re-convert the model"
        )
    return values, family, architectures[0]
