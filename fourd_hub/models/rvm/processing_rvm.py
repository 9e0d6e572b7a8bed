"""The RVM video processor: its defaults (the generic processing is :mod:`fourd_hub.processing`)."""

from __future__ import annotations

from ...processing import FourDVideoProcessor


class RVMVideoProcessor(FourDVideoProcessor):
    """RVM: 256x256 frames (the released models' training size; any multiple of 16 works), 16-frame windows.

    The original's evaluations resize with aspect ratio not kept (``mediapy.resize_video``),
    which ``resize_mode="resize"`` (the default) does too.
    """

    default_size = {"height": 256, "width": 256}
    default_family = "rvm"
