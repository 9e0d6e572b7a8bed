"""Checking configuration values against their fields' declared types (torch-free).

Configurations arrive as JSON (``config.json``, a readout dict): a string where a layer count
belongs, ``null`` for a width or a number for a list must be refused by name before any code does
arithmetic with it, instead of surfacing as a ``TypeError`` deep inside a model's constructor.
The declared annotations (``int``, ``float``, ``list[int] | tuple[int, ...]``, ``dict | None``, ...)
are the specification; types this module does not know are not checked.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["check_field_types", "conforms"]


def _alternatives(annotation: str) -> list[str]:
    """The top-level ``|`` alternatives of an annotation string (brackets respected)."""
    parts, depth, current = [], 0, ""
    for char in annotation:
        depth += char == "["
        depth -= char == "]"
        if char == "|" and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return parts + [current.strip()]


def conforms(annotation: str, value: Any) -> bool:
    """Whether a JSON ``value`` is of the simple type an annotation string names (unknown types pass)."""
    for alternative in _alternatives(annotation):
        base, _, args = alternative.partition("[")
        args = args.rstrip("]")
        if alternative == "None":
            ok = value is None
        elif base == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif base == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        elif base == "str":
            ok = isinstance(value, str)
        elif base == "bool":
            ok = isinstance(value, bool)
        elif base == "dict":
            ok = isinstance(value, dict)
        elif base in ("list", "tuple", "Sequence"):
            element = args.split(",")[0].strip()
            ok = isinstance(value, (list, tuple)) and (element not in ("int", "float", "str") or all(conforms(element, v) for v in value))
        elif base == "Literal":
            ok = repr(value) in [a.strip() for a in args.split(",")] or f'"{value}"' in args
        else:
            return True  # a type we do not check here (torch.dtype, ClassVar, ...)
        if ok:
            return True
    return False


def check_field_types(cls: type, values: dict[str, Any], hint: str = "") -> None:
    """Refuse any value in ``values`` whose type is not its field's annotation in ``cls`` (or a base).

    Args:
        cls: a dataclass-style class whose annotations are strings (``from __future__ import annotations``).
        values: field name -> value (unknown names are ignored: the class decides about those).
        hint: what to do about it, appended to the message.

    Raises:
        ValueError: naming the class, the field, the value and the type it must have.
    """
    for owner in reversed(cls.__mro__):
        for name, annotation in owner.__dict__.get("__annotations__", {}).items():
            if name not in values or not isinstance(annotation, str) or annotation.startswith("ClassVar"):
                continue
            if not conforms(annotation, values[name]):
                raise ValueError(f"{cls.__name__}.{name} must be {annotation}, got {values[name]!r}" + (f"; {hint}" if hint else ""))
