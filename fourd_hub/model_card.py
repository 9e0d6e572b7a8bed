"""Model cards (the ``README.md`` of a Hub repo) generated from the catalog.

Every catalog entry gets a card from :func:`render_model_card`: YAML metadata the Hub reads
(library, license, tags, pipeline tag, base model, and a ``fourd_hub:`` mapping with the catalog
facts and the conversion provenance), what the model is, its input, the paper's results where the
paper has them, a usage snippet that runs, provenance, licenses and citations. ``model_cards/``
holds the rendered cards (:func:`write_model_cards`, CLI ``fourd-hub model-cards``) and a test
keeps them equal to the catalog. Models that are not a catalog entry as released (fine-tuned,
retrained, converted with a custom config) get :func:`render_custom_model_card`.

Rendering is deterministic: no dates, and a version only when the provenance records one.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ._files import write_text_atomic
from .catalog import CATALOG, CODE_LICENSE, DEFAULT_HUB_ORG, WEIGHTS_LICENSE, CatalogEntry
from .fourds import FOURDS_SIZES, FourDSConfig
from .moog import MooGConfig

__all__ = [
    "ConversionProvenance",
    "PAPER_RESULTS",
    "card_file_name",
    "card_metadata",
    "read_provenance",
    "render_custom_model_card",
    "render_model_card",
    "write_model_cards",
]


@dataclass(frozen=True)
class ConversionProvenance:
    """Where converted weights came from (written into the card's YAML under `fourd_hub:` so it is machine-readable).

    Attributes:
        original_file: name of the original ``.npz``.
        original_url: where it is published, if known.
        original_sha256: sha256 of the original file, if computed.
        layout: the key layout the converter found.
        model_class: the fourd_hub class the weights were written for.
        num_parameters: parameters written.
        dtype: ``"float32"``, ``"bfloat16"``, ...
        fourd_hub_version: the fourd_hub version that converted the file.
    """

    original_file: str
    original_url: str | None
    original_sha256: str | None
    layout: str | None
    model_class: str
    num_parameters: int
    dtype: str
    fourd_hub_version: str

    def to_metadata(self) -> dict:
        """The provenance as a plain dict (YAML-safe), in field order."""
        return dataclasses.asdict(self)

    @classmethod
    def from_metadata(cls, values: dict) -> "ConversionProvenance | None":
        """The provenance in ``values``: a card's metadata (:func:`card_metadata`) or :meth:`to_metadata`'s dict.

        Returns:
            ``None`` when the card holds no provenance.

        Raises:
            ValueError: the provenance is there but lacks fields or is not a mapping.
        """
        if "original_file" not in values:
            facts = values.get("fourd_hub")
            values = facts.get("provenance") if isinstance(facts, dict) else None
            if values is None:
                return None
        if not isinstance(values, dict):
            raise ValueError(f"the card's fourd_hub.provenance must be a mapping, got {type(values).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [name for name in names if name not in values]
        if missing:
            raise ValueError(f"the card's provenance lacks {', '.join(missing)}")
        # Unknown keys are ignored so that cards written by later versions still read.
        return cls(**{name: values[name] for name in names})


# ----------------------------------------------------------------------------------------------
# The 4DS paper (arXiv 2412.15212): Table 1 and the 4DS rows of Tables 2 and 3.

# Table 1 as printed: width, depth, MLP, heads, parameters (M), total parameters with the MAE
# decoder (M).
_TABLE_1: dict[str, tuple[int, int, int, int, str, str]] = {
    "S": (384, 12, 1536, 6, "23", "24"),
    "B": (768, 12, 3072, 12, "88", "91"),
    "L": (1024, 24, 4096, 16, "306", "310"),
    "H": (1280, 32, 5120, 16, "634", "639"),
    "G": (1664, 48, 8192, 16, "1,848", "1,854"),
    "e": (1792, 56, 15360, 16, "3,811", "3,817"),
    "j": (4096, 64, 32768, 32, "21,495", "21,509"),
}

# Per 4DS size: "frozen" = Table 2 (attention readouts on a frozen backbone), "finetuned" =
# Table 3 (20k steps of fine-tuning, nothing frozen). Metrics: ssv2_top1 (SSv2 top-1 %),
# re10k_epe (RealEstate10k mean end-point error), perception_test_aj (Perception Test point
# tracking average Jaccard %), scannet_absrel (ScanNet depth AbsRel), waymo_iou (Waymo Open box
# tracking mean IoU %). scannet_absrel is the TRUE AbsRel: the paper prints AbsRel x 10, so 2.23
# printed is 0.223 here (typed as the quotient, not computed, to keep the decimals exact).
PAPER_RESULTS: dict[str, dict[str, dict[str, float]]] = {
    "S": {
        "frozen": {"ssv2_top1": 40.8, "re10k_epe": 0.73, "perception_test_aj": 75.9, "scannet_absrel": 0.223, "waymo_iou": 69.6},
        "finetuned": {"ssv2_top1": 40.3, "re10k_epe": 0.72, "perception_test_aj": 75.2, "scannet_absrel": 0.204, "waymo_iou": 69.1},
    },
    "B": {
        "frozen": {"ssv2_top1": 49.6, "re10k_epe": 0.51, "perception_test_aj": 78.9, "scannet_absrel": 0.164, "waymo_iou": 72.7},
        "finetuned": {"ssv2_top1": 52.4, "re10k_epe": 0.48, "perception_test_aj": 79.5, "scannet_absrel": 0.151, "waymo_iou": 71.8},
    },
    "L": {
        "frozen": {"ssv2_top1": 57.8, "re10k_epe": 0.33, "perception_test_aj": 81.5, "scannet_absrel": 0.124, "waymo_iou": 75.9},
        "finetuned": {"ssv2_top1": 61.8, "re10k_epe": 0.37, "perception_test_aj": 81.1, "scannet_absrel": 0.106, "waymo_iou": 74.8},
    },
    "H": {
        "frozen": {"ssv2_top1": 60.4, "re10k_epe": 0.29, "perception_test_aj": 81.8, "scannet_absrel": 0.115, "waymo_iou": 76.1},
        "finetuned": {"ssv2_top1": 64.9, "re10k_epe": 0.36, "perception_test_aj": 81.9, "scannet_absrel": 0.094, "waymo_iou": 75.7},
    },
    "G": {
        "frozen": {"ssv2_top1": 63.1, "re10k_epe": 0.27, "perception_test_aj": 82.7, "scannet_absrel": 0.102, "waymo_iou": 77.4},
        "finetuned": {"ssv2_top1": 67.4, "re10k_epe": 0.29, "perception_test_aj": 83.0, "scannet_absrel": 0.081, "waymo_iou": 77.2},
    },
    "e": {
        "frozen": {"ssv2_top1": 64.6, "re10k_epe": 0.27, "perception_test_aj": 82.4, "scannet_absrel": 0.094, "waymo_iou": 78.0},
        "finetuned": {"ssv2_top1": 68.9, "re10k_epe": 0.28, "perception_test_aj": 82.9, "scannet_absrel": 0.075, "waymo_iou": 77.5},
    },
    "j": {
        "frozen": {"ssv2_top1": 68.2, "re10k_epe": 0.24, "perception_test_aj": 83.4, "scannet_absrel": 0.085, "waymo_iou": 78.3},
        "finetuned": {"ssv2_top1": 72.9, "re10k_epe": 0.26, "perception_test_aj": 84.2, "scannet_absrel": 0.063, "waymo_iou": 78.0},
    },
}

# (metric, column header with its direction, format): the decimals the paper prints (one more
# for AbsRel, which the paper prints x 10).
_METRICS = (
    ("ssv2_top1", "SSv2 top-1 % ↑", "{:.1f}"),
    ("re10k_epe", "RE10k mean end-point error ↓", "{:.2f}"),
    ("perception_test_aj", "Perception Test point tracking AJ % ↑", "{:.1f}"),
    ("scannet_absrel", "ScanNet depth AbsRel ↓", "{:.3f}"),
    ("waymo_iou", "Waymo Open box tracking mean IoU % ↑", "{:.1f}"),
)
_EVALUATIONS = (("frozen", "frozen (Table 2)"), ("finetuned", "fine-tuned 20k steps (Table 3)"))

_FOURDS_ARXIV = "2412.15212"
_MOOG_ARXIV = "2411.05927"

# Author lists as printed in ../shared/papers: the 4DS paper's title page, and its reference [68]
# for MooG.
_FOURDS_BIBTEX = """@misc{carreira2024scaling,
  title = {Scaling 4D Representations},
  author = {Carreira, João and Gokay, Dilara and King, Michael and Zhang, Chuhan and Rocco, Ignacio and Mahendran, Aravindh and Keck, Thomas Albert and Heyward, Joseph and Koppula, Skanda and Pot, Etienne and Erdogan, Goker and Hasson, Yana and Yang, Yi and Greff, Klaus and Le Moing, Guillaume and van Steenkiste, Sjoerd and Zoran, Daniel and Hudson, Drew A. and Vélez, Pedro and Polanía, Luisa and Friedman, Luke and Duvarney, Chris and Goroshin, Ross and Allen, Kelsey and Walker, Jacob and Kabra, Rishabh and Aboussouan, Eric and Sun, Jennifer and Kipf, Thomas and Doersch, Carl and Pătrăucean, Viorica and Damen, Dima and Luc, Pauline and Sajjadi, Mehdi S. M. and Zisserman, Andrew},
  year = {2024},
  eprint = {2412.15212},
  archivePrefix = {arXiv}
}"""
_MOOG_BIBTEX = """@inproceedings{vansteenkiste2024moving,
  title = {Moving Off-the-Grid: Scene-Grounded Video Representations},
  author = {van Steenkiste, Sjoerd and Zoran, Daniel and Yang, Yi and Rubanova, Yulia and Kabra, Rishabh and Doersch, Carl and Gokay, Dilara and Heyward, Joseph and Pot, Etienne and Greff, Klaus and Hudson, Drew A. and Keck, Thomas Albert and Carreira, João and Dosovitskiy, Alexey and Sajjadi, Mehdi S. M. and Kipf, Thomas},
  booktitle = {NeurIPS},
  year = {2024},
  eprint = {2411.05927},
  archivePrefix = {arXiv}
}"""


# ----------------------------------------------------------------------------------------------
# What each architecture does: our task tag, the Hub's closest pipeline tag, the fourd_hub
# pipeline and the CLI command that run it.


@dataclass(frozen=True)
class _Task:
    tag: str
    pipeline_tag: str | None
    pipeline: str | None
    cli: str | None


_FEATURES = _Task("feature-extraction", "feature-extraction", "video-feature-extraction", "features")
_TASKS: dict[str, _Task] = {
    "FourDSModel": _FEATURES,
    "MooGModel": _FEATURES,
    "FourDSForDepthEstimation": _Task("depth-estimation", "depth-estimation", "depth-estimation", "depth-estimation"),
    "MooGForDepthEstimation": _Task("depth-estimation", "depth-estimation", "depth-estimation", "depth-estimation"),
    "FourDSForPointTracking": _Task("point-tracking", "keypoint-detection", "point-tracking", "point-tracking"),
    "MooGForPointTracking": _Task("point-tracking", "keypoint-detection", "point-tracking", "point-tracking"),
    "FourDSForBoxTracking": _Task("box-tracking", "object-detection", "box-tracking", "box-tracking"),
    "MooGForBoxTracking": _Task("box-tracking", "object-detection", "box-tracking", "box-tracking"),
    # The Hub has no camera-pose or next-frame-prediction tag: those cards carry none.
    "FourDSForCameraPoseEstimation": _Task("camera-pose-estimation", None, "camera-pose-estimation", "camera-pose-estimation"),
    "FourDSForVideoClassification": _Task("video-classification", "video-classification", None, None),
    "MooGForNextFramePrediction": _Task("video-reconstruction", None, "video-reconstruction", "video-reconstruction"),
}
_RECONSTRUCTION = _TASKS["MooGForNextFramePrediction"]
# The released MooG head files hold only the readout; the hub layer attaches their base backbone.
_STANDALONE_HEADS = {"MooGForPointTracking", "MooGForBoxTracking"}


def _task(architecture: str, config: Any = None) -> _Task:
    if architecture not in _TASKS:
        raise ValueError(f"no model card support for architecture {architecture!r}; known: {', '.join(_TASKS)}")
    # A MooG backbone with its pixel decoder (as released) is best shown predicting frames.
    if architecture == "MooGModel" and isinstance(config, MooGConfig) and config.decoder is not None:
        return dataclasses.replace(_FEATURES, pipeline=_RECONSTRUCTION.pipeline, cli=_RECONSTRUCTION.cli)
    return _TASKS[architecture]


def _family_tag(family: str) -> str:
    return "moog" if family == "moog" else "4ds"


def _hub_repo(name: str) -> str:
    """A catalog name as its hub repo id; anything else (a repo id, a path) unchanged."""
    entry = CATALOG.get(name) or CATALOG.get(name.lower())
    return entry.hub_repo_id(DEFAULT_HUB_ORG) if entry is not None else name


def _front_matter(metadata: dict) -> str:
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---\n"


def _input_metadata(num_frames: int | None, image_size: Any) -> dict:
    values: dict[str, Any] = {}
    if num_frames is not None:
        values["num_frames"] = int(num_frames)
    if image_size is not None:
        values["image_size"] = [int(s) for s in image_size]
    values["value_range"] = [0.0, 1.0]
    return values


# ----------------------------------------------------------------------------------------------
# Usage snippets


def _fmt(value: float) -> str:
    return f"{float(value):.1f}"


def _usage_python(
    architecture: str,
    model_id: str,
    num_frames: int,
    image_size: Any,
    config: Any,
    load: str | None = None,
    imports: tuple[str, ...] = (),
    pipeline_backbone: str | None = None,
) -> str:
    """A script that loads the model, runs it on a random clip, then runs its pipeline on clip.mp4."""
    height, width = (int(s) for s in image_size)
    task = _task(architecture, config)
    moog = architecture.startswith("MooG")
    names = [architecture] + (["pipeline"] if task.pipeline else [])
    lines = ["import torch", *imports, f"from fourd_hub import {', '.join(names)}", ""]
    lines.append(load or f'model = {architecture}.from_pretrained("{model_id}").eval()')
    lines.append(f"video = torch.rand(1, {num_frames}, 3, {height}, {width})  # (B, T, C, H, W), RGB in [0, 1]")
    arguments = ["pixel_values_videos=video"]
    if architecture.endswith("PointTracking"):
        points = f"[[[{_fmt(width / 4)}, {_fmt(height / 4)}], [{_fmt(3 * width / 4)}, {_fmt(height / 2)}]]]"
        lines.append(f"queries = torch.tensor({points})  # (B, Q, 2): pixel (x, y) in the first frame")
        arguments.append("query_points=queries")
    elif architecture.endswith("BoxTracking"):
        box = f"[[[{_fmt(width / 4)}, {_fmt(height / 4)}, {_fmt(3 * width / 4)}, {_fmt(3 * height / 4)}]]]"
        lines.append(f"queries = torch.tensor({box})  # (B, Q, 4): pixel (x1, y1, x2, y2) in the first frame")
        arguments.append("query_boxes=queries")
    if moog:
        # MooG draws its initial state at random: a seeded generator makes the run repeatable.
        arguments.append("generator=torch.Generator().manual_seed(0)")
    lines += ["with torch.no_grad():", f"    outputs = model({', '.join(arguments)})"]
    lines += _forward_prints(architecture, config, num_frames, height, width)
    if task.pipeline:
        backbone = f', backbone="{pipeline_backbone}"' if pipeline_backbone else ""
        call = {
            "point-tracking": '"clip.mp4", points=[(0, 32.0, 32.0)]',
            "box-tracking": '"clip.mp4", boxes=[(0, 16.0, 16.0, 48.0, 48.0)]',
        }.get(task.pipeline, '"clip.mp4"')
        lines += ["", f'result = pipeline("{task.pipeline}", model="{model_id}"{backbone})({call})']
        lines.append(_pipeline_print(task.pipeline, moog))
    return "\n".join(lines)


def _forward_prints(architecture: str, config: Any, num_frames: int, height: int, width: int) -> list[str]:
    """``print`` lines reading the output field(s) of ``architecture``, with the shapes they show."""
    if architecture == "FourDSModel":
        patch = list(getattr(config, "patch_size", None) or (2, 16, 16))
        grid = (height // patch[1]) * (width // patch[2])
        tokens = (num_frames // patch[0]) * grid
        dim = getattr(config, "hidden_size", "D")
        return [
            f"print(outputs.readout_features.shape)   # (1, {num_frames}, {grid}, {dim}): per-frame features the readouts read",
            f"print(outputs.last_hidden_state.shape)  # (1, {tokens}, {dim}): the last block's tokens",
        ]
    if architecture == "MooGModel":
        tokens, dim = getattr(config, "num_tokens", "N"), getattr(config, "hidden_size", "D")
        return [f"print(outputs.last_hidden_state.shape)  # (1, {num_frames}, {tokens}, {dim}): the scene tokens after each frame"]
    if architecture.endswith("DepthEstimation"):
        return [f"print(outputs.predicted_depth.shape)  # (1, {num_frames}, {height}, {width}): depth in metres"]
    if architecture.endswith("PointTracking"):
        return [f"print(outputs.tracks.shape, outputs.visible.shape)  # (1, {num_frames}, 2, 2) pixel (x, y), (1, {num_frames}, 2)"]
    if architecture.endswith("BoxTracking"):
        return [f"print(outputs.boxes.shape)  # (1, {num_frames}, 1, 4): pixel (x1, y1, x2, y2)"]
    if architecture == "FourDSForCameraPoseEstimation":
        return ["print(outputs.pose.shape)  # (1, 4, 4): the last frame's camera relative to the first's"]
    if architecture == "FourDSForVideoClassification":
        return ["print(outputs.logits.shape)  # (1, number of classes)"]
    return [f"print(outputs.predicted_frames.shape)  # (1, {num_frames}, 3, {height}, {width}): each frame predicted from the ones before"]


def _pipeline_print(pipeline_task: str, moog: bool) -> str:
    return {
        "video-feature-extraction": "print(result.features.shape)  # "
        + ("(T, N, D): the scene tokens after each frame" if moog else "(T, h, w, D): per-frame features on the patch grid"),
        "depth-estimation": "print(result.depth.shape)  # (T, H, W): metres, at the video's resolution",
        "point-tracking": "print(result.tracks.shape, result.visible.shape)  # (T, 1, 2) pixel (x, y), (T, 1)",
        "box-tracking": "print(result.boxes.shape)  # (T, 1, 4): pixel (x1, y1, x2, y2)",
        "camera-pose-estimation": "print(result.poses.shape)  # (K, 4, 4): camera poses at key frames",
        "video-reconstruction": "print(result.frames.shape)  # (T, H, W, 3): each frame predicted from the ones before",
    }[pipeline_task]


def _cli_line(task: _Task, model_id: str, backbone: str | None = None) -> str | None:
    if task.cli is None:
        return None
    extra, output = {
        "features": ("", "features.npz"),
        "depth-estimation": ("", "depth.mp4"),
        "point-tracking": (' --points "0,32,32"', "tracks.mp4"),
        "box-tracking": (' --boxes "0,16,16,48,48"', "boxes.json"),
        "camera-pose-estimation": ("", "poses.json"),
        "video-reconstruction": ("", "reconstruction.mp4"),
    }[task.cli]
    backbone_option = f" --backbone {backbone}" if backbone else ""
    return f"fourd-hub {task.cli} clip.mp4 --model {model_id}{backbone_option}{extra} --output {output}"


def _code_block(language: str, code: str) -> list[str]:
    return [f"```{language}", code, "```", ""]


# ----------------------------------------------------------------------------------------------
# Catalog cards


def _entry_config(entry: CatalogEntry) -> FourDSConfig | MooGConfig:
    config_class = MooGConfig if entry.family == "moog" else FourDSConfig
    return config_class.from_preset(entry.preset, **entry.config_overrides)


def _catalog_metadata(entry: CatalogEntry, provenance: ConversionProvenance | None) -> dict:
    task = _task(entry.architecture)
    family = _family_tag(entry.family)
    tags = ["fourd_hub", "video", family, task.tag, f"arxiv:{_MOOG_ARXIV if entry.family == 'moog' else _FOURDS_ARXIV}"]
    if not entry.has_weights:
        tags.append("config-only")
    metadata: dict[str, Any] = {"library_name": "fourd_hub", "license": entry.license.lower(), "tags": tags}
    if task.pipeline_tag:
        metadata["pipeline_tag"] = task.pipeline_tag
    if entry.base_model:
        metadata["base_model"] = _hub_repo(entry.base_model)
    spec = entry.input_spec
    facts: dict[str, Any] = {
        "catalog_name": entry.name,
        "architecture": entry.architecture,
        "preset": entry.preset,
        "code_license": CODE_LICENSE.lower(),
        "weights_license": entry.license.lower(),
        "input": _input_metadata(spec.num_frames, spec.image_size),
        "original_file": entry.original_file,
        "original_url": entry.original_url,
        "original_sha256": entry.sha256,
    }
    if provenance is not None:
        facts["provenance"] = provenance.to_metadata()
    metadata["fourd_hub"] = facts
    return metadata


def _table_1_line(size: str) -> str:
    width, depth, mlp, heads, params, total = _TABLE_1[size]
    return (
        f"4DS-{size} in the paper's Table 1: width {width}, depth {depth}, MLP {mlp}, {heads} heads, "
        f"{params}M parameters ({total}M with the MAE decoder); 2x16x16 space-time patches."
    )


def _model_section(entry: CatalogEntry) -> list[str]:
    lines = ["## Model", ""]
    if entry.family == "moog":
        config = _entry_config(entry)
        lines.append(
            f'- Family: MooG, "Moving Off-the-Grid: Scene-Grounded Video Representations" '
            f"([arXiv:{_MOOG_ARXIV}](https://arxiv.org/abs/{_MOOG_ARXIV})): a recurrent transformer whose scene "
            "tokens are not tied to the pixel grid and follow what they describe through time, trained by "
            "next-frame prediction."
        )
        lines.append(f"- Architecture: `{entry.architecture}` (fourd_hub).")
        if entry.architecture in _STANDALONE_HEADS:
            lines.append(f"- Parameters: {entry.num_parameters:,} in the readout head; its base model is loaded with it.")
            lines.append(
                f"- Backbone: MooG preset `{entry.preset}`, {config.num_tokens} scene tokens of width {config.hidden_size} "
                "(a convolutional encoder and a recurrent predictor / corrector core); the head reads the tokens "
                "after each frame."
            )
        else:
            lines.append(f"- Parameters: {entry.num_parameters:,}.")
            lines.append(
                f"- MooG preset `{entry.preset}`: {config.num_tokens} scene tokens of width {config.hidden_size}; a "
                "convolutional encoder, a recurrent predictor / corrector core and a pixel decoder."
            )
    else:
        lines.append(
            f'- Family: 4DS, the video masked-autoencoder ViTs of "Scaling 4D Representations" '
            f"([arXiv:{_FOURDS_ARXIV}](https://arxiv.org/abs/{_FOURDS_ARXIV}))."
        )
        lines.append(f"- Architecture: `{entry.architecture}` (fourd_hub), preset `{entry.preset}`.")
        what = " (backbone and readout)" if entry.architecture != "FourDSModel" else ""
        lines.append(f"- Parameters: {entry.num_parameters:,}{what}.")
        if _is_table_1_size(entry):
            lines.append(f"- {_table_1_line(entry.preset)}")
    if entry.base_model:
        base = _hub_repo(entry.base_model)
        lines.append(f"- Base model: [`{base}`](https://huggingface.co/{base}).")
    return lines + [""]


def _input_section(entry: CatalogEntry) -> list[str]:
    spec = entry.input_spec
    height, width = spec.image_size
    low, high = spec.value_range
    lines = [
        "## Input",
        "",
        f"`pixel_values_videos` of shape (B, T, C, H, W) = (B, {spec.num_frames}, 3, {height}, {width}): RGB float in "
        f"[{low:g}, {high:g}], no mean/std normalisation. The pipelines and `fourd-hub` commands decode, resize "
        "and window videos of any length for you.",
        "",
    ]
    return lines


def _results_header(columns: list[str]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _results_rows(size: str, label: str) -> list[str]:
    rows = []
    for evaluation, evaluation_label in _EVALUATIONS:
        values = PAPER_RESULTS[size][evaluation]
        cells = [label, evaluation_label] + [fmt.format(values[key]) for key, _, fmt in _METRICS]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


_RESULTS_NOTE = (
    "Attention readouts trained per task (SSv2 action classification, RealEstate10k camera pose, "
    "Perception Test point tracking, ScanNet depth, Waymo Open box tracking); Table 2 freezes the "
    "backbone, Table 3 fine-tunes everything for 20k steps. Quoted from the paper, not re-measured "
    "with this port. ScanNet AbsRel is the true value: the paper prints it multiplied by 10."
)


# Released checkpoints the paper does not evaluate: what they are, and the paper's sizes (and
# metrics) shown beside them as reference points. The catalog does not record these facts.
_REFERENCE_POINTS: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "4ds-b-dist-e": (
        "This checkpoint is not evaluated in the paper: it is a 4DS-B distilled from 4DS-e.",
        "results",
        ("B", "e"),
        tuple(key for key, _, _ in _METRICS),
    ),
    "4ds-b-dist-e-scannet-depth": (
        "This is the ScanNet depth readout released with `4ds-b-dist-e` (a 4DS-B distilled from 4DS-e); the "
        "paper does not evaluate this checkpoint.",
        "ScanNet depth results",
        ("B", "e"),
        ("scannet_absrel",),
    ),
}


def _is_table_1_size(entry: CatalogEntry) -> bool:
    """Whether the entry's backbone is its preset's Table 1 architecture (overrides may change it)."""
    config = _entry_config(entry)
    return entry.preset in _TABLE_1 and all(getattr(config, k) == v for k, v in FOURDS_SIZES[entry.preset].items())


def _reference_results(text: str, subject: str, sizes: tuple[str, ...], metrics: tuple[str, ...]) -> list[str]:
    lines = [
        f"{text} The paper's {subject} for {' and '.join(f'4DS-{s}' for s in sizes)} are shown as reference points, "
        "not as this checkpoint's numbers.",
        "",
    ]
    if len(metrics) == len(_METRICS):
        lines += _results_header(["model", "evaluation"] + [header for _, header, _ in _METRICS])
        for size in sizes:
            lines += _results_rows(size, f"4DS-{size} (reference point)")
        return lines + ["", _RESULTS_NOTE, ""]
    chosen = [(key, header, fmt) for key, header, fmt in _METRICS if key in metrics]
    lines += _results_header(
        ["model (reference point)"] + [f"{header}, {label}" for _, header, _ in chosen for _, label in _EVALUATIONS]
    )
    for size in sizes:
        cells = [fmt.format(PAPER_RESULTS[size][evaluation][key]) for key, _, fmt in chosen for evaluation, _ in _EVALUATIONS]
        lines.append("| " + " | ".join([f"4DS-{size} (reference point)", *cells]) + " |")
    return lines + ["", _RESULTS_NOTE, ""]


def _results_section(entry: CatalogEntry) -> list[str]:
    lines = ["## Results", ""]
    if entry.family == "moog":
        return lines + [
            f"The MooG paper ([arXiv:{_MOOG_ARXIV}](https://arxiv.org/abs/{_MOOG_ARXIV})) trains readouts on MooG's "
            "tokens for point tracking (average Jaccard), monocular depth (absolute relative error) and box "
            "tracking (average IoU), and reports that MooG outperforms on-the-grid baselines. No numbers are "
            "quoted here: the source this card was written from has none; see the paper.",
            "",
        ]
    if entry.name in _REFERENCE_POINTS:
        return lines + _reference_results(*_REFERENCE_POINTS[entry.name])
    if not _is_table_1_size(entry):
        return lines + [f"The paper reports no results for this configuration (a variant of 4DS-{entry.preset}).", ""]
    size = f"4DS-{entry.preset}"
    if entry.has_weights:
        intro = f"Results the paper reports for {size}:"
    else:
        intro = (
            f"Results the paper reports for its {size} (those weights are not released; a model pretrained "
            "from this configuration will differ):"
        )
    columns = ["model", "evaluation"] + [header for _, header, _ in _METRICS]
    return lines + [intro, "", *_results_header(columns), *_results_rows(entry.preset, size), "", _RESULTS_NOTE, ""]


def _usage_section(entry: CatalogEntry, model_id: str) -> list[str]:
    lines = ["## Usage", ""]
    spec = entry.input_spec
    if not entry.has_weights:
        code = "\n".join([
            f"from fourd_hub import FourDSConfig, {entry.architecture}",
            "",
            f'config = FourDSConfig.from_pretrained("{model_id}")  # same as FourDSConfig.from_preset("{entry.preset}")',
            f"model = {entry.architecture}(config)  # random weights ({entry.num_parameters:,} parameters) to pretrain",
        ])
        return lines + [
            f"No released weights: this is the 4DS-{entry.preset} architecture of the paper's Table 1, built "
            "here with random weights, e.g. to pretrain it (the paper pretrains 4DS by masked auto-encoding of video):",
            "",
            *_code_block("python", code),
        ]
    config = _entry_config(entry)
    code = _usage_python(entry.architecture, model_id, spec.num_frames, spec.image_size, config)
    if entry.architecture in _STANDALONE_HEADS:
        lines += [
            f"`from_pretrained` attaches the head to its base backbone, `{entry.base_model}`. Pixel coordinates "
            "are (x, y) with (0, 0) the top-left corner; queries may start at any frame `t` in the pipeline.",
            "",
        ]
    lines += _code_block("python", code)
    cli = _cli_line(_task(entry.architecture, config), model_id)
    if cli is not None:
        lines += _code_block("bash", cli)
    return lines


def _provenance_lines(provenance: ConversionProvenance) -> list[str]:
    return [
        f"- Key layout found: {provenance.layout or 'not recorded'}.",
        f"- Written as `{provenance.model_class}`: {provenance.num_parameters:,} parameters, {provenance.dtype}.",
        f"- Converted by fourd_hub {provenance.fourd_hub_version}.",
    ]


_SHA256_LATER = "computed and recorded in the card by `fourd-hub convert` / the automatic conversion"


def _provenance_section(entry: CatalogEntry, provenance: ConversionProvenance | None) -> list[str]:
    lines = ["## Conversion provenance", ""]
    if not entry.has_weights and provenance is None:
        lines.append("No original file: Google DeepMind released no weights for this configuration.")
        released = [
            f"`{other.name}`" for other in CATALOG.values()
            if other.has_weights and (other.family, other.preset, other.architecture) == (entry.family, entry.preset, entry.architecture)
        ]
        if released:
            lines.append(f"Released weights of the same architecture: {', '.join(released)}.")
        return lines + [""]
    original_file = provenance.original_file if provenance is not None else entry.original_file
    url = (provenance.original_url if provenance is not None else None) or entry.original_url
    digest = (provenance.original_sha256 if provenance is not None else None) or entry.sha256
    lines.append(f"- Original file: [`{original_file}`]({url})." if url else f"- Original file: `{original_file}`.")
    lines.append(f"- sha256: `{digest}`." if digest else f"- sha256: {_SHA256_LATER}.")
    lines.append(
        f"- Converted with `fourd-hub convert {original_file} ./{entry.name} --name {entry.name}`, or automatically "
        f'on the first `from_pretrained("{entry.name}")`: every original key is mapped and every parameter\'s '
        "shape checked."
    )
    if provenance is not None:
        lines += _provenance_lines(provenance)
    return lines + [""]


def _license_section(has_weights: bool = True) -> list[str]:
    weights = (
        f"- Weights: {WEIGHTS_LICENSE}, Google DeepMind (the representations4d checkpoints)."
        if has_weights
        else f"- Weights: none here; the 4DS weights Google DeepMind released are {WEIGHTS_LICENSE}."
    )
    return ["## License", "", weights, f"- Code (fourd_hub): {CODE_LICENSE}.", ""]


def _citation_section(family: str) -> list[str]:
    lines = ["## Citation", ""]
    if family == "moog":
        lines += _code_block("bibtex", _MOOG_BIBTEX)
        lines += ["The checkpoints are distributed by representations4d, the code release of:", ""]
    return lines + _code_block("bibtex", _FOURDS_BIBTEX)


def _finish(lines: list[str]) -> str:
    return "\n".join(lines).rstrip("\n") + "\n"


def render_model_card(entry: CatalogEntry, provenance: ConversionProvenance | None = None, repo_id: str | None = None) -> str:
    """The model card (README.md) of a catalog entry.

    Args:
        entry: the catalog entry.
        provenance: what a conversion recorded; written into the YAML and the provenance section.
        repo_id: where the card will live (usage snippets then load that repo id instead of the
            catalog name).

    Returns:
        The card. Deterministic: same inputs, same text (no dates, no versions unless in provenance).
    """
    model_id = repo_id or entry.name
    lines = [
        _front_matter(_catalog_metadata(entry, provenance)),
        f"# {entry.name}",
        "",
        entry.description + ".",
        "",
        *_model_section(entry),
        *_input_section(entry),
        *_results_section(entry),
        *_usage_section(entry, model_id),
        *_provenance_section(entry, provenance),
        *_license_section(entry.has_weights),
        *_citation_section(entry.family),
    ]
    return _finish(lines)


# ----------------------------------------------------------------------------------------------
# Cards of models that are not a catalog entry as released


@dataclass(frozen=True)
class _Summary:
    family: str
    lines: list[str]
    num_frames: int | None
    image_size: Any
    readout_task: str | None
    standalone_head: bool = False


# Clip size of the released backbones, for the example input of a head whose config has none.
_BACKBONE_IMAGE_SIZE = {"moog": (128, 128), "fourds": (224, 224)}


def _custom_summary(config: Any, architecture: str) -> _Summary:
    """What the card says about a config: family, summary lines, input and readout task."""
    readout = getattr(config, "readout", None) or {}
    task = readout.get("task")
    if isinstance(config, FourDSConfig):
        size = f", preset `{config.preset}`" if config.preset else ""
        lines = [
            f"- Family: 4DS{size}: width {config.hidden_size}, depth {config.num_hidden_layers}, MLP "
            f"{config.intermediate_size}, {config.num_attention_heads} heads, "
            f"{'x'.join(str(p) for p in config.patch_size)} patches.",
        ]
        return _Summary("fourds", lines, config.num_frames, config.image_size, task)
    if isinstance(config, MooGConfig):
        preset = f", preset `{config.preset}`" if config.preset else ""
        decoder = "with" if config.decoder is not None else "without"
        lines = [f"- Family: MooG{preset}: {config.num_tokens} scene tokens of width {config.hidden_size}, {decoder} a pixel decoder."]
        return _Summary("moog", lines, config.num_frames, config.image_size, task)
    from .conversion.heads import ReadoutHeadConfig

    if isinstance(config, ReadoutHeadConfig):
        family = config.family or ("moog" if architecture.startswith("MooG") else "fourds")
        lines = [
            f"- A readout head on its own ({'MooG' if family == 'moog' else '4DS'}): it reads "
            f"{config.feature_dim}-wide features of a backbone."
        ]
        return _Summary(family, lines, config.num_frames, None, task, standalone_head=True)
    raise TypeError(f"config must be a FourDSConfig, MooGConfig or a readout head config, got {type(config).__name__}")


def render_custom_model_card(
    config,
    *,
    architecture: str,
    repo_id: str | None = None,
    base_model: str | None = None,
    provenance: ConversionProvenance | None = None,
    tags: list[str] | None = None,
) -> str:
    """A card for a model that is not a catalog entry as released (fine-tuned, retrained, converted with a custom config).

    Args:
        config: the model's :class:`~fourd_hub.FourDSConfig` or :class:`~fourd_hub.MooGConfig`, or
            the config of a standalone readout head (``fourd_hub.conversion.heads.ReadoutHeadConfig``).
        architecture: the fourd_hub class that loads it (``"FourDSForDepthEstimation"``; for a
            standalone head the task class, ``"MooGForPointTracking"``).
        repo_id: where the card will live; the usage snippet loads it (else a placeholder path).
        base_model: the model it was trained from: a repo id, or a catalog name (written as its
            hub repo id ``<org>/<name>``).
        provenance: what a conversion recorded.
        tags: extra Hub tags.

    Returns:
        The card: architecture, config summary, base model, usage, provenance, licenses, citation.
    """
    summary = _custom_summary(config, architecture)
    family, num_frames, image_size = summary.family, summary.num_frames, summary.image_size
    task = _task(architecture, config)
    base = _hub_repo(base_model) if base_model else None
    model_id = repo_id or "path/to/this/model"
    arxiv = _MOOG_ARXIV if family == "moog" else _FOURDS_ARXIV
    metadata: dict[str, Any] = {
        "library_name": "fourd_hub",
        "license": WEIGHTS_LICENSE.lower(),
        "tags": list(dict.fromkeys(["fourd_hub", "video", _family_tag(family), task.tag, f"arxiv:{arxiv}", *(tags or [])])),
    }
    if task.pipeline_tag:
        metadata["pipeline_tag"] = task.pipeline_tag
    if base:
        metadata["base_model"] = base
    facts: dict[str, Any] = {
        "architecture": architecture,
        "family": family,
        "preset": getattr(config, "preset", None),
        "readout_task": summary.readout_task,
        "code_license": CODE_LICENSE.lower(),
        "weights_license": WEIGHTS_LICENSE.lower(),
        "input": _input_metadata(num_frames, image_size),
    }
    if provenance is not None:
        facts["provenance"] = provenance.to_metadata()
    metadata["fourd_hub"] = facts

    title = repo_id or (Path(provenance.original_file).stem if provenance is not None else architecture)
    lines = [_front_matter(metadata), f"# {title}", ""]
    lines += [f"A `{architecture}` (fourd_hub) that is not one of the catalog's released checkpoints.", ""]
    lines += ["## Configuration", "", f"- Architecture: `{architecture}`.", *summary.lines]
    if num_frames is not None:
        size = f" of {image_size[0]}x{image_size[1]}" if image_size is not None else ""
        lines.append(f"- Input: clips of {num_frames} frames{size}, `pixel_values_videos` (B, T, C, H, W), RGB in [0, 1], no mean/std normalisation.")
    if summary.readout_task:
        lines.append(f"- Readout task: {summary.readout_task}.")
    if provenance is not None:
        lines.append(f"- Parameters: {provenance.num_parameters:,}.")
    if base:
        lines.append(f"- Base model: [`{base}`](https://huggingface.co/{base}).")
    lines += ["", "## Usage", ""]

    if summary.standalone_head:
        backbone = base or "path/to/converted/backbone"
        head_dir = f'snapshot_download("{repo_id}")' if repo_id else '"path/to/this/model"'
        load = f'model = {architecture}.from_backbone("{backbone}", head={head_dir}).eval()'
        imports = ("from huggingface_hub import snapshot_download",) if repo_id else ()
        lines += ["A readout head on its own: attach it to the backbone whose features it reads.", ""]
        size = _BACKBONE_IMAGE_SIZE[family]
        code = _usage_python(architecture, model_id, num_frames, size, None, load, imports, pipeline_backbone=backbone)
        cli = _cli_line(task, model_id, backbone)
    else:
        code = _usage_python(architecture, model_id, num_frames, image_size, config)
        cli = _cli_line(task, model_id)
    lines += _code_block("python", code)
    if cli is not None:
        lines += _code_block("bash", cli)
    if provenance is not None:
        name, url = provenance.original_file, provenance.original_url
        lines += ["## Conversion provenance", "", f"- Original file: [`{name}`]({url})." if url else f"- Original file: `{name}`."]
        digest = provenance.original_sha256
        lines.append(f"- sha256: `{digest}`." if digest else "- sha256: not computed.")
        lines += [f"- Converted with `fourd-hub convert {provenance.original_file} DIR`.", *_provenance_lines(provenance), ""]
    lines += [
        "## License",
        "",
        f"- Weights derived from Google DeepMind's representations4d checkpoints: {WEIGHTS_LICENSE}.",
        f"- Code (fourd_hub): {CODE_LICENSE}.",
        "",
        *_citation_section(family),
    ]
    return _finish(lines)


# ----------------------------------------------------------------------------------------------
# Reading cards, writing model_cards/

_FRONT_MATTER = re.compile(r"\A---\r?\n(.*?)^---[ \t]*\r?$", re.DOTALL | re.MULTILINE)


def card_metadata(text: str) -> dict:
    """The YAML front matter of a card as a dict.

    Raises:
        ValueError: the text has no front matter, or it is not valid YAML mapping.
    """
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise ValueError("the card has no YAML front matter (a block between '---' lines at its top)")
    try:
        values = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        raise ValueError(f"the card's YAML front matter is invalid: {error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"the card's YAML front matter must be a mapping, got {type(values).__name__}")
    return values


def read_provenance(card_path: str | os.PathLike) -> ConversionProvenance | None:
    """Provenance recorded in a card file (None when the file is missing or holds none).

    Raises:
        ValueError: the front matter or the provenance in it is invalid.
    """
    path = Path(card_path)
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    if _FRONT_MATTER.match(text) is None:
        return None
    return ConversionProvenance.from_metadata(card_metadata(text))


def card_file_name(entry: CatalogEntry) -> str:
    """The card's file name in ``model_cards/``: ``<entry.name>.md``."""
    return f"{entry.name}.md"


def _stale_cards(directory: Path) -> list[Path]:
    """Cards this generator wrote for entries no longer in the catalog.

    Only files whose metadata names a ``fourd_hub.catalog_name`` count, so that other Markdown
    files in the directory are never reported or removed.
    """
    current = {card_file_name(entry) for entry in CATALOG.values()} | {"README.md"}
    stale = []
    for path in sorted(directory.glob("*.md")):
        if path.name in current:
            continue
        try:
            metadata = card_metadata(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        facts = metadata.get("fourd_hub")
        if isinstance(facts, dict) and "catalog_name" in facts:
            stale.append(path)
    return stale


def write_model_cards(directory: str | os.PathLike, check: bool = False) -> list[Path]:
    """Write one card per catalog entry into ``directory`` (atomically: temp file + os.replace).

    Stale cards (written by this function for entries no longer in the catalog) are removed.

    Args:
        directory: the cards' directory (created if missing).
        check: write nothing; instead return the paths that are missing or differ from what
            :func:`render_model_card` produces, and stale cards (``README.md`` is never one).

    Returns:
        The paths written, or with ``check=True`` the paths out of date.
    """
    directory = Path(directory)
    if check:
        outdated = []
        for entry in CATALOG.values():
            path = directory / card_file_name(entry)
            if not path.is_file() or path.read_text(encoding="utf-8") != render_model_card(entry):
                outdated.append(path)
        return outdated + (_stale_cards(directory) if directory.is_dir() else [])
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in CATALOG.values():
        path = directory / card_file_name(entry)
        write_text_atomic(path, render_model_card(entry))
        written.append(path)
    for path in _stale_cards(directory):
        path.unlink()
    return written
