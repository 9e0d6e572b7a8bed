"""fourd_hub: Hugging Face-compatible PyTorch models for DeepMind's 4D video representations (4DS, MooG, RVM).

Importing the package registers every configuration and model with transformers' Auto classes,
so ``AutoConfig`` / ``AutoModel`` (and the matching task Auto classes) resolve our checkpoints, and
our video pipelines with ``transformers.pipeline`` (``"video-depth-estimation"``, ``"point-tracking"``,
``"box-tracking"``, ``"camera-pose-estimation"``, ``"video-feature-extraction"``,
``"video-reconstruction"``).

``fourd_hub.from_pretrained(name)`` loads any of our checkpoints (catalog name, directory or Hub
repo id) as the class it was saved as; every model class's ``from_pretrained`` takes catalog names
too (``FourDSModel.from_pretrained("4ds-e")``): see :mod:`fourd_hub.loading` and :mod:`fourd_hub.hub`.

Each family lives in ``fourd_hub/models/<family>/``; :mod:`fourd_hub.registry` says what each provides
and :mod:`fourd_hub.tasks` names every task.
"""

import sys

from ._version import __version__


def _load() -> None:
    """Import every public name and register our configs, models and pipelines with transformers (once)."""
    if "register_pipelines" in globals():
        return
    from .models.fourds import (
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
        FourDSVideoProcessor,
    )
    from .models.moog import (
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
        MooGVideoProcessor,
    )
    from .models.rvm import (
        RVM_PRESETS,
        RVMConfig,
        RVMForBoxTracking,
        RVMForCameraPoseEstimation,
        RVMForDepthEstimation,
        RVMForMaskedVideoReconstruction,
        RVMForPointTracking,
        RVMForVideoClassification,
        RVMMaskedReconstructionOutput,
        RVMModel,
        RVMModelOutput,
        RVMPreTrainedModel,
        RVMVideoProcessor,
        RVMVideoReconstructionOutput,
    )
    from .readout import (
        BoxTrackingOutput,
        DepthEstimationOutput,
        PointTrackingOutput,
        ReadoutConfig,
        RecurrentBoxTrackingOutput,
        RecurrentPointTrackingOutput,
    )
    from .processing import load_video_processor
    from .pipelines import pipeline, register_pipelines
    from .results import (
        BoxTrackingResult,
        CameraPoseResult,
        DepthEstimationResult,
        FeatureExtractionResult,
        KeypointTrackingResult,
        PointTrackingResult,
        VideoObjectSegmentationResult,
        VideoReconstructionResult,
    )
    from .modeling_utils import from_pretrained
    from .factory import create_model, list_models
    from .registry import FamilySpec, families, get_family
    from .tasks import TASKS, TaskSpec, get_task
    from .video_io import VideoError, load_video, open_video, write_video
    from ._auto import register_auto_classes

    names = dict(locals())
    register_auto_classes()
    register_pipelines()
    globals().update(names)


def __getattr__(name: str):
    """PEP 562: in the ``fourd-hub`` command, which skips the eager load, a public name loads everything."""
    if name in __all__ or name == "register_auto_classes":
        _load()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _is_the_cli() -> bool:
    """Whether this process is the ``fourd-hub`` command: its console script (``__main__`` is the file
    ``fourd-hub``, ``fourd-hub.exe``, ``fourd-hub-script.py``) or ``python -m fourd_hub[.cli]``."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    argv = getattr(sys, "orig_argv", sys.argv)
    return main_file.replace("\\", "/").rsplit("/", 1)[-1].startswith("fourd-hub") or any(
        flag == "-m" and module in ("fourd_hub", "fourd_hub.cli") for flag, module in zip(argv, argv[1:])
    )


# `import fourd_hub` registers everything with transformers, as the docs promise; the `fourd-hub`
# command defers it (fourd_hub.cli loads it before the commands that need models), so that
# --help, --version and list need neither torch nor transformers.
if not _is_the_cli():
    _load()

__all__ = [
    "__version__",
    "BoxTrackingOutput",
    "BoxTrackingResult",
    "CameraPoseResult",
    "create_model",
    "DepthEstimationOutput",
    "DepthEstimationResult",
    "families",
    "FamilySpec",
    "FeatureExtractionResult",
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
    "from_pretrained",
    "get_family",
    "get_task",
    "KeypointTrackingResult",
    "list_models",
    "load_video",
    "load_video_processor",
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
    "MooGVideoProcessor",
    "open_video",
    "pipeline",
    "PointTrackingOutput",
    "RecurrentBoxTrackingOutput",
    "RecurrentPointTrackingOutput",
    "PointTrackingResult",
    "ReadoutConfig",
    "RVM_PRESETS",
    "RVMConfig",
    "RVMForBoxTracking",
    "RVMForCameraPoseEstimation",
    "RVMForDepthEstimation",
    "RVMForMaskedVideoReconstruction",
    "RVMForPointTracking",
    "RVMForVideoClassification",
    "RVMMaskedReconstructionOutput",
    "RVMModel",
    "RVMModelOutput",
    "RVMPreTrainedModel",
    "RVMVideoProcessor",
    "RVMVideoReconstructionOutput",
    "register_pipelines",
    "TASKS",
    "TaskSpec",
    "VideoError",
    "VideoObjectSegmentationResult",
    "VideoReconstructionResult",
    "write_video",
]
