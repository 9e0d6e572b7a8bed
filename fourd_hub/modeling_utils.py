"""Base classes of every family's configuration and models: loading by name, standalone heads, pushing.

:class:`FourDConfig` and :class:`FourDPreTrainedModel` sit between ``transformers`` and each
family (``FourDSConfig(FourDConfig)``, ``MooGPreTrainedModel(FourDPreTrainedModel)``). They add
what every fourd_hub model has, whatever its family:

- ``from_pretrained`` of catalog names (``"4ds-e"``), directories and Hub repo ids, through the
  one loader (:func:`fourd_hub.loading.plan_load`) and the torch-free resolver (:mod:`fourd_hub.hub`);
  weights are read from safetensors only;
- standalone heads: a directory whose ``config.json`` names the ``backbone`` it reads loads that
  backbone first (``use_pretrained_backbone``, transformers' backbone-config convention);
- ``push_to_hub`` with the fourd_hub model card and video processor.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedConfig, PreTrainedModel

from .hub.push import push_model
from .hub.resolve import resolve_model_dir
from .hub.settings import catalog_entry_for, split_hub_kwargs
from .loading import LoadPlan, plan_load, read_model_config
from .readout import ReturnDictMixin
from .registry import get_family

__all__ = ["FourDConfig", "FourDPreTrainedModel", "from_pretrained", "load_backbone", "load_planned", "read_head_directory"]


class FourDConfig(PreTrainedConfig):
    r"""Fields and loading shared by every family's configuration.

    Args:
        backbone (`str`, *optional*): for a standalone readout head: the model whose features it
            reads (a catalog name, a directory or a Hub repo id), loaded with it.
        use_pretrained_backbone (`bool`): the directory holds only the head's weights; the
            backbone's come from ``backbone`` (transformers' backbone-config convention).
    """

    backbone: str | None = None
    use_pretrained_backbone: bool = False

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """``transformers``' ``from_pretrained``, plus catalog names.

        A config-only catalog entry (a 4DS size without released weights) gives its preset; an
        entry with weights resolves like the model (:func:`fourd_hub.hub.resolve_model_dir`).
        """
        entry = catalog_entry_for(pretrained_model_name_or_path)
        if entry is None:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        family = get_family(entry.family)
        if family.name != cls.model_type:
            raise ValueError(
                f"{entry.name} is a {family.display_name} model; load its configuration with "
                f"{family.load('config_class').__name__}"
            )
        hub_kwargs = split_hub_kwargs(kwargs)
        if not entry.has_weights:
            return cls.from_preset(entry.preset, **{**entry.config_overrides, **kwargs})
        return super().from_pretrained(resolve_model_dir(entry.name, **hub_kwargs), **kwargs)


class FourDPreTrainedModel(ReturnDictMixin, PreTrainedModel):
    """Base of every family's ``PreTrainedModel``: loading by name and standalone heads, our ``push_to_hub``.

    Class attributes a model class may set:
        loads_from_base_model: every weight of this class is in a base-model checkpoint (a
            wrapper with no head of its own, e.g. MooG's next-frame predictor), so a pipeline
            accepts a backbone directory for it.
    """

    loads_from_base_model: bool = False

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, backbone=None, **kwargs):
        """``transformers``' ``from_pretrained``, plus catalog names and standalone readout heads.

        Args:
            pretrained_model_name_or_path: a catalog name (``"4ds-e"``), a directory or a Hub repo id.
            backbone: for standalone readout heads: the backbone to attach them to (default: the
                one their ``config.json`` names).
            *model_args, **kwargs: as ``transformers.PreTrainedModel.from_pretrained``.
        """
        plan = plan_load(pretrained_model_name_or_path, requested=cls, backbone=backbone, hub_kwargs=split_hub_kwargs(kwargs))
        return load_planned(plan, *model_args, **kwargs)

    @classmethod
    def _from_directory(cls, directory: Path, *model_args, **kwargs):
        """transformers' loading of a full model directory, safetensors only."""
        if kwargs.get("use_safetensors") is False:
            raise ValueError("fourd_hub loads safetensors weights only (never pickles); drop use_safetensors=False")
        kwargs["use_safetensors"] = True
        return super().from_pretrained(directory, *model_args, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs):
        """Upload weights, ``config.json``, the video processor config and our model card to ``repo_id``.

        See :func:`fourd_hub.hub.push_model` for the arguments.
        """
        return push_model(self, repo_id, **kwargs)


def load_planned(plan: LoadPlan, *model_args, **kwargs):
    """Build the model :func:`~fourd_hub.loading.plan_load` chose (``from_pretrained`` keywords in ``kwargs``)."""
    cls = plan.model_class
    if plan.is_head_only:
        if cls is plan.family.load("base_model"):
            # AutoModel / the backbone class on a head directory: the backbone, as transformers
            # loads the base model of any task checkpoint.
            model = load_backbone(plan.backbone, cls, **kwargs)
        elif not hasattr(cls, "from_backbone"):
            raise TypeError(f"{cls.__name__} has no standalone heads; {plan.directory} is one")
        else:
            model = cls.from_backbone(plan.backbone, head=plan.directory, **kwargs)
    else:
        model = cls._from_directory(plan.directory, *model_args, **kwargs)
    if plan.entry is not None:
        model.config._name_or_path = plan.entry.name  # as transformers records a repo id: push_to_hub's base model
    return model


def load_backbone(backbone: Any, base_class: type, **kwargs) -> Any:
    """``backbone`` as a ``base_class`` model: itself, the backbone of a task model, or loaded by name.

    Args:
        backbone: a ``base_class`` instance, a task model around one, or a catalog name, directory
            or Hub repo id.
        base_class: the family's base model class.
        **kwargs: ``from_pretrained`` keywords when ``backbone`` is a name.
    """
    if isinstance(backbone, base_class):
        return backbone
    inner = getattr(backbone, "base_model", None)
    if isinstance(backbone, PreTrainedModel) and isinstance(inner, base_class):
        return inner
    if isinstance(backbone, PreTrainedModel):
        raise TypeError(f"backbone must be a {base_class.__name__} (or a task model around one), got {type(backbone).__name__}")
    return base_class.from_pretrained(backbone, **kwargs)


def from_pretrained(name_or_path: str | os.PathLike, *, backbone=None, **kwargs):
    """Load any fourd_hub model by catalog name, directory or Hub repo id, as the class it was saved as.

    ``fourd_hub.from_pretrained("4ds-b-dist-e-scannet-depth")`` returns a
    :class:`~fourd_hub.FourDSForDepthEstimation`, ``"moog-ego4d-point-tracking"`` a
    :class:`~fourd_hub.MooGForPointTracking` on its backbone, ``"4ds-e"`` a :class:`~fourd_hub.FourDSModel`.

    Args:
        name_or_path: a catalog name, a directory or a Hub repo id.
        backbone: for a standalone readout head: the backbone (model, name, directory or repo id)
            it reads, instead of the one its ``config.json`` names.
        **kwargs: ``from_pretrained`` keywords (``dtype``, ``device_map``, ``cache_dir``, ...).
    """
    plan = plan_load(name_or_path, backbone=backbone, hub_kwargs=split_hub_kwargs(kwargs))
    return load_planned(plan, **kwargs)


def read_head_directory(directory: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A standalone head directory: (``config.json`` values, the head's state dict without ``head.``).

    Raises:
        ValueError: not a head directory, unreadable weights, or weights of anything but the head.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    values, _, architecture = read_model_config(directory)
    if not values.get("use_pretrained_backbone"):
        raise ValueError(f"{directory} is a full {architecture} model, not a standalone head: load it with from_pretrained")
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{directory} has no .safetensors weights")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            tensors = load_file(file)
        except (SafetensorError, OSError, ValueError) as error:
            raise ValueError(f"cannot read {file}: {error}") from None
        outside = sorted(key for key in tensors if not key.startswith("head."))
        if outside:
            raise ValueError(f"{file} holds weights outside the head ({', '.join(outside[:4])}); re-convert the head file")
        state.update({key[len("head.") :]: tensor for key, tensor in tensors.items()})
    return values, state
