"""PowerShell ``Format-Table`` text (what ``| Out-String`` gives for a table view) → rows of cells.

A table is a header line, a rule line of dash runs (``----             --   -----``), then rows.
Column *starts* are the starts of the dash runs; a cell runs to the next column's start (the last
to the end of the line). Views with ``<Wrap/>`` continue a long cell on the next lines, in the
same column, with the other cells blank (Get-Website wraps Name at 16 and ID at 4 columns:
tests/fixtures/get-website/en-psforsysadmins-book-new-website-wrapped-name-id.txt; a site
with several bindings prints one per line in the Bindings column). Callers decide which lines
continue a row; this module only cuts lines into cells. Pure; never raises on ``str`` input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from .common import Line, norm_label

_RUN_RE = re.compile(r"-+")


@dataclass
class Columns:
    names: list[str]  # normalized header words ("name", "id", "physical path", ...)
    starts: list[int]
    header_line: int

    def cells(self, raw: str) -> list[str]:
        out = []
        for i, s in enumerate(self.starts):
            end = self.starts[i + 1] if i + 1 < len(self.starts) else None
            # a cell may begin one column early when the previous one is full: cut at the start
            out.append(raw[s:end].strip() if end is not None else raw[s:].strip())
        return out

    def index(self, *names: str) -> Optional[int]:
        for n in names:
            if n in self.names:
                return self.names.index(n)
        return None


def header_at(lines: list[Line], k: int) -> Optional[Columns]:
    """Columns when ``lines[k]`` is a rule of dash runs under a header line, else None."""
    rule = lines[k]
    if not rule.text or set(rule.text) - {"-", " "} or k == 0:
        return None
    head = lines[k - 1]
    if not head.text:
        return None
    runs = [(m.start(), m.end()) for m in _RUN_RE.finditer(rule.raw)]
    if len(runs) < 2:
        return None
    names = []
    for i, (s, _e) in enumerate(runs):
        end = runs[i + 1][0] if i + 1 < len(runs) else None
        names.append(norm_label(head.raw[s:end].strip() if end is not None else head.raw[s:].strip()))
    return Columns(names=names, starts=[s for s, _ in runs], header_line=head.no)
