"""What 4DS model cards say: the paper "Scaling 4D Representations" (arXiv 2412.15212), its Table 1 and results.

The card-data module of the 4DS family (:attr:`fourd_hub.registry.FamilySpec.card`), implementing
the interface documented in :mod:`fourd_hub.cards`. Table 1 of the paper (the sizes as printed)
and the 4DS rows of its Tables 2 and 3 (:data:`PAPER_RESULTS`) live here and nowhere else; the
architecture presets the configs are built from are
:data:`~fourd_hub.models.fourds.configuration_fourds.FOURDS_SIZES`.
"""

from __future__ import annotations

from typing import Any

from ...cards.family import Paper
from ...cards.markdown import table_header, table_row
from ...catalog import CatalogEntry
from .configuration_fourds import FOURDS_SIZES

# The card interface (fourd_hub.cards), and the family's own data.
__all__ = [
    "PAPER", "PAPER_RESULTS", "base_model_prints", "citation_lines", "config_only_note", "custom_summary",
    "family_tag", "feature_print", "head_image_size", "model_section", "results_section", "usage_task",
]

# Author list as printed on the paper's title page (../shared/papers).
PAPER = Paper(
    """@misc{carreira2024scaling,
  title = {Scaling 4D Representations},
  author = {Carreira, João and Gokay, Dilara and King, Michael and Zhang, Chuhan and Rocco, Ignacio and Mahendran, Aravindh and Keck, Thomas Albert and Heyward, Joseph and Koppula, Skanda and Pot, Etienne and Erdogan, Goker and Hasson, Yana and Yang, Yi and Greff, Klaus and Le Moing, Guillaume and van Steenkiste, Sjoerd and Zoran, Daniel and Hudson, Drew A. and Vélez, Pedro and Polanía, Luisa and Friedman, Luke and Duvarney, Chris and Goroshin, Ross and Allen, Kelsey and Walker, Jacob and Kabra, Rishabh and Aboussouan, Eric and Sun, Jennifer and Kipf, Thomas and Doersch, Carl and Pătrăucean, Viorica and Damen, Dima and Luc, Pauline and Sajjadi, Mehdi S. M. and Zisserman, Andrew},
  year = {2024},
  eprint = {2412.15212},
  archivePrefix = {arXiv}
}"""
)

#: The family's Hub tag.
family_tag = "4ds"

# ----------------------------------------------------------------------------------------------
# The paper's numbers

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


def _is_table_1_size(preset: str, config: Any) -> bool:
    """Whether ``config`` is its preset's Table 1 architecture (a catalog entry's overrides may change it)."""
    return preset in _TABLE_1 and all(getattr(config, k) == v for k, v in FOURDS_SIZES[preset].items())


def _table_1_line(size: str) -> str:
    width, depth, mlp, heads, params, total = _TABLE_1[size]
    return (
        f"4DS-{size} in the paper's Table 1: width {width}, depth {depth}, MLP {mlp}, {heads} heads, "
        f"{params}M parameters ({total}M with the MAE decoder); 2x16x16 space-time patches."
    )


def _results_rows(size: str, label: str) -> list[str]:
    rows = []
    for evaluation, evaluation_label in _EVALUATIONS:
        values = PAPER_RESULTS[size][evaluation]
        rows.append(table_row([label, evaluation_label] + [fmt.format(values[key]) for key, _, fmt in _METRICS]))
    return rows


def _reference_results(text: str, subject: str, sizes: tuple[str, ...], metrics: tuple[str, ...]) -> list[str]:
    lines = [
        f"{text} The paper's {subject} for {' and '.join(f'4DS-{s}' for s in sizes)} are shown as reference points, "
        "not as this checkpoint's numbers.",
        "",
    ]
    if len(metrics) == len(_METRICS):
        lines += table_header(["model", "evaluation"] + [header for _, header, _ in _METRICS])
        for size in sizes:
            lines += _results_rows(size, f"4DS-{size} (reference point)")
        return lines + ["", _RESULTS_NOTE, ""]
    chosen = [(key, header, fmt) for key, header, fmt in _METRICS if key in metrics]
    lines += table_header(
        ["model (reference point)"] + [f"{header}, {label}" for _, header, _ in chosen for _, label in _EVALUATIONS]
    )
    for size in sizes:
        cells = [fmt.format(PAPER_RESULTS[size][evaluation][key]) for key, _, fmt in chosen for evaluation, _ in _EVALUATIONS]
        lines.append(table_row([f"4DS-{size} (reference point)", *cells]))
    return lines + ["", _RESULTS_NOTE, ""]


# ----------------------------------------------------------------------------------------------
# The card interface (fourd_hub.cards)


def model_section(entry: CatalogEntry, config: Any) -> list[str]:
    """The lines of a 4DS catalog card's model section: the family, the architecture, its Table 1 size.

    Args:
        entry: the catalog entry.
        config: its configuration.
    """
    lines = [
        f'- Family: 4DS, the video masked-autoencoder ViTs of "{PAPER.title}" ({PAPER.link}).',
        f"- Architecture: `{entry.architecture}` (fourd_hub), preset `{entry.preset}`.",
    ]
    what = " (backbone and readout)" if entry.architecture != "FourDSModel" else ""
    lines.append(f"- Parameters: {entry.num_parameters:,}{what}.")
    if _is_table_1_size(entry.preset, config):
        lines.append(f"- {_table_1_line(entry.preset)}")
    return lines


def results_section(entry: CatalogEntry, config: Any) -> list[str]:
    """The lines of a 4DS catalog card's results section: the paper's Tables 2 and 3 for its size.

    A checkpoint the paper does not evaluate shows the sizes it relates to as reference points; a
    configuration that is not a Table 1 size says the paper has no results for it.

    Args:
        entry: the catalog entry.
        config: its configuration.
    """
    if entry.name in _REFERENCE_POINTS:
        return _reference_results(*_REFERENCE_POINTS[entry.name])
    if not _is_table_1_size(entry.preset, config):
        return [f"The paper reports no results for this configuration (a variant of 4DS-{entry.preset}).", ""]
    size = f"4DS-{entry.preset}"
    if entry.has_weights:
        intro = f"Results the paper reports for {size}:"
    else:
        intro = (
            f"Results the paper reports for its {size} (those weights are not released; a model pretrained "
            "from this configuration will differ):"
        )
    columns = ["model", "evaluation"] + [header for _, header, _ in _METRICS]
    return [intro, "", *table_header(columns), *_results_rows(entry.preset, size), "", _RESULTS_NOTE, ""]


def config_only_note(entry: CatalogEntry) -> str:
    """The sentence introducing the usage of a catalog entry without weights (built with random weights)."""
    return (
        f"No released weights: this is the 4DS-{entry.preset} architecture of the paper's Table 1, built "
        "here with random weights, e.g. to pretrain it (the paper pretrains 4DS by masked auto-encoding of video):"
    )


def citation_lines() -> list[str]:
    """The citation section's lines: the 4DS paper's BibTeX."""
    return PAPER.citation()


def custom_summary(config: Any) -> list[str]:
    """The lines summarising a 4DS config on a custom card: preset, width, depth, MLP, heads, patches."""
    size = f", preset `{config.preset}`" if config.preset else ""
    return [
        f"- Family: 4DS{size}: width {config.hidden_size}, depth {config.num_hidden_layers}, MLP "
        f"{config.intermediate_size}, {config.num_attention_heads} heads, "
        f"{'x'.join(str(p) for p in config.patch_size)} patches.",
    ]


#: What the features pipeline's result holds (the usage snippet prints it).
feature_print = "print(result.features.shape)  # (T, h, w, D): per-frame features on the patch grid"

#: Clip size (height, width) of the released backbones: the example input of a standalone head.
head_image_size = (224, 224)


def base_model_prints(config: Any, num_frames: int, height: int, width: int) -> list[str]:
    """``print`` lines of a usage snippet reading ``FourDSModel``'s outputs, with their shapes on the example clip."""
    patch_t, patch_h, patch_w = config.patch_size
    grid = (height // patch_h) * (width // patch_w)
    tokens = (num_frames // patch_t) * grid
    dim = config.hidden_size
    return [
        f"print(outputs.readout_features.shape)   # (1, {num_frames}, {grid}, {dim}): per-frame features the readouts read",
        f"print(outputs.last_hidden_state.shape)  # (1, {tokens}, {dim}): the last block's tokens",
    ]


def usage_task(task: str, config: Any) -> str:
    """The task whose pipeline and command a usage snippet of a ``task`` model runs: ``task`` itself."""
    return task
