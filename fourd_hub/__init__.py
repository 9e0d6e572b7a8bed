"""fourd_hub: Hugging Face-compatible PyTorch models for DeepMind's 4D video representations (4DS, MooG).

Importing the package registers every configuration and model with transformers' Auto classes,
so ``AutoConfig`` / ``AutoModel`` (and the matching task Auto classes) resolve our checkpoints.
"""

from .fourds import (
    FOURDS_SIZES,
    FourDSBoxTrackingOutput,
    FourDSCameraPoseOutput,
    FourDSConfig,
    FourDSDepthEstimationOutput,
    FourDSForBoxTracking,
    FourDSForCameraPoseEstimation,
    FourDSForDepthEstimation,
    FourDSForPointTracking,
    FourDSForVideoClassification,
    FourDSModel,
    FourDSModelOutput,
    FourDSPointTrackingOutput,
    FourDSPreTrainedModel,
    FourDSVideoClassificationOutput,
)
from .moog import (
    MOOG_PRESETS,
    MooGConfig,
    MooGForBoxTracking,
    MooGForDepthEstimation,
    MooGForNextFramePrediction,
    MooGForPointTracking,
    MooGModel,
    MooGModelOutput,
    MooGNextFramePredictionOutput,
    MooGPreTrainedModel,
)
from .readout import BoxTrackingOutput, DepthEstimationOutput, PointTrackingOutput, ReadoutConfig
from ._auto import register_auto_classes

__version__ = "0.1.0"

register_auto_classes()

__all__ = [
    "FOURDS_SIZES",
    "FourDSBoxTrackingOutput",
    "FourDSCameraPoseOutput",
    "FourDSConfig",
    "FourDSDepthEstimationOutput",
    "FourDSForBoxTracking",
    "FourDSForCameraPoseEstimation",
    "FourDSForDepthEstimation",
    "FourDSForPointTracking",
    "FourDSForVideoClassification",
    "FourDSModel",
    "FourDSModelOutput",
    "FourDSPointTrackingOutput",
    "FourDSPreTrainedModel",
    "FourDSVideoClassificationOutput",
    "MOOG_PRESETS",
    "MooGConfig",
    "MooGForBoxTracking",
    "MooGForDepthEstimation",
    "MooGForNextFramePrediction",
    "MooGForPointTracking",
    "MooGModel",
    "MooGModelOutput",
    "MooGNextFramePredictionOutput",
    "MooGPreTrainedModel",
    "BoxTrackingOutput",
    "DepthEstimationOutput",
    "PointTrackingOutput",
    "ReadoutConfig",
    "__version__",
]
