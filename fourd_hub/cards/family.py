"""What generic card code asks a family: its card module, its config of a catalog entry, the task of an architecture.

A family's card module (named by :attr:`fourd_hub.registry.FamilySpec.card`) implements the
interface documented in :mod:`fourd_hub.cards`; :class:`Paper` is the record of its paper. The
task a model class runs comes from the registry's task-model table, and what a card says about
that task (its Hub tags, pipeline and ``fourd-hub`` command) from :data:`fourd_hub.tasks.TASKS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..catalog import CatalogEntry
from ..registry import FamilySpec, get_family
from ..tasks import TaskSpec, get_task
from .markdown import code_block

__all__ = ["CardTask", "Paper", "architecture_task", "card_task", "entry_config", "family_card", "is_standalone_head"]


@dataclass(frozen=True)
class Paper:
    """The paper a family's cards cite and link, as its BibTeX entry.

    Attributes:
        bibtex: the BibTeX entry as cited, one field a line (``  title = {...},``); its ``title``
            and arXiv ``eprint`` are what the cards print and link.
    """

    bibtex: str

    def field(self, name: str) -> str:
        """The value of the BibTeX field ``name`` (without its braces).

        Raises:
            KeyError: the entry has no such field.
        """
        match = re.search(rf"^\s*{re.escape(name)} = \{{(.*)\}},?$", self.bibtex, flags=re.MULTILINE)
        if match is None:
            raise KeyError(f"the BibTeX entry has no {name!r} field")
        return match.group(1)

    @property
    def title(self) -> str:
        """The title as printed."""
        return self.field("title")

    @property
    def arxiv(self) -> str:
        """The arXiv identifier (``"2412.15212"``)."""
        return self.field("eprint")

    @property
    def link(self) -> str:
        """A Markdown link to the paper's arXiv page, ``[arXiv:<id>](https://arxiv.org/abs/<id>)``."""
        return f"[arXiv:{self.arxiv}](https://arxiv.org/abs/{self.arxiv})"

    @property
    def tag(self) -> str:
        """The Hub tag linking a model to the paper, ``arxiv:<id>``."""
        return f"arxiv:{self.arxiv}"

    def citation(self) -> list[str]:
        """The BibTeX entry as a fenced ``bibtex`` block."""
        return code_block("bibtex", self.bibtex)


@dataclass(frozen=True)
class CardTask:
    """The task of a card's model, and the task its usage snippet's pipeline and command run.

    Attributes:
        task: the task the architecture runs (the registry's task-model table): the card's tags.
        shown: the task the usage snippet demonstrates with a pipeline and a ``fourd-hub``
            command (usually ``task``; a family may show another one, see ``usage_task``).
    """

    task: TaskSpec
    shown: TaskSpec

    @property
    def tag(self) -> str:
        """The card's task tag."""
        return self.task.hub_tag

    @property
    def pipeline_tag(self) -> str | None:
        """The Hub's ``pipeline_tag`` (``None``: the Hub has none that fits)."""
        return self.task.pipeline_tag

    @property
    def pipeline(self) -> str | None:
        """The ``fourd_hub.pipeline`` task of the usage snippet (``None``: no pipeline)."""
        return self.shown.name if self.shown.has_pipeline else None

    @property
    def cli(self) -> str | None:
        """The ``fourd-hub`` command of the usage snippet (``None``: no command)."""
        return self.shown.cli


def family_card(spec: FamilySpec) -> ModuleType:
    """The card module of a family (``spec.card``)."""
    return spec.load("card")


def architecture_task(spec: FamilySpec, architecture: str) -> str:
    """The canonical task that the family's class called ``architecture`` runs.

    Raises:
        ValueError: the class is none of the family's task models (e.g. its pretraining model).
    """
    task = next((task for task, path in spec.task_models.items() if path.endswith("." + architecture)), None)
    if task is None:
        known = ", ".join(path.rpartition(".")[2] for path in spec.task_models.values())
        raise ValueError(f"no model card support for architecture {architecture!r}; {spec.display_name} task models: {known}")
    return task


def card_task(spec: FamilySpec, architecture: str, config: Any) -> CardTask:
    """What the card of an ``architecture`` model with ``config`` says about its task.

    Raises:
        ValueError: ``architecture`` is none of the family's task models.
    """
    task = architecture_task(spec, architecture)
    return CardTask(get_task(task), get_task(family_card(spec).usage_task(task, config)))


def entry_config(entry: CatalogEntry) -> Any:
    """The configuration of a catalog entry: its family's preset with the entry's overrides."""
    config_class = get_family(entry.family).load("config_class")
    return config_class.from_preset(entry.preset, **entry.config_overrides)


def is_standalone_head(entry: CatalogEntry) -> bool:
    """Whether a catalog entry is a readout head released in a file of its own (its base model is loaded with it)."""
    spec = get_family(entry.family)
    return architecture_task(spec, entry.architecture) in spec.standalone_head_tasks
