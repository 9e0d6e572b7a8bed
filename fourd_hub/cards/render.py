"""The card of a catalog entry, section by section, and the sections every card shares.

Generic sections (input, usage, provenance, license) are written here; the family's card module
writes what only it knows: the model section's description, the paper's results and the
citation (see :mod:`fourd_hub.cards` for the interface).
"""

from __future__ import annotations

from typing import Any

from ..catalog import CATALOG, CODE_LICENSE, WEIGHTS_LICENSE, CatalogEntry
from ..provenance import ConversionProvenance
from ..registry import FamilySpec, get_family
from .family import card_task, entry_config, family_card, is_standalone_head
from .markdown import code_block, finish
from .metadata import catalog_metadata, front_matter, hub_repo
from .snippets import cli_line, usage_python

__all__ = ["citation_section", "provenance_lines", "render_model_card"]


def _model_section(entry: CatalogEntry, card: Any, config: Any) -> list[str]:
    lines = ["## Model", "", *card.model_section(entry, config)]
    if entry.base_model:
        base = hub_repo(entry.base_model)
        lines.append(f"- Base model: [`{base}`](https://huggingface.co/{base}).")
    return lines + [""]


def _input_section(entry: CatalogEntry) -> list[str]:
    spec = entry.input_spec
    height, width = spec.image_size
    low, high = spec.value_range
    return [
        "## Input",
        "",
        f"`pixel_values_videos` of shape (B, T, C, H, W) = (B, {spec.num_frames}, 3, {height}, {width}): RGB float in "
        f"[{low:g}, {high:g}], no mean/std normalisation. The pipelines and `fourd-hub` commands decode, resize "
        "and window videos of any length for you.",
        "",
    ]


def _usage_section(entry: CatalogEntry, family: FamilySpec, config: Any, model_id: str) -> list[str]:
    lines = ["## Usage", ""]
    if not entry.has_weights:
        config_class = family.load("config_class").__name__
        code = "\n".join([
            f"from fourd_hub import {config_class}, {entry.architecture}",
            "",
            f'config = {config_class}.from_pretrained("{model_id}")  # same as {config_class}.from_preset("{entry.preset}")',
            f"model = {entry.architecture}(config)  # random weights ({entry.num_parameters:,} parameters) to pretrain",
        ])
        return lines + [family_card(family).config_only_note(entry), "", *code_block("python", code)]
    task = card_task(family, entry.architecture, config)
    spec = entry.input_spec
    code = usage_python(family, task, entry.architecture, model_id, spec.num_frames, spec.image_size, config)
    if is_standalone_head(entry):
        lines += [
            f"`from_pretrained` attaches the head to its base backbone, `{entry.base_model}`. Pixel coordinates "
            "are (x, y) with (0, 0) the top-left corner; queries may start at any frame `t` in the pipeline.",
            "",
        ]
    lines += code_block("python", code)
    cli = cli_line(task, model_id)
    if cli is not None:
        lines += code_block("bash", cli)
    return lines


def provenance_lines(provenance: ConversionProvenance) -> list[str]:
    """The lines of a provenance section reporting what the conversion found and wrote."""
    return [
        f"- Key layout found: {provenance.layout or 'not recorded'}.",
        f"- Written as `{provenance.model_class}`: {provenance.num_parameters:,} parameters, {provenance.dtype}.",
        f"- Converted by fourd_hub {provenance.fourd_hub_version}.",
    ]


_SHA256_LATER = "computed and recorded in the card by `fourd-hub convert` / the automatic conversion"


def _checksum_lines(entry: CatalogEntry, provenance: ConversionProvenance | None) -> list[str]:
    """Whether the original file is pinned by a sha256, and the sha256 of the file that was converted."""
    note = entry.checksum_note
    lines = [f"- {note[0].upper()}{note[1:]}."]
    if not entry.checksum_pinned:
        lines[0] += " `FOURD_HUB_REQUIRE_CHECKSUM=1` refuses such downloads."
    recorded = provenance.original_sha256 if provenance is not None else None
    if recorded and recorded.lower() != (entry.sha256 or "").lower():
        lines.append(f"- sha256 of the file converted: `{recorded}`.")
    elif not recorded and not entry.checksum_pinned:
        lines.append(f"- sha256 of the file converted: {_SHA256_LATER}.")
    return lines


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
    lines.append(f"- Original file: [`{original_file}`]({url})." if url else f"- Original file: `{original_file}`.")
    lines += _checksum_lines(entry, provenance)
    lines.append(
        f"- Converted with `fourd-hub convert {original_file} ./{entry.name} --name {entry.name}`, or automatically "
        f'on the first `from_pretrained("{entry.name}")`: every original key is mapped and every parameter\'s '
        "shape checked."
    )
    if provenance is not None:
        lines += provenance_lines(provenance)
    return lines + [""]


def _license_section(entry: CatalogEntry, family: FamilySpec) -> list[str]:
    weights = (
        f"- Weights: {WEIGHTS_LICENSE}, Google DeepMind (the representations4d checkpoints)."
        if entry.has_weights
        else f"- Weights: none here; the {family.display_name} weights Google DeepMind released are {WEIGHTS_LICENSE}."
    )
    return ["## License", "", weights, f"- Code (fourd_hub): {CODE_LICENSE}.", ""]


def citation_section(card: Any) -> list[str]:
    """The citation section of a card of the family whose card module is ``card``."""
    return ["## Citation", "", *card.citation_lines()]


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
    family = get_family(entry.family)
    card = family_card(family)
    config = entry_config(entry)
    model_id = repo_id or entry.name
    lines = [
        front_matter(catalog_metadata(entry, card, card_task(family, entry.architecture, config), provenance)),
        f"# {entry.name}",
        "",
        entry.description + ".",
        "",
        *_model_section(entry, card, config),
        *_input_section(entry),
        "## Results",
        "",
        *card.results_section(entry, config),
        *_usage_section(entry, family, config, model_id),
        *_provenance_section(entry, provenance),
        *_license_section(entry, family),
        *citation_section(card),
    ]
    return finish(lines)
