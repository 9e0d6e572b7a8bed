"""fourd_hub: Hugging Face-compatible PyTorch models for DeepMind's 4D video representations (4DS, MooG).

Importing the package registers every configuration and model with transformers' Auto classes,
so ``AutoConfig`` / ``AutoModel`` (and the matching task Auto classes) resolve our checkpoints, and
our video pipelines with ``transformers.pipeline`` (``"video-depth-estimation"``, ``"point-tracking"``,
``"box-tracking"``, ``"camera-pose-estimation"``, ``"video-feature-extraction"``,
``"video-reconstruction"``).

``fourd_hub.from_pretrained(name)`` loads any of our checkpoints (catalog name, directory or Hub
repo id) as the class it was saved as; every model class's ``from_pretrained`` takes catalog names
too (``FourDSModel.from_pretrained("4ds-e")``): see :mod:`fourd_hub.hub`.
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
    FourDSForPreTraining,
    FourDSForVideoClassification,
    FourDSModel,
    FourDSModelOutput,
    FourDSPointTrackingOutput,
    FourDSPreTrainedModel,
    FourDSPreTrainingOutput,
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
from .processing import FourDSVideoProcessor, MooGVideoProcessor, load_video_processor
from .pipelines import pipeline, register_pipelines
from .results import (
    BoxTrackingResult,
    CameraPoseResult,
    DepthEstimationResult,
    FeatureExtractionResult,
    PointTrackingResult,
    VideoReconstructionResult,
)
from .hub import from_pretrained
from .video_io import VideoError, load_video, open_video, write_video
from ._auto import register_auto_classes

__version__ = "0.1.0"

register_auto_classes()
register_pipelines()

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
    "FourDSVideoProcessor",
    "MooGVideoProcessor",
    "load_video_processor",
    "from_pretrained",
    "pipeline",
    "register_pipelines",
    "BoxTrackingResult",
    "CameraPoseResult",
    "DepthEstimationResult",
    "FeatureExtractionResult",
    "PointTrackingResult",
    "VideoReconstructionResult",
    "VideoError",
    "load_video",
    "open_video",
    "write_video",
    "__version__",
]
