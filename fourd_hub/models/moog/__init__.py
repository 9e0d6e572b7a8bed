"""MooG: "Moving Off-the-Grid" recurrent video tokens (arXiv 2411.05927)."""

from .configuration_moog import MOOG_PRESETS, MooGConfig, MooGPixelDecoderSpec, MooGTransformerSpec
from .modeling_moog import (
    MooGForBoxTracking,
    MooGForDepthEstimation,
    MooGForNextFramePrediction,
    MooGForPointTracking,
    MooGModel,
    MooGModelOutput,
    MooGNextFramePredictionOutput,
    MooGPreTrainedModel,
)
from .processing_moog import MooGVideoProcessor

__all__ = [
    "MOOG_PRESETS",
    "MooGConfig",
    "MooGForBoxTracking",
    "MooGForDepthEstimation",
    "MooGForNextFramePrediction",
    "MooGForPointTracking",
    "MooGModel",
    "MooGModelOutput",
    "MooGNextFramePredictionOutput",
    "MooGPixelDecoderSpec",
    "MooGPreTrainedModel",
    "MooGTransformerSpec",
    "MooGVideoProcessor",
]
