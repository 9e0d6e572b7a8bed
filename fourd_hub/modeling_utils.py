"""Base classes of every family's configuration and models: loading by name, standalone heads, pushing.

:class:`FourDConfig` and :class:`FourDPreTrainedModel` sit between ``transformers`` and each
family (``FourDSConfig(FourDConfig)``, ``MooGPreTrainedModel(FourDPreTrainedModel)``). They add
what every fourd_hub model has, whatever its family:

- ``from_pretrained`` of catalog names (``"4ds-e"``), directories and Hub repo ids, through the
  one loader (:func:`fourd_hub.loading.plan_load`) and the torch-free resolver (:mod:`fourd_hub.hub`);
- loading as strict as converting: weights from safetensors only (:mod:`fourd_hub.weight_files`
  checks the files and headers), then :func:`check_weights_fit` compares the headers with the
  model the config describes, built on the meta device with a parameter budget (an absurd
  ``num_hidden_layers`` is refused in milliseconds, a ``hidden_size`` of 10**9 allocates nothing):
  a missing, unexpected, mis-shaped or integer-typed weight is an error naming it; after loading,
  :func:`check_finite` refuses NaN/inf;
- loading in bounded memory: a load that casts (``dtype=torch.bfloat16`` on a float32 checkpoint)
  reads the files with plain reads, tensor by tensor, each cast to its parameter's dtype as it
  arrives and hashed on the way (:func:`read_state`). No page of the file stays mapped, so it
  peaks near the bfloat16 model's size, not the file's (``benchmarks/load_memory.py``).
  transformers does everything else (building on the meta device, key prefixes, fresh parts,
  tied weights, ``device_map``);
- standalone heads: a directory whose ``config.json`` names the ``backbone`` it reads loads that
  backbone first (``use_pretrained_backbone``, transformers' backbone-config convention);
- ``push_to_hub`` with the fourd_hub model card and video processor.
"""

from __future__ import annotations

import contextvars
import copy
import logging as pylogging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.modules.module import register_module_parameter_registration_hook
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.utils import logging

from .hub.push import push_model
from .hub.settings import catalog_entry_for, split_hub_kwargs
from .loading import LoadPlan, plan_load, read_model_config
from .config_checks import check_field_types
from .readout import ReturnDictMixin
from .registry import get_family
from .weight_files import TensorHeader, WeightFiles, WeightsError, find_weights, read_tensor_bytes, read_tensor_data, verify_checksums

logger = logging.get_logger(__name__)

__all__ = [
    "FourDConfig",
    "FourDPreTrainedModel",
    "check_config_values",
    "check_finite",
    "check_weights_fit",
    "from_pretrained",
    "load_backbone",
    "load_planned",
    "load_state_strict",
    "parameter_budget",
    "read_head_directory",
    "read_state",
]


def check_config_values(config_class: type, values: dict[str, Any]) -> None:
    """Refuse ``config.json`` values whose type is not the field's declared one (``"banana"`` layers, ``null`` widths).

    Every dataclass field of ``config_class`` (the family's and transformers' own) is checked
    against its annotation; the family's ``__post_init__`` then checks ranges.

    Raises:
        ValueError: naming the field, the value and the type it must have.
    """
    check_field_types(config_class, values, hint="restore config.json (or re-convert the model)")
    dtype = values.get("dtype", values.get("torch_dtype"))
    if dtype is not None and dtype != "auto" and not isinstance(getattr(torch, str(dtype), None), torch.dtype):
        raise ValueError(f"{config_class.__name__}.dtype must name a torch dtype (float32, bfloat16, ...), got {dtype!r}")


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
    def from_dict(cls, config_dict: dict[str, Any], **kwargs):
        """``transformers``' ``from_dict`` (every ``from_pretrained`` goes through it), checked first.

        Each field's value must be of its declared type (:func:`check_config_values`); whatever
        else the family's validation refuses is a ``ValueError`` naming the field.

        Raises:
            ValueError: a field of the wrong type or an invalid value.
        """
        if not isinstance(config_dict, dict):
            raise ValueError(f"a {cls.__name__} is built from a JSON object, got {type(config_dict).__name__}")
        check_config_values(cls, {**config_dict, **{k: v for k, v in kwargs.items() if k in cls.__dataclass_fields__}})
        try:
            return super().from_dict(config_dict, **kwargs)
        except (TypeError, AttributeError, KeyError, IndexError, OverflowError) as err:
            raise ValueError(f"invalid {cls.__name__} values: {err}") from None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """``transformers``' ``from_pretrained``, plus catalog names, which never download weights.

        A catalog name gives the ``config.json`` of a converted copy already on this machine (the
        Hugging Face cache), else the configuration the catalog describes (:meth:`from_catalog`):
        ``FourDSConfig.from_pretrained("4ds-e")`` reads no 14 GB file.
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
        converted = _converted_copy(entry, hub_kwargs)
        if converted is not None:
            return super().from_pretrained(converted, **kwargs)
        return cls.from_catalog(entry, **kwargs)

    @classmethod
    def from_catalog(cls, entry: Any, **overrides) -> "FourDConfig":
        """The configuration a catalog entry describes, built from the catalog alone (nothing is read or downloaded).

        Its preset, the entry's ``config_overrides`` and, for a standalone head, the backbone it
        reads: the same model shapes as converting the released file (``tests/test_manifests.py``).
        """
        family = get_family(entry.family)
        values = {**entry.config_overrides, **overrides}
        model_class = family.model_class(entry.architecture)
        task = next((t for t, path in family.task_models.items() if path.rpartition(".")[2] == entry.architecture), None)
        if entry.base_model is not None and task in family.standalone_head_tasks:
            values.setdefault("use_pretrained_backbone", True)
            values.setdefault("backbone", entry.base_model)
        config = cls.from_preset(entry.preset, **values)
        config.architectures = [model_class.__name__ if model_class is not None else entry.architecture]
        return config


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
    def _from_directory(cls, directory: Path, *model_args, saved_class: type | None = None, **kwargs):
        """transformers' loading of a full model directory, after checking it as strictly as a conversion.

        Args:
            directory: the model directory.
            saved_class: the class the directory was saved as (``config.json`` architectures):
                its head is loaded when ``cls`` is that class (or a subclass); otherwise only the
                backbone is, and ``cls``'s own head is freshly initialised (transformers' rule).
            *model_args, **kwargs: as ``transformers.PreTrainedModel.from_pretrained``.

        Raises:
            WeightsError: see :func:`~fourd_hub.weight_files.find_weights`, :func:`check_weights_fit`
                and :func:`check_finite`.
        """
        _refuse_pickle_loading(kwargs)
        if kwargs.get("state_dict") is not None:
            raise ValueError("fourd_hub loads the directory's own weights; load a state_dict with model.load_state_dict(strict=True)")
        weights = find_weights(directory)
        same_head = saved_class is None or issubclass(cls, saved_class)
        base = get_family(cls.config_class.model_type).load("base_model")
        if not same_head and saved_class is not base and cls is not base:
            return _from_another_task(cls, directory, base, saved_class, **kwargs)
        config = kwargs.get("config")
        if not isinstance(config, PreTrainedConfig):
            own_fields = set(cls.config_class.__dataclass_fields__) - set(PreTrainedConfig.__dataclass_fields__)
            overrides = {key: value for key, value in kwargs.items() if key in own_fields}
            config = cls.config_class.from_pretrained(directory, **overrides)
        loaded_keys = check_weights_fit(cls, config, weights, saved_class=saved_class)
        pending = _PendingLoad(weights, loaded_keys)
        token = _PENDING_LOAD.set(pending)
        try:
            # transformers builds the model on the meta device, then calls _load_pretrained_model (below).
            loaded = super().from_pretrained(directory, *model_args, use_safetensors=True, **kwargs)
        finally:
            _PENDING_LOAD.reset(token)
        if not pending.verified:  # a transformers path that did not read through _load_pretrained_model
            verify_checksums(weights)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True
        check_finite(model, weights, loaded_keys)
        return loaded

    @classmethod
    def _load_pretrained_model(cls, model, state_dict, checkpoint_files, load_config, *args, **kwargs):
        """transformers' weight loading into the meta-device ``model``; when it casts, from tensors we read (:func:`read_state`).

        transformers memory-maps each safetensors file and keeps it mapped until every tensor is
        loaded: loading a float32 file in bfloat16 peaked at 3x the bfloat16 model (the whole
        file resident, plus the model). When a weight's dtype differs from its parameter's (which
        the meta-device model already has), the files are read here instead, with plain reads,
        each tensor cast as it arrives and the checksums verified on the way, and transformers
        loads that state dict: renaming, fresh parts, tied weights, ``device_map`` and the
        loading report stay its own. Without a cast, transformers' memory map is kept: its
        tensors are the file's pages themselves (no copy, the model's size) and are faster to
        load than a copy. Settings the reader does not handle (quantization, DeepSpeed ZeRO-3,
        disk offload, tensor parallelism, keep-in-float32 plans) keep transformers' reading too.
        Either way the checksums are verified before any weight reaches the model.
        """
        pending = _PENDING_LOAD.get()
        if pending is not None and not pending.verified and _same_files(checkpoint_files, pending.weights):
            dtypes = _parameter_dtypes(model, pending)
            if state_dict is None and _reads_plainly(load_config, pending.weights, dtypes):
                state_dict = read_state(pending.weights, dtypes, wanted=set(pending.loaded_keys.values()))
            else:
                verify_checksums(pending.weights)
            pending.verified = True
        return super()._load_pretrained_model(model, state_dict, checkpoint_files, load_config, *args, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs):
        """Upload weights, ``config.json``, the video processor config and our model card to ``repo_id``.

        See :func:`fourd_hub.hub.push_model` for the arguments.
        """
        return push_model(self, repo_id, **kwargs)


# transformers' load report ("Some weights ... were not used ...") is logged by this logger.
_LOAD_REPORT_LOGGER = "transformers.modeling_utils"
_QUIET_LOAD_REPORT: contextvars.ContextVar[bool] = contextvars.ContextVar("fourd_hub_quiet_load_report", default=False)


class _DropLoadReport(pylogging.Filter):
    """Drops the load report's records while :func:`_quiet_load_report` is active in this context only
    (another thread's or task's loads keep theirs: no global verbosity is changed)."""

    def filter(self, record: pylogging.LogRecord) -> bool:
        return not _QUIET_LOAD_REPORT.get()


_LOAD_REPORT_FILTER = _DropLoadReport()


@contextmanager
def _quiet_load_report() -> Iterator[None]:
    """Silence transformers' load report for the loads made inside the block, in this context."""
    reporter = pylogging.getLogger(_LOAD_REPORT_LOGGER)
    if _LOAD_REPORT_FILTER not in reporter.filters:
        reporter.addFilter(_LOAD_REPORT_FILTER)
    token = _QUIET_LOAD_REPORT.set(True)
    try:
        yield
    finally:
        _QUIET_LOAD_REPORT.reset(token)


def _from_another_task(cls, directory: Path, base: type, saved_class: type, **kwargs):
    """A task model from a directory saved for another task: its backbone, and a fresh head.

    transformers' ``AutoModelForX`` rule, without loading a single weight of the other head (its
    names may coincide with ours): the backbone is loaded as strictly as any directory, this
    class is built on a copy of its config whose head hyper-parameters are this task's defaults,
    and the backbone's weights are moved in.

    The model is built on the meta device, so no second backbone is ever allocated: the loaded
    backbone's tensors become the model's (``assign=True``) and only the head gets memory, on
    the backbone's device, initialised by the model's own ``_init_weights`` in float32 and then
    cast to the backbone's dtype. Peak memory is the backbone plus the head (a float32 model
    built first and then cast held 3x a bfloat16 backbone).
    """
    with _quiet_load_report():  # the backbone's own load report would name parts this model does not have
        backbone = base._from_directory(directory, saved_class=saved_class, **kwargs)
    offloaded = sorted(name for name, tensor in [*backbone.named_parameters(), *backbone.named_buffers()] if tensor.is_meta)
    if offloaded:
        # accelerate's offload hooks belong to the backbone's modules, not to the model built here:
        # its offloaded weights would be re-initialised as if they were the fresh head.
        raise ValueError(
            f"{cls.__name__} from {directory} (saved as {saved_class.__name__}): a task model built from another "
            f"task's directory cannot keep offloaded weights ({_list(offloaded)} are on the meta device); load it "
            "without CPU / disk offload in device_map, or save it for this task first (save_pretrained)"
        )
    config = copy.deepcopy(backbone.config)
    if "readout" in cls.config_class.__dataclass_fields__:
        config.readout = None  # the other task's head hyper-parameters
    config.architectures = [cls.__name__]
    with torch.device("meta"):
        model = cls(config)
    target = model.base_model.state_dict()
    source = backbone.state_dict()
    missing = sorted(set(target) - set(source))
    if missing:
        raise WeightsError(f"{directory}: the backbone lacks {_list(missing)} that {cls.__name__} needs; re-convert the model")
    model.base_model.load_state_dict({key: source[key] for key in target}, strict=True, assign=True)
    _materialize_fresh_parts(model, backbone.device, backbone.dtype)
    if len({tensor.device for tensor in model.parameters()}) > 1:
        # A device_map split the backbone; its dispatch hooks stay with the backbone's modules, so
        # the model goes to one device, as transformers' own copy between tasks would leave it.
        model.to(backbone.device)
    model.eval()  # what from_pretrained returns
    fresh = sorted(key for key in model.state_dict() if not key.startswith(cls.base_model_prefix + "."))
    logger.warning(
        f"Some weights of {cls.__name__} were not initialized from the model checkpoint at {directory} "
        f"(saved as {saved_class.__name__}) and are newly initialized: {_list(fresh)}\n"
        "You should probably TRAIN this model on a down-stream task to be able to use it for predictions and inference."
    )
    return model


def _materialize_fresh_parts(model: PreTrainedModel, device: torch.device, dtype: torch.dtype) -> None:
    """Give every tensor of ``model`` still on the meta device (its fresh head) memory and fresh weights.

    Each module holding such a tensor gets real ones on ``device`` (float32 first, so the
    initialisers draw as they do in a normally built model), then ``model._init_weights``, then a
    cast of its floating-point tensors to ``dtype``. Raises ``RuntimeError`` naming a tensor the
    model's initialiser left unset (no weight of a loaded model is ever uninitialised memory).
    """
    for module in model.modules():
        own = [(kind, name, tensor) for kind, tensors in (("param", module._parameters), ("buffer", module._buffers))
               for name, tensor in tensors.items() if tensor is not None and tensor.is_meta]
        if not own:
            continue
        for kind, name, tensor in own:
            fresh_dtype = torch.float32 if tensor.is_floating_point() else tensor.dtype
            # NaN first: a tensor the initialiser does not set is caught below, not left as garbage.
            value = torch.full(tensor.shape, float("nan") if fresh_dtype.is_floating_point else 0, dtype=fresh_dtype, device=device)
            if kind == "param":
                module._parameters[name] = torch.nn.Parameter(value, requires_grad=tensor.requires_grad)
            else:
                module._buffers[name] = value
        model._init_weights(module)
        for kind, name, _ in own:
            tensors = module._parameters if kind == "param" else module._buffers
            value = tensors[name]
            if value.is_floating_point():
                if bool(torch.isnan(value).any()):
                    raise RuntimeError(
                        f"{type(model).__name__}._init_weights left {type(module).__name__}.{name} unset; "
                        "it must initialise every fresh weight"
                    )
                value.data = value.data.to(dtype)


#: When :func:`read_state` reads the files instead of transformers: ``"when-casting"`` (a weight's
#: dtype differs from its parameter's), ``"always"`` or ``"never"`` (for comparison: the tests,
#: ``benchmarks/load_memory.py``).
_PLAIN_READS = "when-casting"


@dataclass
class _PendingLoad:
    """What :meth:`FourDPreTrainedModel._from_directory` checked, for its ``_load_pretrained_model`` to read."""

    weights: WeightFiles
    loaded_keys: dict[str, str]
    verified: bool = False


_PENDING_LOAD: contextvars.ContextVar[_PendingLoad | None] = contextvars.ContextVar("fourd_hub_pending_load", default=None)


def _parameter_dtypes(model: torch.nn.Module, pending: _PendingLoad) -> dict[str, torch.dtype]:
    """File key -> the dtype of the (meta-device) parameter or buffer it loads into."""
    targets = model.state_dict()
    return {file_key: targets[key].dtype for key, file_key in pending.loaded_keys.items() if key in targets}


def _same_files(checkpoint_files, weights: WeightFiles) -> bool:
    """Whether transformers is about to read the very files that ``weights`` checked."""
    try:
        return bool(checkpoint_files) and sorted(Path(f).resolve() for f in checkpoint_files) == sorted(
            f.resolve() for f in weights.files
        )
    except (OSError, TypeError):
        return False


def _reads_plainly(load_config, weights: WeightFiles, dtypes: dict[str, torch.dtype]) -> bool:
    """Whether :func:`read_state` reads the files instead of transformers (see ``_PLAIN_READS``)."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    if _PLAIN_READS == "never" or sys.byteorder != "little":
        return False
    if load_config.hf_quantizer is not None or load_config.device_mesh is not None or is_deepspeed_zero3_enabled():
        return False
    if load_config.dtype_plan or (load_config.device_map is not None and "disk" in set(load_config.device_map.values())):
        return False
    if any(header.torch_dtype is None for header in weights.tensors.values()):
        return False
    casts = any(
        weights.tensors[key].is_float and dtype.is_floating_point and dtype != weights.tensors[key].torch_dtype
        for key, dtype in dtypes.items()
    )
    return casts or _PLAIN_READS == "always"


class _UnreadTensor:
    """A tensor of the files that the model does not load (another task's head): read only if asked for."""

    def __init__(self, header: TensorHeader):
        self.header = header
        self.shape = torch.Size(header.shape)
        self.dtype = header.torch_dtype

    def get_shape(self) -> list[int]:
        return list(self.header.shape)

    def __getitem__(self, index) -> torch.Tensor:
        tensor = torch.empty(self.header.shape, dtype=self.dtype)
        if tensor.numel():
            read_tensor_bytes(self.header, _bytes_of(tensor))
        return tensor[index]


def _bytes_of(tensor: torch.Tensor) -> memoryview:
    """A writable byte view of a contiguous CPU tensor's storage."""
    return memoryview(tensor.reshape(-1).view(torch.uint8).numpy())


def read_state(
    weights: WeightFiles, dtypes: dict[str, torch.dtype], wanted: set[str] | None = None
) -> dict[str, Any]:
    """The tensors of ``weights`` by file key, each read once with plain reads and cast as it arrives.

    Peak memory is the result plus, per shard being read, two tensors in the file's dtype (the one
    being read and cast, the previous one being hashed): a float32 checkpoint loaded in bfloat16
    holds the bfloat16 weights and a few float32 tensors, as no memory map keeps the file's pages.
    Checksums are verified while reading (:func:`~fourd_hub.weight_files.read_tensor_data`).

    Args:
        weights: the checked files.
        dtypes: file key -> the dtype to cast a floating-point tensor to (the parameter's); a tensor
            not named keeps the file's dtype. Integer tensors are never cast.
        wanted: the file keys to read (default all); the others are hashed but not kept, each
            stood in for by a placeholder that reads it if indexed (``tensor[...]``).

    Returns:
        file key -> CPU tensor of the file's shape (placeholders for the keys not wanted).

    Raises:
        WeightsError: a corrupted, truncated or unreadable file.
    """
    unknown = sorted({header.dtype for header in weights.tensors.values() if header.torch_dtype is None})
    if unknown:
        raise WeightsError(f"{weights.directory}: this torch {torch.__version__} has no dtype for {', '.join(unknown)}; upgrade torch")
    state: dict[str, Any] = {}

    def target_dtype(header: TensorHeader) -> torch.dtype:
        stored = header.torch_dtype
        wanted_dtype = dtypes.get(header.name, stored)
        return wanted_dtype if header.is_float and wanted_dtype.is_floating_point else stored

    def into(header: TensorHeader) -> memoryview | None:
        stored = header.torch_dtype
        if target_dtype(header) != stored:
            return None  # read into the scratch buffer, then cast
        tensor = state[header.name] = torch.empty(header.shape, dtype=stored)  # read straight into its storage
        return _bytes_of(tensor) if tensor.numel() else memoryview(bytearray(0))

    def consume(header: TensorHeader, data: memoryview) -> None:
        if header.name in state:
            return  # read in place
        stored = header.torch_dtype
        source = torch.frombuffer(data, dtype=stored) if len(data) else torch.empty(0, dtype=stored)
        state[header.name] = source.reshape(header.shape).to(target_dtype(header))  # a copy: the scratch is reused

    read_tensor_data(weights, consume, into=into, wanted=None if wanted is None else (lambda header: header.name in wanted))
    for name, header in weights.tensors.items():
        if name not in state:
            state[name] = _UnreadTensor(header)
    return state


def _converted_copy(entry: Any, hub_kwargs: dict[str, Any]) -> Path | None:
    """A directory of ``entry`` already on this machine (its Hub repo in the HF cache, or our conversion), else None."""
    from huggingface_hub import try_to_load_from_cache

    from .hub.cache import find_converted
    from .hub.settings import hub_org

    cache_dir, revision = hub_kwargs.get("cache_dir"), hub_kwargs.get("revision")
    found = try_to_load_from_cache(entry.hub_repo_id(hub_org()), "config.json", cache_dir=cache_dir, revision=revision)
    if isinstance(found, str):
        return Path(found).parent
    if revision is None:
        return find_converted(entry, cache_dir=cache_dir)
    return None


def _refuse_pickle_loading(kwargs: dict[str, Any]) -> None:
    """Drop ``use_safetensors`` from ``from_pretrained`` keywords (we always pass True), refusing False."""
    if kwargs.pop("use_safetensors", None) is False:
        raise ValueError("fourd_hub loads safetensors weights only (never pickles); drop use_safetensors=False")


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
        model = cls._from_directory(plan.directory, *model_args, saved_class=plan.saved_class, **kwargs)
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
    _refuse_pickle_loading(kwargs)
    return base_class.from_pretrained(backbone, use_safetensors=True, **kwargs)


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

    The files are checked as any model directory's (:func:`~fourd_hub.weight_files.find_weights`,
    checksums, floating-point dtypes, finite values); :func:`load_state_strict` then checks the
    head's names and shapes against the head built from the config.

    Raises:
        ValueError: not a head directory; WeightsError: unreadable weights, or weights of anything
            but the head.
    """
    directory = Path(directory)
    values, _, architecture = read_model_config(directory)
    if not values.get("use_pretrained_backbone"):
        raise ValueError(f"{directory} is a full {architecture} model, not a standalone head: load it with from_pretrained")
    weights = find_weights(directory)
    outside = sorted(key for key in weights.tensors if not key.startswith("head."))
    if outside:
        raise WeightsError(f"{directory} holds weights outside the head ({_list(outside, 4)}); re-convert the head file")
    not_float = sorted(f"{key} ({header.dtype})" for key, header in weights.tensors.items() if not header.is_float)
    if not_float:
        raise WeightsError(f"{directory}: head weights must be floating point; {_list(not_float, 4)} are not: re-convert the head file")
    state: dict[str, torch.Tensor] = {}
    for key, tensor in read_state(weights, {}).items():  # one pass of plain reads, checksums verified on the way
        if not _is_finite(tensor):
            raise WeightsError(f"{weights.tensors[key].file}: weight {key} holds NaN or inf; the file is corrupted: re-convert the head file")
        state[key[len("head.") :]] = tensor
    return values, state


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """``module.load_state_dict(state, strict=True)`` with our errors: every name, shape and dtype checked first.

    Raises:
        WeightsError: naming the missing, unexpected, mis-shaped or non-float tensors of ``what``.
    """
    expected = {key: _tensor_spec(tensor) for key, tensor in module.state_dict().items()}
    problems = fit_problems(expected, {key: _tensor_spec(tensor) for key, tensor in state.items()})
    if problems:
        raise WeightsError(f"{what} does not fit the model its config describes ({problems}); re-convert it")
    module.load_state_dict(state, strict=True)


# ----------------------------------------------------------------------------------------------
# Strict loading: the weights' headers against the model the config describes, before building it.

#: Parameter tensors a model may have beyond those of the file it loads (a fresh task head on a
#: backbone checkpoint); building stops past it, so an absurd layer count costs milliseconds.
PARAMETER_SLACK = 512


@contextmanager
def parameter_budget(limit: int, what: str) -> Iterator[None]:
    """Abort building modules once more than ``limit`` parameters have been registered.

    Built on the meta device, a model costs no memory whatever its widths, but a config claiming
    ``num_hidden_layers=10**6`` would still create a million blocks (minutes). This stops at the
    first parameter beyond what the weights can fill.

    Raises:
        WeightsError: inside the block, naming ``what`` and the limit.
    """
    count = 0

    def hook(module, name, parameter):
        nonlocal count
        if parameter is not None:
            count += 1
            if count > limit:
                raise WeightsError(
                    f"{what} describes a model with more than {limit} parameter tensors, far more than its weights hold: "
                    "config.json does not match the weights (a size such as num_hidden_layers was changed?); restore "
                    "config.json or re-convert the model"
                )

    handle = register_module_parameter_registration_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _matches(patterns, key: str) -> bool:
    return any(re.search(pattern, key) for pattern in patterns or ())


def _list(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


_TORCH_CODES = {
    torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16", torch.int32: "I32", torch.int64: "I64",
}  # fmt: skip

#: (shape, dtype name or safetensors code, is floating point): what is compared of one tensor.
TensorSpec = tuple[tuple[int, ...], str, bool]


def _tensor_spec(tensor: torch.Tensor) -> TensorSpec:
    code = _TORCH_CODES.get(tensor.dtype) or str(tensor.dtype).removeprefix("torch.")
    return tuple(tensor.shape), code, tensor.is_floating_point()


def fit_problems(
    expected: dict[str, TensorSpec],
    found: dict[str, TensorSpec],
    may_lack=lambda key: False,
    may_add=lambda key: False,
    file_name=lambda key: key,
) -> str:
    """What keeps ``found`` tensors from filling a model's ``expected`` ones ('' when nothing).

    Missing and unexpected names, other shapes, and a non-float tensor where the model's is
    floating point (or another integer type where it is an integer): the first few of each,
    named as the file names them (``file_name``).
    """
    missing = sorted(key for key in expected if key not in found and not may_lack(key))
    unexpected = sorted(file_name(key) for key in found if key not in expected and not may_add(key))
    wrong_shape, wrong_dtype = [], []
    for key in sorted(set(found) & set(expected)):
        (shape, code, is_float), (want_shape, want_code, want_float) = found[key], expected[key]
        if shape != want_shape:
            wrong_shape.append(f"{file_name(key)} is {list(shape)} in the file, {list(want_shape)} in the model")
        if is_float != want_float or (not want_float and code != want_code):
            wrong_dtype.append(f"{file_name(key)} is stored as {code}, the model's is {want_code}")
    labelled = (("missing weights", missing, 6), ("unexpected weights", unexpected, 6), ("shape mismatches", wrong_shape, 4), ("wrong dtypes", wrong_dtype, 4))
    return "; ".join(f"{label}: {_list(keys, limit)}" for label, keys, limit in labelled if keys)


def _build_on_meta(model_class: type, config: PreTrainedConfig, weights: WeightFiles) -> torch.nn.Module:
    """``model_class(config)`` on the meta device, within the parameter budget of ``weights``."""
    path = weights.directory / "config.json"
    try:
        with torch.device("meta"), parameter_budget(len(weights.tensors) + PARAMETER_SLACK, f"{path}"):
            return model_class(config)
    except (WeightsError, ValueError, TypeError):
        raise
    except (RuntimeError, AttributeError, KeyError, IndexError, OverflowError) as err:
        raise WeightsError(f"{path} does not describe a buildable {model_class.__name__}: {err}") from None


def check_weights_fit(model_class: type, config: PreTrainedConfig, weights: WeightFiles, *, saved_class: type | None = None) -> dict[str, str]:
    """Compare the weights' headers with the ``model_class`` that ``config`` describes, built on the meta device.

    transformers' prefix rule applies: a base model loads the backbone of a task checkpoint (the
    parts the task model's backbone never had, such as MooG's pixel decoder, are fresh), a task
    model on a backbone checkpoint gets a fresh head. Otherwise every weight must be present, used,
    of the model's shape, and floating point where the model's is.

    Args:
        model_class: the class to be loaded.
        config: its configuration.
        weights: the directory's checked weight files.
        saved_class: the class the directory was saved as, if known.

    Returns:
        model key -> file key of every weight loaded from the file.

    Raises:
        WeightsError: naming every missing, unexpected, mis-shaped and wrongly typed tensor (the
            first few of each), or the parameter budget exceeded.
    """
    directory = weights.directory
    model = _build_on_meta(model_class, config, weights)
    expected = {key: _tensor_spec(tensor) for key, tensor in model.state_dict().items()}
    prefix = model_class.base_model_prefix + "."
    model_is_base = not hasattr(model, model_class.base_model_prefix)
    file_has_prefix = any(key.startswith(prefix) for key in weights.tensors)
    fresh: set[str] = set()  # model keys initialised instead of loaded
    if model_is_base and file_has_prefix:  # the backbone of a task checkpoint; its head is not read
        file_keys = {key[len(prefix):]: key for key in weights.tensors if key.startswith(prefix)}
        if saved_class is not None and saved_class is not model_class:
            saved = _build_on_meta(saved_class, config, weights)
            had = {key[len(prefix):] for key in saved.state_dict() if key.startswith(prefix)}
            fresh = {key for key in expected if key not in had}
    elif not model_is_base and not file_has_prefix:  # a task model on a backbone checkpoint
        file_keys = {prefix + key: key for key in weights.tensors}
        fresh = {key for key in expected if not key.startswith(prefix)}
    else:
        file_keys = {key: key for key in weights.tensors}
    found = {key: (weights.tensors[file_key].shape, weights.tensors[file_key].dtype, weights.tensors[file_key].is_float)
             for key, file_key in file_keys.items()}
    problems = fit_problems(
        expected,
        found,
        may_lack=lambda key: key in fresh or _matches(model_class._keys_to_ignore_on_load_missing, key),
        may_add=lambda key: _matches(model_class._keys_to_ignore_on_load_unexpected, key),
        file_name=lambda key: file_keys[key],
    )
    if problems:
        raise WeightsError(
            f"{directory}: the weights do not fit the {model_class.__name__} its config.json describes ({problems}); "
            "the config or the weights were changed: restore them, or re-convert the model"
        )
    return {key: file_key for key, file_key in file_keys.items() if key in expected}


def _is_finite(tensor: torch.Tensor) -> bool:
    """No NaN or inf in ``tensor`` (any dtype, any shape)."""
    if not tensor.is_floating_point() or tensor.numel() == 0:
        return True
    # The extremes propagate NaN and are +-inf if any element is: one reduction and no mask tensor
    # (torch.isfinite(t).all() is ~15x slower on CPU: 9 of the 18 s of a 4DS-H bfloat16 load).
    return all(bool(torch.isfinite(extreme)) for extreme in torch.aminmax(tensor.detach()))


def check_finite(model: torch.nn.Module, weights: WeightFiles, loaded_keys: dict[str, str]) -> None:
    """Refuse NaN or inf in any floating-point weight of ``model`` that was loaded from ``weights``.

    Args:
        model: the loaded model.
        weights: the files it was loaded from.
        loaded_keys: model key -> file key of the weights read from them (what
            :func:`check_weights_fit` returns); the others are fresh.

    Raises:
        WeightsError: naming the tensor and its file.
    """
    state = model.state_dict()
    for key, file_key in loaded_keys.items():
        tensor = state[key]
        if not tensor.is_floating_point() or tensor.device.type == "meta":
            continue
        if not _is_finite(tensor):
            raise WeightsError(
                f"{weights.tensors[file_key].file}: weight {file_key} holds NaN or inf; the file is corrupted: re-download or re-convert the model"
            )
