"""The 4DS video processor: its defaults (the generic processing is :mod:`fourd_hub.processing`)."""

from __future__ import annotations

from ...processing import FourDVideoProcessor


class FourDSVideoProcessor(FourDVideoProcessor):
    """4DS: 16-frame clips at 224x224 (4DS-j: 256x256), stretched as in the original demo."""

    default_size = {"height": 224, "width": 224}
    default_family = "fourds"
