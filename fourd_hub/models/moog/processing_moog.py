"""The MooG video processor: its defaults (the generic processing is :mod:`fourd_hub.processing`)."""

from __future__ import annotations

from ...processing import FourDVideoProcessor


class MooGVideoProcessor(FourDVideoProcessor):
    """MooG: 128x128 frames (the released Ego4D model and its heads), 16-frame windows."""

    default_size = {"height": 128, "width": 128}
    default_family = "moog"
