"""Registration of our configs and models with transformers' Auto classes (run at import)."""

from __future__ import annotations

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForDepthEstimation,
    AutoModelForPreTraining,
    AutoModelForVideoClassification,
)

from .fourds import FourDSConfig, FourDSForDepthEstimation, FourDSForPreTraining, FourDSForVideoClassification, FourDSModel
from .moog import MooGConfig, MooGForDepthEstimation, MooGForNextFramePrediction, MooGModel


def register_auto_classes() -> None:
    """Make ``Auto*.from_pretrained`` resolve our model types (no ``trust_remote_code``). Idempotent.

    Point, box and camera-pose models have no transformers Auto class: load them with their class
    or :func:`fourd_hub.from_pretrained`, which picks the class a checkpoint was saved as.
    """
    registrations = [
        (AutoModel, FourDSConfig, FourDSModel),
        (AutoModelForDepthEstimation, FourDSConfig, FourDSForDepthEstimation),
        (AutoModelForVideoClassification, FourDSConfig, FourDSForVideoClassification),
        (AutoModelForPreTraining, FourDSConfig, FourDSForPreTraining),
        (AutoModel, MooGConfig, MooGModel),
        (AutoModelForPreTraining, MooGConfig, MooGForNextFramePrediction),
        (AutoModelForDepthEstimation, MooGConfig, MooGForDepthEstimation),
    ]
    for config_class in (FourDSConfig, MooGConfig):
        try:
            AutoConfig.register(config_class.model_type, config_class)
        except ValueError:  # already registered by an earlier import (e.g. importlib.reload)
            pass
    for auto_class, config_class, model_class in registrations:
        try:
            auto_class.register(config_class, model_class)
        except ValueError:
            pass
