"""The family conformance suite: every registered family, every task it declares, checked the same way.

Like timm's ``test_models.py`` or transformers' ``ModelTesterMixin``, but parametrised over
:mod:`fourd_hub.registry`: a new family that forgets a piece (a task model, its processor, its
converter's detector, its card data, an Auto registration) fails here without any test written
for it. The checks are plain functions so that a test can run them on a deliberately broken family.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import fourd_hub
from conftest import E2E_VIDEO, load_npz
from fourd_hub.catalog import CATALOG, CatalogEntry, InputSpec
from fourd_hub.modeling_utils import FourDConfig, FourDPreTrainedModel
from fourd_hub.processing import FourDVideoProcessor
from fourd_hub.registry import FAMILIES, FamilySpec, families, import_object, register_family, unregister_family
from fourd_hub.tasks import TASKS, get_task

FAMILY_NAMES = [spec.name for spec in families()]
FAMILY_TASKS = [(spec.name, task) for spec in families() for task in spec.tasks]
CARD_INTERFACE = ("PAPER",)
# Task arguments of a pipeline call, per task (pixel coordinates in the test video).
PIPELINE_CALLS = {"point-tracking": {"points": [(0, 20.0, 20.0)]}, "box-tracking": {"boxes": [(0, 10.0, 10.0, 40.0, 30.0)]}}
# Label propagation: a first-frame mask of the test video's size, keypoints; a small processing size
# (a multiple of every debug config's patch).
_FIRST_MASK = np.zeros(E2E_VIDEO[1:3], np.uint8)
_FIRST_MASK[10:40, 20:60] = 1
PIPELINE_CALLS["video-object-segmentation"] = {"mask": _FIRST_MASK, "size": (32, 48)}
PIPELINE_CALLS["keypoint-tracking"] = {"keypoints": [(20.0, 20.0), (70.0, 50.0)], "size": (32, 48)}


# ----------------------------------------------------------------------------------------------
# The checks


def check_family_pieces(spec: FamilySpec) -> None:
    """Every piece the registry names exists and is of the right kind."""
    config_class = spec.load("config_class")
    assert issubclass(config_class, FourDConfig) and config_class.model_type == spec.name, "config_class"
    base_pretrained = spec.load("pretrained_model")
    assert issubclass(base_pretrained, FourDPreTrainedModel) and base_pretrained.config_class is config_class, "pretrained_model"
    base = spec.load("base_model")
    assert issubclass(base, base_pretrained), "base_model"
    assert spec.tasks, "a family runs at least one task"
    for task in spec.tasks:
        assert task in TASKS, f"unknown task {task!r}"
        assert issubclass(spec.task_model(task), base_pretrained), f"task model of {task}"
    assert "video-feature-extraction" in spec.tasks and spec.task_model("video-feature-extraction") is base
    assert isinstance(spec.load("presets"), dict) and spec.load("presets"), "presets"
    assert issubclass(spec.load("processor_class"), FourDVideoProcessor), "processor_class"
    converter = spec.load("converter")
    assert callable(getattr(converter, "detect", None)) and callable(getattr(converter, "plan", None)), "converter"
    assert isinstance(getattr(converter, "MARKERS", None), str), "converter.MARKERS (what detect() looks for)"
    card = spec.load("card")
    for name in CARD_INTERFACE:
        assert hasattr(card, name), f"card data lacks {name}"
    assert isinstance(spec.load("debug_config")(), config_class), "debug_config"
    if spec.pretraining_model is not None:
        assert issubclass(spec.load("pretraining_model"), base_pretrained), "pretraining_model"
        # Pretraining draws each clip's random inputs from (seed, sample index) through the model class.
        assert callable(getattr(spec.load("pretraining_model"), "clip_random_inputs", None)), "pretraining_model.clip_random_inputs"
    from fourd_hub.training.recipes import RECIPES

    for name in spec.recipes:
        assert RECIPES[name].family == spec.name, f"recipe {name}"
    if "video-reconstruction" in spec.tasks:
        assert callable(getattr(spec.task_model("video-reconstruction"), "reconstruct_video", None)), "reconstruct_video"
    for task in spec.standalone_head_tasks:
        assert hasattr(spec.task_model(task), "from_backbone"), f"standalone {task} heads need from_backbone"
    if spec.recurrent:
        assert callable(getattr(base, "initial_state", None)), "a recurrent base model draws its initial state"


def build_task_model(spec: FamilySpec, task: str):
    torch.manual_seed(0)
    return spec.task_model(task)(spec.load("debug_config")()).eval()


def check_round_trip(spec: FamilySpec, task: str, directory: Path) -> None:
    """save_pretrained, then every loader gives the same class and the same weights."""
    model = build_task_model(spec, task)
    model.save_pretrained(directory)
    for loaded in (fourd_hub.from_pretrained(directory), type(model).from_pretrained(directory)):
        assert type(loaded) is type(model)
        expected, got = model.state_dict(), loaded.state_dict()
        assert expected.keys() == got.keys()
        assert all(torch.equal(expected[k], got[k]) for k in expected)


# ----------------------------------------------------------------------------------------------
# The suite


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_family_declares_every_piece(family):
    check_family_pieces(FAMILIES[family])


@pytest.mark.parametrize(("family", "task"), FAMILY_TASKS)
def test_save_load_round_trip(family, task, tmp_path):
    check_round_trip(FAMILIES[family], task, tmp_path / "model")


def _head_tasks(spec: FamilySpec) -> list[str]:
    base = spec.load("base_model")
    return [task for task in spec.tasks if spec.task_model(task) is not base and not getattr(spec.task_model(task), "loads_from_base_model", False)]


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_building_task_models_leaves_the_config_as_it_was(family):
    spec = FAMILIES[family]
    config = spec.load("debug_config")()
    before = config.to_dict()
    for task in _head_tasks(spec):
        spec.task_model(task)(config)  # every task's model from the one config, in turn
        assert config.to_dict() == before, f"building the {task} model changed the config"


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_a_directory_saved_for_one_task_loads_as_another_with_a_fresh_head(family, tmp_path, caplog):
    """AutoModelForX's rule: the backbone's weights are used, the other task's head is not read."""
    spec = FAMILIES[family]
    saved_task, *others = _head_tasks(spec)
    model = build_task_model(spec, saved_task)
    model.save_pretrained(tmp_path / "model")
    prefix = model.base_model_prefix
    loaded_tasks = []
    for task in others:
        cls = spec.task_model(task)
        with caplog.at_level("WARNING"):
            try:
                loaded = cls.from_pretrained(tmp_path / "model")
            except ValueError as err:  # the task's default head does not fit this tiny config: said so
                assert "readout" in str(err) or "head" in str(err) or "divisible" in str(err), err
                continue
        assert type(loaded) is cls
        backbone, got = getattr(model, prefix).state_dict(), getattr(loaded, prefix).state_dict()
        assert all(torch.equal(got[k], backbone[k]) for k in got)
        assert f"Some weights of {cls.__name__} were not initialized" in caplog.text and "newly initialized" in caplog.text
        loaded_tasks.append(task)
    assert loaded_tasks, f"no other task of {family} loaded from the {saved_task} directory"


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_auto_classes_load_in_a_fresh_process(family, tmp_path):
    spec = FAMILIES[family]
    build_task_model(spec, "video-feature-extraction").save_pretrained(tmp_path / "model")
    autos = [(get_task(task).auto_class, spec.task_model(task).__name__) for task in spec.tasks if get_task(task).auto_class]
    script = (
        "import sys, transformers, fourd_hub\n"
        "directory = sys.argv[1]\n"
        "assert type(transformers.AutoConfig.from_pretrained(directory)).__name__ == sys.argv[2]\n"
        f"for auto, name in {autos!r}:\n"
        "    if auto == 'AutoModel':\n"
        "        assert type(getattr(transformers, auto).from_pretrained(directory)).__name__ == name, auto\n"
        "    else:\n"
        "        assert getattr(transformers, auto)._model_mapping[type(transformers.AutoConfig.from_pretrained(directory))].__name__ == name\n"
        "print('ok')\n"
    )
    config_name = spec.load("config_class").__name__
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "model"), config_name], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_loads_by_catalog_name_from_an_offline_cache(family, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from fourd_hub.hub import commit_to_cache, converted_revision, repo_cache_folder

    spec = FAMILIES[family]
    model = build_task_model(spec, "video-feature-extraction")
    entry = CatalogEntry(
        name=f"{family}-conformance-test", family=family, architecture=type(model).__name__,
        preset=next(iter(spec.load("presets"))), description="conformance", num_parameters=model.num_parameters(),
        input_spec=InputSpec(num_frames=model.config.num_frames, image_size=tuple(model.config.image_size)),
        original_file=f"{family}-conformance.npz",
    )
    monkeypatch.setitem(CATALOG, entry.name, entry)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model.save_pretrained(tmp_path / "staging")
    commit_to_cache(tmp_path / "staging", repo_cache_folder(entry), converted_revision(entry))
    loaded = fourd_hub.from_pretrained(entry.name)
    assert type(loaded) is type(model) and loaded.config._name_or_path == entry.name
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def _reference_checkpoints(reference: Path, cases: dict, spec: FamilySpec) -> list[Path]:
    names = [name for name, case in cases.items() if case.get("model") == spec.display_name]
    return [path for name in names for path in sorted(reference.glob(f"{name}*checkpoint.npz"))]


@pytest.mark.parity
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_conversion_detects_the_family_of_its_reference_checkpoints(family, reference, cases):
    from fourd_hub.conversion.convert import _plan_from_shapes

    spec = FAMILIES[family]
    checkpoints = _reference_checkpoints(reference, cases, spec)
    assert checkpoints, f"no reference checkpoint of {spec.display_name}"
    for path in checkpoints:
        shapes = {k: v.shape for k, v in load_npz(path).items()}
        detected = [other.name for other in families() if other.load("converter").detect(shapes)]
        if spec.standalone_head_tasks and not detected:
            continue  # a head file: no backbone for any family to detect
        assert detected == [family], f"{path.name}: {detected}"
        _, config, model_class, _ = _plan_from_shapes(shapes, None, None, None)
        assert config.model_type == family and model_class in spec.model_classes().values()


@pytest.mark.e2e
@pytest.mark.parametrize(("family", "task"), [(f, t) for f, t in FAMILY_TASKS if get_task(t).has_pipeline])
def test_pipeline_runs_end_to_end(family, task, video, tmp_path):
    path, frames = video
    spec = FAMILIES[family]
    build_task_model(spec, task).save_pretrained(tmp_path / "model")
    result = fourd_hub.pipeline(task, model=tmp_path / "model", progress=False)(path, end=6, **PIPELINE_CALLS.get(task, {}))
    assert list(result.frame_indices) == list(range(6)) and tuple(result.image_size) == frames.shape[1:3]
    assert result.task == task
    saved = result.save(tmp_path / ("out.npz"))
    with np.load(saved, allow_pickle=False) as arrays:
        assert all(np.isfinite(arrays[key]).all() for key in arrays.files if arrays[key].dtype.kind == "f")


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_card_renders_and_its_snippet_runs(family, tmp_path):
    from video_factory import moving_shapes_frames, write_test_video

    from fourd_hub.cards import card_metadata, render_custom_model_card

    spec = FAMILIES[family]
    model = build_task_model(spec, "video-feature-extraction")
    model.save_pretrained(tmp_path / "model")
    card = render_custom_model_card(model.config, architecture=type(model).__name__, repo_id=str(tmp_path / "model"))
    assert card_metadata(card)["library_name"] == "fourd_hub"
    (snippet,) = re.findall(r"```python\n(.*?)```", card, re.DOTALL)
    write_test_video(tmp_path / "clip.mp4", moving_shapes_frames(6, 40, 48), fps=6)
    done = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


# ----------------------------------------------------------------------------------------------
# The suite's own test: a family that lacks a piece fails it


@pytest.mark.parametrize(
    "broken",
    [
        {"card": "fourd_hub.models.fourds.no_such_card_module"},
        {"task_models": {"video-feature-extraction": "fourd_hub.models.moog.modeling_moog.MooGModel"}},
        {"processor_class": "fourd_hub.models.fourds.modeling_fourds.FourDSModel"},
        {"converter": "fourd_hub.models.fourds.configuration_fourds"},
        {"recipes": ("debug-moog",)},
    ],
    ids=["no-card-data", "foreign-task-model", "not-a-processor", "no-detector", "foreign-recipe"],
)
def test_the_suite_fails_for_a_family_missing_a_piece(broken):
    spec = dataclasses.replace(FAMILIES["fourds"], name="fourds", **broken)
    with pytest.raises((AssertionError, ImportError)):
        check_family_pieces(spec)


def test_a_registered_broken_family_fails_the_suite():
    spec = dataclasses.replace(FAMILIES["fourds"], name="broken4d", display_name="Broken")
    register_family(spec)
    try:
        with pytest.raises(AssertionError, match="config_class"):
            check_family_pieces(FAMILIES["broken4d"])  # its config's model_type is not "broken4d"
    finally:
        unregister_family("broken4d")
    assert "broken4d" not in FAMILIES and import_object("fourd_hub.registry.FAMILIES") is FAMILIES


def test_the_auto_class_table_of_docs_hub_lists_every_registration():
    """docs/hub.md's table of Auto classes is what _auto.register_auto_classes registers, family by family."""
    table = {}
    for line in (Path(__file__).resolve().parents[1] / "docs" / "hub.md").read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if line.startswith("| `Auto"):
            table[cells[0]] = cells[1:]
    names = [spec.name for spec in families()]
    for spec in families():
        column = names.index(spec.name)
        registrations = [("AutoModel", spec.base_model)]
        registrations += [(get_task(t).auto_class, p) for t, p in spec.task_models.items() if get_task(t).auto_class]
        registrations += list(spec.auto_classes.items())
        for auto_name, path in registrations:
            class_name = path.rpartition(".")[2]
            assert table.get(auto_name, [""] * len(names))[column] == class_name, f"docs/hub.md: {auto_name} -> {class_name} ({spec.name})"
