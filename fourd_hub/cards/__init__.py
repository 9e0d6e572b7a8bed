"""Model cards (the ``README.md`` of a Hub repo), rendered from the catalog, the task table and each family's card data.

Every catalog entry gets a card from :func:`render_model_card`: YAML metadata the Hub reads
(library, license, tags, pipeline tag, base model, and a ``fourd_hub:`` mapping with the catalog
facts and the conversion provenance), what the model is, its input, the paper's results where the
paper has them, a usage snippet that runs, provenance, licenses and citations. ``model_cards/``
holds the rendered cards (:func:`write_model_cards`, CLI ``fourd-hub model-cards``) and a test
keeps them equal to the catalog. Models that are not a catalog entry as released (fine-tuned,
retrained, converted with a custom config, standalone readout heads) get
:func:`render_custom_model_card`. Rendering is deterministic: no dates, and a version only when
the provenance records one.

Modules: :mod:`~fourd_hub.cards.metadata` (front matter, :func:`card_metadata`,
:func:`read_provenance`), :mod:`~fourd_hub.cards.snippets` (usage scripts and commands),
:mod:`~fourd_hub.cards.render` (catalog cards), :mod:`~fourd_hub.cards.custom` (other models'
cards), :mod:`~fourd_hub.cards.write` (card files), :mod:`~fourd_hub.cards.family` (what the
card code asks a family) and :mod:`~fourd_hub.cards.markdown`.

The card code never names a family. The task a model class runs comes from the registry's
task-model table (:attr:`fourd_hub.registry.FamilySpec.task_models`), its tags, pipeline and
command from the task table (:data:`fourd_hub.tasks.TASKS`), the seeded generator of a recurrent
family's snippet from :attr:`~fourd_hub.registry.FamilySpec.recurrent`, a catalog entry's config
from the family's ``config_class`` and everything else from the family's card module
(:attr:`~fourd_hub.registry.FamilySpec.card`, loaded with ``spec.load("card")``), which defines:

- ``PAPER``: the family's :class:`~fourd_hub.cards.family.Paper`, its BibTeX entry (the cards
  print its title, link its arXiv id and tag every card of the family ``arxiv:<id>``).
- ``family_tag`` (``str``): the family's Hub tag (``"4ds"``).
- ``feature_print`` (``str``): the ``print`` line of a usage snippet showing what the
  video-feature-extraction pipeline returns (its layout differs per family).
- ``head_image_size`` (``(height, width)``): the example clip of a standalone readout head's
  usage (the released backbones' clip size).
- ``model_section(entry, config) -> list[str]``: the model section's lines for a catalog entry
  and its config (family, architecture, parameters, size); the heading and the base-model line
  are added around them.
- ``results_section(entry, config) -> list[str]``: the results section's lines (after its
  heading): the paper's numbers for the entry, or why there are none.
- ``config_only_note(entry) -> str``: the sentence introducing the usage of an entry without
  released weights (its config, built with random weights).
- ``citation_lines() -> list[str]``: the citation section's lines (after its heading): BibTeX blocks.
- ``custom_summary(config) -> list[str]``: the lines summarising a config on a custom card.
- ``base_model_prints(config, num_frames, height, width) -> list[str]``: the ``print`` lines of
  a usage snippet reading the base model's outputs, with their shapes on the example clip.
- ``usage_task(task, config) -> str``: the task whose pipeline and ``fourd-hub`` command a usage
  snippet of a ``task`` model runs (usually ``task``; a MooG backbone with a pixel decoder is
  shown predicting frames).

A card module may define more (the 4DS one holds the paper's Table 1 and
``PAPER_RESULTS``, the 4DS rows of its Tables 2 and 3: ``fourd_hub.models.fourds.card_fourds``).
"""

from ..provenance import ConversionProvenance
from .custom import render_custom_model_card
from .metadata import card_metadata, read_provenance
from .render import render_model_card
from .write import card_file_name, write_conversion_card, write_model_cards

__all__ = [
    "ConversionProvenance",
    "card_file_name",
    "card_metadata",
    "read_provenance",
    "render_custom_model_card",
    "render_model_card",
    "write_conversion_card",
    "write_model_cards",
]

