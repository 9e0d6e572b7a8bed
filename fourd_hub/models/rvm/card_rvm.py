"""What RVM model cards say: the paper "Recurrent Video Masked Autoencoders" (arXiv 2512.13684).

The card-data module of the RVM family (:attr:`fourd_hub.registry.FamilySpec.card`), implementing
the interface documented in :mod:`fourd_hub.cards`. The paper's results are not quoted (the spec
these cards were written from, ``../shared/docs/rvm.md``, could not read the paper's tables); the
checkpoints are distributed by representations4d, the code release of the 4DS paper, which the
cards cite after RVM's.
"""

from __future__ import annotations

from typing import Any

from ...cards.family import Paper
from ...catalog import CatalogEntry
from ..fourds.card_fourds import PAPER as RELEASE_PAPER

# The card interface (fourd_hub.cards), and the family's own data.
__all__ = [
    "PAPER", "base_model_prints", "citation_lines", "config_only_note", "custom_summary", "family_tag",
    "feature_print", "head_image_size", "model_section", "results_section", "usage_task",
]

# Author list as on the paper's arXiv page.
PAPER = Paper(
    """@misc{zoran2025recurrent,
  title = {Recurrent Video Masked Autoencoders},
  author = {Zoran, Daniel and Parthasarathy, Nikhil and Yang, Yi and Hudson, Drew A. and Carreira, João and Zisserman, Andrew},
  year = {2025},
  eprint = {2512.13684},
  archivePrefix = {arXiv}
}"""
)

#: The family's Hub tag.
family_tag = "rvm"

#: The encoder of each preset, as the representations4d README names it.
_ENCODERS = {"S": "ViT-S/16", "B": "ViT-B/16", "L": "ViT-L/16", "H": "ViT-H/16"}


def _encoder_and_core(config: Any) -> int:
    """Parameters of the feature path (tokenizer, encoder, recurrent core): what the README's "# Params" counts."""
    import torch

    from .modeling_rvm import RVMModel

    with torch.device("meta"):
        model = RVMModel(config, add_decoder=False)
    return sum(p.numel() for p in model.parameters())


def model_section(entry: CatalogEntry, config: Any) -> list[str]:
    """The lines of an RVM catalog card's model section: the family, the architecture, its parts.

    Args:
        entry: the catalog entry.
        config: its configuration.
    """
    core = config.core_spec()
    encoder = _ENCODERS.get(entry.preset, f"a {config.num_hidden_layers}-block ViT")
    lines = [
        f'- Family: RVM, "{PAPER.title}" ({PAPER.link}): a per-frame ViT whose tokens a gated recurrent '
        "transformer core aggregates over time (linear time, constant memory in the video's length), trained by "
        "reconstructing heavily masked future frames.",
        f"- Architecture: `{entry.architecture}` (fourd_hub).",
        f"- Parameters: {entry.num_parameters:,} in the file (encoder, recurrent core and the reconstruction decoder); "
        f"{_encoder_and_core(config):,} in the encoder and core (the features).",
        f"- RVM preset `{entry.preset}`: {encoder} encoder of width {config.hidden_size} ({config.num_hidden_layers} "
        f"blocks), recurrent core of {core.num_layers} blocks ({core.num_heads} heads x {core.head_dim}); features are "
        "the state after each frame, one slot per 16 x 16 patch plus a cls slot.",
    ]
    if entry.preset != "L":
        lines.append(
            "- The core and decoder sizes of this preset are not in the original code: they are read from the "
            "released file when converting (the notebooks' own model is RVM-L)."
        )
    return lines


def results_section(entry: CatalogEntry, config: Any) -> list[str]:
    """The lines of an RVM catalog card's results section: what the paper evaluates, without numbers.

    Args:
        entry: the catalog entry.
        config: its configuration.
    """
    return [
        f"The RVM paper ({PAPER.link}) evaluates RVM features on video tasks (SSv2 and Kinetics classification, "
        "Waymo box tracking, Perception Test point tracking) and dense spatial ones (ScanNet depth, among others); "
        "the representations4d notebooks evaluate label propagation (DAVIS-2017 video object segmentation, JHMDB "
        "pose, VIP parts). No numbers are quoted here: the source this card was written from could not read the "
        "paper's tables; see the paper.",
        "",
    ]


def config_only_note(entry: CatalogEntry) -> str:
    """The sentence introducing the usage of a catalog entry without weights (built with random weights)."""
    return (
        f"No released weights: this is the RVM preset `{entry.preset}`, built here with random weights, e.g. to "
        "pretrain it by masked reconstruction of future frames:"
    )


def citation_lines() -> list[str]:
    """The citation section's lines: the RVM paper's BibTeX, then that of the release the checkpoints come from."""
    return [
        *PAPER.citation(),
        "The checkpoints are distributed by representations4d, the code release of:",
        "",
        *RELEASE_PAPER.citation(),
    ]


def custom_summary(config: Any) -> list[str]:
    """The lines summarising an RVM config on a custom card: preset, widths, decoder."""
    preset = f", preset `{config.preset}`" if config.preset else ""
    decoder = "with" if config.decoder is not None else "without"
    core = config.core_spec()
    return [
        f"- Family: RVM{preset}: a {config.num_hidden_layers}-block ViT encoder of width {config.hidden_size}, a "
        f"{core.num_layers}-block recurrent core, {decoder} the masked-reconstruction decoder."
    ]


#: What the features pipeline's result holds (the usage snippet prints it).
feature_print = "print(result.features.shape)  # (T, h, w, D): the state after each frame on the patch grid (cls slot dropped)"

#: Clip size (height, width) of the released models: the example input of a standalone head.
head_image_size = (256, 256)


def base_model_prints(config: Any, num_frames: int, height: int, width: int) -> list[str]:
    """``print`` lines of a usage snippet reading ``RVMModel``'s output, with their shapes on the example clip."""
    rows, cols = config.token_grid((height, width))
    return [
        f"print(outputs.patch_features.shape)  # (1, {num_frames}, {rows}, {cols}, {config.hidden_size}): the state after "
        "each frame on the patch grid",
        f"print(outputs.state.shape)  # (1, {1 + rows * cols}, {config.hidden_size}): pass it as initial_state= to continue",
    ]


def usage_task(task: str, config: Any) -> str:
    """The task whose pipeline and command a usage snippet of a ``task`` model runs (its own)."""
    return task
