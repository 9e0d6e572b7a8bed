"""The card of a model that is not a catalog entry as released: fine-tuned, retrained, converted with a custom config.

Its family is the config's (:func:`fourd_hub.registry.family_of`); the family's card module
summarises the config. A standalone readout head (a config with ``use_pretrained_backbone`` and
the ``backbone`` it reads) is described as such, and its usage loads it, and with it its
backbone, with ``from_pretrained``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..catalog import CODE_LICENSE, WEIGHTS_LICENSE
from ..provenance import ConversionProvenance
from ..registry import FamilySpec, families, family_of
from .family import CardTask, card_task, family_card
from .markdown import code_block, finish
from .metadata import custom_metadata, front_matter, hub_repo, input_metadata
from .render import citation_section, provenance_lines
from .snippets import cli_line, usage_python

__all__ = ["render_custom_model_card"]

_NO_BACKBONE = "path/to/converted/backbone"


@dataclass(frozen=True)
class _Summary:
    """What a custom card says about a config: its family, summary lines, input and readout task."""

    family: FamilySpec
    lines: list[str]
    num_frames: int | None
    image_size: Any
    readout_task: str | None
    standalone_head: bool = False


def _summary(config: Any) -> _Summary:
    try:
        family = family_of(config)
    except KeyError:
        names = ", ".join(spec.display_name for spec in families())
        raise TypeError(f"config must be the configuration of a fourd_hub family ({names}), got {type(config).__name__}") from None
    task = (getattr(config, "readout", None) or {}).get("task")
    if getattr(config, "use_pretrained_backbone", False):
        backbone = f"backbone `{config.backbone}`" if config.backbone else "a backbone"
        lines = [f"- A readout head on its own ({family.display_name}): it reads {config.hidden_size}-wide features of {backbone}."]
        return _Summary(family, lines, config.num_frames, None, task, standalone_head=True)
    return _Summary(family, family_card(family).custom_summary(config), config.num_frames, config.image_size, task)


def _configuration_section(architecture: str, summary: _Summary, provenance: ConversionProvenance | None, base: str | None) -> list[str]:
    num_frames, image_size = summary.num_frames, summary.image_size
    lines = ["## Configuration", "", f"- Architecture: `{architecture}`.", *summary.lines]
    if num_frames is not None:
        size = f" of {image_size[0]}x{image_size[1]}" if image_size is not None else ""
        lines.append(f"- Input: clips of {num_frames} frames{size}, `pixel_values_videos` (B, T, C, H, W), RGB in [0, 1], no mean/std normalisation.")
    if summary.readout_task:
        lines.append(f"- Readout task: {summary.readout_task}.")
    if provenance is not None:
        lines.append(f"- Parameters: {provenance.num_parameters:,}.")
    if base:
        lines.append(f"- Base model: [`{base}`](https://huggingface.co/{base}).")
    return lines + [""]


def _usage_section(config: Any, architecture: str, task: CardTask, summary: _Summary, model_id: str) -> list[str]:
    family = summary.family
    lines = ["## Usage", ""]
    if summary.standalone_head:
        # The head's config.json names its backbone, which from_pretrained loads first; without
        # one the snippets pass it.
        backbone = None if config.backbone else _NO_BACKBONE
        if config.backbone:
            intro = f"A readout head on its own: `from_pretrained` loads the backbone its config.json names (`{config.backbone}`) with it."
        else:
            intro = "A readout head on its own, whose config.json names no backbone: pass the one it reads to `from_pretrained`."
        lines += [intro, ""]
        size = family_card(family).head_image_size
        code = usage_python(family, task, architecture, model_id, summary.num_frames, size, config, backbone)
        cli = cli_line(task, model_id, backbone)
    else:
        code = usage_python(family, task, architecture, model_id, summary.num_frames, summary.image_size, config)
        cli = cli_line(task, model_id)
    lines += code_block("python", code)
    if cli is not None:
        lines += code_block("bash", cli)
    return lines


def _provenance_section(provenance: ConversionProvenance | None) -> list[str]:
    if provenance is None:
        return []
    name, url = provenance.original_file, provenance.original_url
    lines = ["## Conversion provenance", "", f"- Original file: [`{name}`]({url})." if url else f"- Original file: `{name}`."]
    digest = provenance.original_sha256
    lines.append(f"- sha256: `{digest}`." if digest else "- sha256: not computed.")
    return lines + [f"- Converted with `fourd-hub convert {provenance.original_file} DIR`.", *provenance_lines(provenance), ""]


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
        config: the model's configuration (a family's config class, e.g.
            :class:`~fourd_hub.FourDSConfig`); for a standalone readout head, its task model's
            config with ``use_pretrained_backbone=True`` and the ``backbone`` it reads.
        architecture: the fourd_hub class that loads it (``"FourDSForDepthEstimation"``; for a
            standalone head the task class, ``"MooGForPointTracking"``).
        repo_id: where the card will live; the usage snippet loads it (else a placeholder path).
        base_model: the model it was trained from: a repo id, or a catalog name (written as its
            hub repo id ``<org>/<name>``).
        provenance: what a conversion recorded.
        tags: extra Hub tags.

    Returns:
        The card: architecture, config summary, base model, usage, provenance, licenses, citation.

    Raises:
        TypeError: ``config`` is not the configuration of a registered family.
        ValueError: ``architecture`` is none of the family's task models.
    """
    summary = _summary(config)
    family = summary.family
    card = family_card(family)
    task = card_task(family, architecture, config)
    base = hub_repo(base_model) if base_model else None
    model_id = repo_id or "path/to/this/model"
    facts: dict[str, Any] = {
        "architecture": architecture,
        "family": family.name,
        "preset": getattr(config, "preset", None),
        "readout_task": summary.readout_task,
        "code_license": CODE_LICENSE.lower(),
        "weights_license": WEIGHTS_LICENSE.lower(),
        "input": input_metadata(summary.num_frames, summary.image_size),
    }
    metadata = custom_metadata(
        card=card, task=task, license=WEIGHTS_LICENSE, base_model=base, tags=tags or [], facts=facts, provenance=provenance
    )
    title = repo_id or (Path(provenance.original_file).stem if provenance is not None else architecture)
    lines = [
        front_matter(metadata),
        f"# {title}",
        "",
        f"A `{architecture}` (fourd_hub) that is not one of the catalog's released checkpoints.",
        "",
        *_configuration_section(architecture, summary, provenance, base),
        *_usage_section(config, architecture, task, summary, model_id),
        *_provenance_section(provenance),
        "## License",
        "",
        f"- Weights derived from Google DeepMind's representations4d checkpoints: {WEIGHTS_LICENSE}.",
        f"- Code (fourd_hub): {CODE_LICENSE}.",
        "",
        *citation_section(card),
    ]
    return finish(lines)
