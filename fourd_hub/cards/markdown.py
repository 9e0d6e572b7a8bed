"""Markdown pieces every card is made of: fenced code blocks, tables, the final text."""

from __future__ import annotations

__all__ = ["code_block", "finish", "table_header", "table_row"]


def code_block(language: str, code: str) -> list[str]:
    """The lines of a fenced code block of ``language`` holding ``code``, then a blank line."""
    return [f"```{language}", code, "```", ""]


def table_row(cells: list[str]) -> str:
    """One row of a Markdown table."""
    return "| " + " | ".join(cells) + " |"


def table_header(columns: list[str]) -> list[str]:
    """A Markdown table's header row and its separator row."""
    return [table_row(columns), "|" + "---|" * len(columns)]


def finish(lines: list[str]) -> str:
    """The card's text: its lines joined, ending in exactly one newline."""
    return "\n".join(lines).rstrip("\n") + "\n"
