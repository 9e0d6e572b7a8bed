"""4DS: the video-MAE ViT family of "Scaling 4D Representations" (arXiv 2412.15212)."""

from .configuration_fourds import FOURDS_SIZES, FourDSConfig
from .modeling_fourds import (
    FourDSBoxTrackingOutput,
    FourDSCameraPoseOutput,
    FourDSDepthEstimationOutput,
    FourDSForBoxTracking,
    FourDSForCameraPoseEstimation,
    FourDSForDepthEstimation,
    FourDSForPointTracking,
    FourDSForPreTraining,
    FourDSForVideoClassification,
    FourDSModel,
    FourDSModelOutput,
    FourDSPointTrackingOutput,
    FourDSPreTrainedModel,
    FourDSPreTrainingOutput,
    FourDSVideoClassificationOutput,
)
from .processing_fourds import FourDSVideoProcessor

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
    "FourDSForPreTraining",
    "FourDSForVideoClassification",
    "FourDSModel",
    "FourDSModelOutput",
    "FourDSPointTrackingOutput",
    "FourDSPreTrainedModel",
    "FourDSPreTrainingOutput",
    "FourDSVideoClassificationOutput",
    "FourDSVideoProcessor",
]
