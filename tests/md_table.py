"""Test helper: Markdown table shape (the hostile-input tests check that host text cannot add a column)."""

from __future__ import annotations


def md_columns(line: str) -> int:
    """Cell separators in a Markdown table row: ``|`` not escaped by a backslash."""
    n, i = 0, 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        n += line[i] == "|"
        i += 1
    return n
