"""What MooG model cards say: the paper "Moving Off-the-Grid: Scene-Grounded Video Representations" (arXiv 2411.05927).

The card-data module of the MooG family (:attr:`fourd_hub.registry.FamilySpec.card`), implementing
the interface documented in :mod:`fourd_hub.cards`. The paper's results are not quoted (the
source these cards were written from has no numbers); the MooG checkpoints are distributed by
representations4d, the code release of the 4DS paper, which the cards cite after MooG's.
"""

from __future__ import annotations

from typing import Any

from ...cards.family import Paper, is_standalone_head
from ...catalog import CatalogEntry
from ..fourds.card_fourds import PAPER as RELEASE_PAPER

# The card interface (fourd_hub.cards), and the family's own data.
__all__ = [
    "PAPER", "base_model_prints", "citation_lines", "config_only_note", "custom_summary", "family_tag",
    "feature_print", "head_image_size", "model_section", "results_section", "usage_task",
]

# Author list as printed in the 4DS paper's reference [68] (../shared/papers).
PAPER = Paper(
    """@inproceedings{vansteenkiste2024moving,
  title = {Moving Off-the-Grid: Scene-Grounded Video Representations},
  author = {van Steenkiste, Sjoerd and Zoran, Daniel and Yang, Yi and Rubanova, Yulia and Kabra, Rishabh and Doersch, Carl and Gokay, Dilara and Heyward, Joseph and Pot, Etienne and Greff, Klaus and Hudson, Drew A. and Keck, Thomas Albert and Carreira, João and Dosovitskiy, Alexey and Sajjadi, Mehdi S. M. and Kipf, Thomas},
  booktitle = {NeurIPS},
  year = {2024},
  eprint = {2411.05927},
  archivePrefix = {arXiv}
}"""
)

#: The family's Hub tag.
family_tag = "moog"

def model_section(entry: CatalogEntry, config: Any) -> list[str]:
    """The lines of a MooG catalog card's model section: the family, the architecture, its tokens.

    A released readout head (a file of its own) counts only its own parameters and describes the
    backbone it reads.

    Args:
        entry: the catalog entry.
        config: its configuration.
    """
    lines = [
        f'- Family: MooG, "{PAPER.title}" ({PAPER.link}): a recurrent transformer whose scene tokens are not '
        "tied to the pixel grid and follow what they describe through time, trained by next-frame prediction.",
        f"- Architecture: `{entry.architecture}` (fourd_hub).",
    ]
    tokens = f"{config.num_tokens} scene tokens of width {config.hidden_size}"
    if is_standalone_head(entry):
        return lines + [
            f"- Parameters: {entry.num_parameters:,} in the readout head; its base model is loaded with it.",
            f"- Backbone: MooG preset `{entry.preset}`, {tokens} (a convolutional encoder and a recurrent predictor / "
            "corrector core); the head reads the tokens after each frame.",
        ]
    return lines + [
        f"- Parameters: {entry.num_parameters:,}.",
        f"- MooG preset `{entry.preset}`: {tokens}; a convolutional encoder, a recurrent predictor / corrector core "
        "and a pixel decoder.",
    ]


def results_section(entry: CatalogEntry, config: Any) -> list[str]:
    """The lines of a MooG catalog card's results section: what the paper evaluates, without numbers.

    Args:
        entry: the catalog entry.
        config: its configuration.
    """
    return [
        f"The MooG paper ({PAPER.link}) trains readouts on MooG's tokens for point tracking (average Jaccard), "
        "monocular depth (absolute relative error) and box tracking (average IoU), and reports that MooG "
        "outperforms on-the-grid baselines. No numbers are quoted here: the source this card was written "
        "from has none; see the paper.",
        "",
    ]


def config_only_note(entry: CatalogEntry) -> str:
    """The sentence introducing the usage of a catalog entry without weights (built with random weights)."""
    return (
        f"No released weights: this is the MooG preset `{entry.preset}`, built here with random weights, e.g. to "
        "pretrain it (the paper pretrains MooG by next-frame prediction):"
    )


def citation_lines() -> list[str]:
    """The citation section's lines: the MooG paper's BibTeX, then that of the release the checkpoints come from."""
    return [
        *PAPER.citation(),
        "The checkpoints are distributed by representations4d, the code release of:",
        "",
        *RELEASE_PAPER.citation(),
    ]


def custom_summary(config: Any) -> list[str]:
    """The lines summarising a MooG config on a custom card: preset, scene tokens, pixel decoder."""
    preset = f", preset `{config.preset}`" if config.preset else ""
    decoder = "with" if config.decoder is not None else "without"
    return [f"- Family: MooG{preset}: {config.num_tokens} scene tokens of width {config.hidden_size}, {decoder} a pixel decoder."]


#: What the features pipeline's result holds (the usage snippet prints it).
feature_print = "print(result.features.shape)  # (T, N, D): the scene tokens after each frame"

#: Clip size (height, width) of the released backbones: the example input of a standalone head.
head_image_size = (128, 128)


def base_model_prints(config: Any, num_frames: int, height: int, width: int) -> list[str]:
    """``print`` lines of a usage snippet reading ``MooGModel``'s output, with its shape on the example clip."""
    return [
        f"print(outputs.last_hidden_state.shape)  # (1, {num_frames}, {config.num_tokens}, {config.hidden_size}): "
        "the scene tokens after each frame"
    ]


def usage_task(task: str, config: Any) -> str:
    """The task whose pipeline and command a usage snippet of a ``task`` model runs.

    A backbone with its pixel decoder (as released) is best shown predicting frames: its
    features snippet runs the video-reconstruction pipeline and command.
    """
    if task == "video-feature-extraction" and config.decoder is not None:
        return "video-reconstruction"
    return task
