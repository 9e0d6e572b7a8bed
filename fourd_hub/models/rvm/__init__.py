"""RVM: Recurrent Video Masked Autoencoders (arXiv 2512.13684)."""

from .configuration_rvm import RVM_PRESETS, RVMConfig, RVMDecoderSpec, RVMTransformerSpec
from .modeling_rvm import (
    RVMBoxTrackingOutput,
    RVMCameraPoseOutput,
    RVMForBoxTracking,
    RVMForCameraPoseEstimation,
    RVMForDepthEstimation,
    RVMForMaskedVideoReconstruction,
    RVMForPointTracking,
    RVMForVideoClassification,
    RVMMaskedReconstructionOutput,
    RVMModel,
    RVMModelOutput,
    RVMPointTrackingOutput,
    RVMPreTrainedModel,
    RVMVideoClassificationOutput,
    RVMVideoReconstructionOutput,
)
from .processing_rvm import RVMVideoProcessor

__all__ = [
    "RVM_PRESETS",
    "RVMBoxTrackingOutput",
    "RVMCameraPoseOutput",
    "RVMConfig",
    "RVMDecoderSpec",
    "RVMForBoxTracking",
    "RVMForCameraPoseEstimation",
    "RVMForDepthEstimation",
    "RVMForMaskedVideoReconstruction",
    "RVMForPointTracking",
    "RVMForVideoClassification",
    "RVMMaskedReconstructionOutput",
    "RVMModel",
    "RVMModelOutput",
    "RVMPointTrackingOutput",
    "RVMPreTrainedModel",
    "RVMTransformerSpec",
    "RVMVideoClassificationOutput",
    "RVMVideoProcessor",
    "RVMVideoReconstructionOutput",
]
