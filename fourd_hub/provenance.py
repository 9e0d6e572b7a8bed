"""Where converted weights came from: the record a conversion returns and a model card carries (torch-free)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["ConversionProvenance"]


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
