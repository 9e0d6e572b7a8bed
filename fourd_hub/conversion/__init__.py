"""Conversion of the original representations4d ``.npz`` checkpoints to Hugging Face checkpoints.

``convert_checkpoint(source, output_dir, name=...)`` is the entry point (CLI: ``fourd-hub convert``);
``convert_state_dict(params)`` is the pure in-memory form. See :mod:`.core` for the machinery and
:mod:`.tables` for the key tables.
"""

from .convert import ConversionResult, convert_checkpoint, convert_state_dict, plan_conversion
from .core import ConversionError, KeyRule, Section, TRANSFORMS
from .npz import CheckpointError, NpzCheckpoint

__all__ = [
    "CheckpointError",
    "ConversionError",
    "ConversionResult",
    "KeyRule",
    "NpzCheckpoint",
    "Section",
    "TRANSFORMS",
    "convert_checkpoint",
    "convert_state_dict",
    "plan_conversion",
]
