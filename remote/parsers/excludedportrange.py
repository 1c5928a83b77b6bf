"""``netsh int ipv4|ipv6 show excludedportrange protocol=tcp`` → :class:`ExcludedPortRangeResult`.

Ports in an excluded range cannot be bound by any process, although nothing listens on them
(Hyper-V / WinNAT / WSL / Docker reserve blocks of 100; an administrator adds single ports with
``netsh int ipv4 add excludedportrange``, shown with ``*``).

Shapes handled (tests/fixtures/excludedportrange),
in the seven languages of the corpus: English, German (``Portausschlussbereiche für das Protokoll
"tcp"`` / ``Startport      Endport``), Spanish (``Puerto de inicio    Puerto final`` with a dash
line of 10 + 10 spaces + 8), French (13 + 11 dashes), Korean, Chinese (simplified and traditional,
10 + 10 dashes in zh-TW), Portuguese and Russian (both from fixtures said to be real, footer with an
em dash). Data rows are the same in every language: two right-aligned numbers and an optional
``*`` — so rows are recognized by shape, never by the labels. The protocol comes from the title
(every title names ``tcp``/``udp``); when the title was not captured it stays ``None``.

Damage seen: titles or footers cut, blank lines removed, every line indented (go test log,
Markdown list), trailing spaces (padded to 26/28 columns) or none, a space-only line, several
listings in one text (before/after, tcp then udp, a ``dynamicport`` block in between), an empty
table (zh-cn-clash-verge-1688-empty-table).
"""

from __future__ import annotations

import re
from typing import Optional

from .common import detect_error, is_marker, is_rule, never_raise, split_lines
from .records import ExcludedPortRangeResult, ExcludedRange

_ROW_RE = re.compile(r"^`?\s*(\d{1,6})\s+(\d{1,6})(?:\s+(\*))?\s*`?$")
_PROTO_RE = re.compile(r"(?<![A-Za-z])(tcp|udp)(?![A-Za-z])", re.IGNORECASE)
_LABEL_VALUE_RE = re.compile(r"^[^:]+\s:\s*\d+$")  # "Start Port      : 49152" (dynamicport block)
_FOOTER_RE = re.compile(r"^\*\s*[-\u2014\u2013]")  # "* - Administered port exclusions." / "* — ..."


@never_raise(ExcludedPortRangeResult)
def parse_excludedportrange(text: str) -> ExcludedPortRangeResult:
    """Parse ``netsh int ipv4|ipv6 show excludedportrange``; never raises."""
    res = ExcludedPortRangeResult()
    protocol: Optional[str] = None
    table = -1
    rows = False  # the current table has rows
    for ln in split_lines(text):
        t = ln.text
        if not t or is_marker(t) or _FOOTER_RE.match(t) or _LABEL_VALUE_RE.match(t):
            continue
        m = _ROW_RE.match(t)
        if m:
            if table < 0:
                table = 0
            start, end = int(m.group(1)), int(m.group(2))
            if not (0 < start <= end <= 65535):
                res.warnings.append(f"line {ln.no}: not a port range {t[:40]!r}")
                continue
            res.ranges.append(ExcludedRange(start=start, end=end, administered=bool(m.group(3)),
                                            protocol=protocol, table=table, line=ln.no))
            rows = True
            continue
        p = _PROTO_RE.search(t)
        if p and not is_rule(t) and ":" not in t and "=" not in t and not t.startswith((">", "PS ")):
            # a title names the protocol and starts a listing ("Protocol tcp Port Exclusion Ranges")
            protocol = p.group(1).lower()
            if rows or table < 0:
                table += 1
            rows = False
        elif is_rule(t) and rows:
            # a dash rule after rows, without a title: the next listing (its title was not captured)
            table += 1
            rows = False
        # otherwise: column headers, rules, prompts, "Ok.", tool or test-log lines (words, not data)
    res.tables = table + 1
    if not res.ranges:
        res.error = detect_error(text)
    return res
