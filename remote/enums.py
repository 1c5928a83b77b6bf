"""``StrEnum``: an enum whose members are their string values everywhere (JSON, CSV, SQLite, f-strings,
dict keys and ``in`` tests against plain strings), for Python 3.10 too (``enum.StrEnum`` is 3.11+)."""

from __future__ import annotations

from enum import Enum


class StrEnum(str, Enum):
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    __hash__ = str.__hash__  # Enum hashes by name: "ok" in {Status.OK} would be False
