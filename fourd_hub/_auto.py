"""Registration of our configs and models with transformers' Auto classes (run at import)."""

from __future__ import annotations

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForDepthEstimation,
    AutoModelForVideoClassification,
)

from .fourds import FourDSConfig, FourDSForDepthEstimation, FourDSForVideoClassification, FourDSModel


def register_auto_classes() -> None:
    """Make ``Auto*.from_pretrained`` resolve our model types. Idempotent."""
    registrations = [
        (AutoModel, FourDSModel),
        (AutoModelForDepthEstimation, FourDSForDepthEstimation),
        (AutoModelForVideoClassification, FourDSForVideoClassification),
    ]
    try:
        AutoConfig.register(FourDSConfig.model_type, FourDSConfig)
    except ValueError:  # already registered by an earlier import (e.g. importlib.reload)
        pass
    for auto_class, model_class in registrations:
        try:
            auto_class.register(FourDSConfig, model_class)
        except ValueError:
            pass
