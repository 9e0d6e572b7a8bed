"""The family registry: what generic code (hub, conversion, pipelines, CLI, cards, training) asks about a model family.

One :class:`FamilySpec` per family names, lazily (dotted import paths, like transformers'
``*_MAPPING_NAMES``), every piece the family provides: its configuration class, base model, a
task model per task of :mod:`fourd_hub.tasks`, the pretraining model and recipes, the video
processor, the converter (layout detection, config inference, key tables), the card data, a
debug configuration for tests, and its behaviour flags (recurrent, standalone heads). Generic code
never names a family: it asks :func:`get_family` / :func:`family_of` and uses what the spec names.

Nothing of fourd_hub is imported here (and no torch): reading the registry is free; a piece is
imported the first time :meth:`FamilySpec.load` is asked for it. Adding a family is one new
folder under ``fourd_hub/models/`` and one :func:`register_family` call below
(``docs/adding_a_family.md``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

__all__ = ["FAMILIES", "FamilySpec", "families", "family_of", "get_family", "import_object", "register_family", "unregister_family"]


def import_object(dotted: str) -> Any:
    """The object a dotted path names (``"package.module.Name"``, or a module path)."""
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as err:
        if err.name != dotted:
            raise
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except AttributeError:
        raise ImportError(f"{module} has no {name!r} (named by the family registry)") from None


@dataclass(frozen=True)
class FamilySpec:
    """Everything generic code needs to know about one model family.

    Attributes:
        name: the family's ``model_type`` (``config.json``), e.g. ``"fourds"``.
        display_name: how people write it (``"4DS"``): messages and cards.
        config_class: dotted path of the ``PreTrainedConfig`` subclass.
        pretrained_model: dotted path of the family's ``PreTrainedModel`` base class (every model
            class of the family subclasses it).
        base_model: dotted path of the backbone (``AutoModel``; feature extraction).
        task_models: canonical task name (:data:`fourd_hub.tasks.TASKS`) -> dotted path of the
            class running it; a family declares exactly the tasks it supports.
        presets: dotted path of the ``{preset name: config fields}`` mapping (size presets as data).
        processor_class: dotted path of the family's video processor class.
        converter: dotted path of the conversion module: ``detect(shapes) -> bool`` (positive
            markers only), ``plan(shapes, base_config, what) -> (Layout, config, model class)``.
        card: dotted path of the card-data module (``PAPER``, section functions; see
            :mod:`fourd_hub.cards`).
        debug_config: dotted path of a function returning a tiny config (CPU tests, CI).
        pretraining_model: dotted path of the pretraining objective's model, if any.
        recipes: names of the family's pretraining recipes (:mod:`fourd_hub.training.recipes`).
        recurrent: the model carries a state across windows (``initial_state=`` in, ``state``
            out): pipelines stream windows in order and pass the state on.
        standalone_head_tasks: tasks whose released heads come in files of their own, without
            a backbone (converted into a head directory that names its backbone).
        auto_classes: extra ``transformers`` Auto class name -> dotted model class registrations
            (beyond the base model and the task models whose task names an Auto class).
    """

    name: str
    display_name: str
    config_class: str
    pretrained_model: str
    base_model: str
    task_models: Mapping[str, str]
    presets: str
    processor_class: str
    converter: str
    card: str
    debug_config: str
    pretraining_model: str | None = None
    recipes: tuple[str, ...] = ()
    recurrent: bool = False
    standalone_head_tasks: tuple[str, ...] = ()
    auto_classes: Mapping[str, str] = field(default_factory=dict)

    def load(self, piece: str) -> Any:
        """Import and return the piece named by attribute ``piece`` (``"config_class"``, ...)."""
        dotted = getattr(self, piece)
        if not isinstance(dotted, str):
            raise TypeError(f"family {self.name!r}: {piece} is not a dotted path")
        return import_object(dotted)

    @property
    def tasks(self) -> tuple[str, ...]:
        """The canonical names of the tasks this family runs."""
        return tuple(self.task_models)

    def task_model(self, task: str) -> type:
        """The class that runs ``task`` (canonical name) for this family.

        Raises:
            ValueError: the family has no model for the task (the message lists its tasks).
        """
        if task not in self.task_models:
            raise ValueError(f"{self.display_name} models do not run {task}; {self.display_name} runs {', '.join(self.tasks)}")
        return import_object(self.task_models[task])

    def model_classes(self) -> dict[str, type]:
        """Every model class of the family by class name (base, task and pretraining models)."""
        paths = [self.base_model, *self.task_models.values(), *self.auto_classes.values()]
        if self.pretraining_model:
            paths.append(self.pretraining_model)
        classes = [import_object(path) for path in dict.fromkeys(paths)]
        return {cls.__name__: cls for cls in classes}

    def model_class(self, name: str) -> type | None:
        """The family's model class called ``name``, or ``None``."""
        return self.model_classes().get(name)


FAMILIES: dict[str, FamilySpec] = {}


def register_family(spec: FamilySpec, *, replace: bool = False) -> FamilySpec:
    """Add a family (its ``name`` must be new unless ``replace``)."""
    if spec.name in FAMILIES and not replace:
        raise ValueError(f"a family called {spec.name!r} is already registered")
    FAMILIES[spec.name] = spec
    return spec


def unregister_family(name: str) -> None:
    """Remove a family (tests that register a deliberately broken one clean up with this)."""
    FAMILIES.pop(name, None)


def families() -> Iterator[FamilySpec]:
    """The registered families, in registration order."""
    return iter(list(FAMILIES.values()))


def get_family(name: str) -> FamilySpec:
    """The family whose ``model_type`` is ``name``.

    Raises:
        KeyError: no such family (the message lists the families).
    """
    spec = FAMILIES.get(name) if isinstance(name, str) else None
    if spec is None:
        raise KeyError(f"{name!r} is not a fourd_hub model family; families: {', '.join(FAMILIES)}")
    return spec


def family_of(thing: Any) -> FamilySpec:
    """The family of a config, a model, a config dict or a ``model_type`` string.

    Raises:
        KeyError: not a fourd_hub family (the message names what was given).
    """
    if isinstance(thing, str):
        return get_family(thing)
    if isinstance(thing, Mapping):
        model_type = thing.get("model_type")
    else:
        config = getattr(thing, "config", thing)
        model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        what = type(thing).__name__
        raise KeyError(f"a {what} with model_type {model_type!r} is not a fourd_hub model; families: {', '.join(FAMILIES)}")
    return FAMILIES[model_type]


# ----------------------------------------------------------------------------------------------
# The families. Each entry names the pieces of one folder of fourd_hub/models/.

_TASK_MODELS_4DS = {
    "depth-estimation": "FourDSForDepthEstimation",
    "point-tracking": "FourDSForPointTracking",
    "box-tracking": "FourDSForBoxTracking",
    "camera-pose-estimation": "FourDSForCameraPoseEstimation",
    "video-classification": "FourDSForVideoClassification",
    "video-feature-extraction": "FourDSModel",
    # Label propagation on the patch-grid features (after video-feature-extraction: the first task
    # of a class is the one its model card shows).
    "video-object-segmentation": "FourDSModel",
    "keypoint-tracking": "FourDSModel",
}
register_family(
    FamilySpec(
        name="fourds",
        display_name="4DS",
        config_class="fourd_hub.models.fourds.configuration_fourds.FourDSConfig",
        pretrained_model="fourd_hub.models.fourds.modeling_fourds.FourDSPreTrainedModel",
        base_model="fourd_hub.models.fourds.modeling_fourds.FourDSModel",
        task_models={task: f"fourd_hub.models.fourds.modeling_fourds.{cls}" for task, cls in _TASK_MODELS_4DS.items()},
        presets="fourd_hub.models.fourds.configuration_fourds.FOURDS_SIZES",
        processor_class="fourd_hub.models.fourds.processing_fourds.FourDSVideoProcessor",
        converter="fourd_hub.models.fourds.conversion_fourds",
        card="fourd_hub.models.fourds.card_fourds",
        debug_config="fourd_hub.models.fourds.configuration_fourds.debug_config",
        pretraining_model="fourd_hub.models.fourds.modeling_fourds.FourDSForPreTraining",
        recipes=("debug", "4ds-s", "4ds-b", "4ds-l", "4ds-h", "4ds-g", "4ds-e", "4ds-j"),
        auto_classes={"AutoModelForPreTraining": "fourd_hub.models.fourds.modeling_fourds.FourDSForPreTraining"},
    )
)

_TASK_MODELS_MOOG = {
    "depth-estimation": "MooGForDepthEstimation",
    "point-tracking": "MooGForPointTracking",
    "box-tracking": "MooGForBoxTracking",
    "video-feature-extraction": "MooGModel",
    "video-reconstruction": "MooGForNextFramePrediction",
}
register_family(
    FamilySpec(
        name="moog",
        display_name="MooG",
        config_class="fourd_hub.models.moog.configuration_moog.MooGConfig",
        pretrained_model="fourd_hub.models.moog.modeling_moog.MooGPreTrainedModel",
        base_model="fourd_hub.models.moog.modeling_moog.MooGModel",
        task_models={task: f"fourd_hub.models.moog.modeling_moog.{cls}" for task, cls in _TASK_MODELS_MOOG.items()},
        presets="fourd_hub.models.moog.configuration_moog.MOOG_PRESETS",
        processor_class="fourd_hub.models.moog.processing_moog.MooGVideoProcessor",
        converter="fourd_hub.models.moog.conversion_moog",
        card="fourd_hub.models.moog.card_moog",
        debug_config="fourd_hub.models.moog.configuration_moog.debug_config",
        pretraining_model="fourd_hub.models.moog.modeling_moog.MooGForNextFramePrediction",
        recipes=("debug-moog", "moog-movi"),
        recurrent=True,
        standalone_head_tasks=("point-tracking", "box-tracking"),
        auto_classes={"AutoModelForPreTraining": "fourd_hub.models.moog.modeling_moog.MooGForNextFramePrediction"},
    )
)

_TASK_MODELS_RVM = {
    "depth-estimation": "RVMForDepthEstimation",
    "point-tracking": "RVMForPointTracking",
    "box-tracking": "RVMForBoxTracking",
    "camera-pose-estimation": "RVMForCameraPoseEstimation",
    "video-classification": "RVMForVideoClassification",
    "video-feature-extraction": "RVMModel",
    "video-reconstruction": "RVMForMaskedVideoReconstruction",
    # Label propagation on the patch slots of the state (rvm.md section 6; after video-feature-extraction).
    "video-object-segmentation": "RVMModel",
    "keypoint-tracking": "RVMModel",
}
register_family(
    FamilySpec(
        name="rvm",
        display_name="RVM",
        config_class="fourd_hub.models.rvm.configuration_rvm.RVMConfig",
        pretrained_model="fourd_hub.models.rvm.modeling_rvm.RVMPreTrainedModel",
        base_model="fourd_hub.models.rvm.modeling_rvm.RVMModel",
        task_models={task: f"fourd_hub.models.rvm.modeling_rvm.{cls}" for task, cls in _TASK_MODELS_RVM.items()},
        presets="fourd_hub.models.rvm.configuration_rvm.RVM_PRESETS",
        processor_class="fourd_hub.models.rvm.processing_rvm.RVMVideoProcessor",
        converter="fourd_hub.models.rvm.conversion_rvm",
        card="fourd_hub.models.rvm.card_rvm",
        debug_config="fourd_hub.models.rvm.configuration_rvm.debug_config",
        pretraining_model="fourd_hub.models.rvm.modeling_rvm.RVMForMaskedVideoReconstruction",
        recipes=("debug-rvm", "rvm-s", "rvm-b", "rvm-l", "rvm-h"),
        recurrent=True,
        auto_classes={"AutoModelForPreTraining": "fourd_hub.models.rvm.modeling_rvm.RVMForMaskedVideoReconstruction"},
    )
)
