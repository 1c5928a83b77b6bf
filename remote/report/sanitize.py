"""The one sanitiser for everything port80 shows a person: host text never drives a terminal.

Hosts control most of the text in a report (service and display names, URLs, process paths, the
host name in host.json, the OS caption, error messages). A compromised or broken host can put
terminal control sequences in any of them (``ESC ] 0 ; title BEL``, clear-screen, colours, CR,
backspaces that redraw a command the operator is about to confirm). Every human-readable output —
table, Markdown, the fix plan and its outcome, error and warning lines, progress, log lines — passes
its host-derived text through here:

- ``shown(text)``: control characters (C0, DEL, C1), bidirectional overrides/isolates, line and
  paragraph separators and lone surrogates are shown escaped (``\\x1b``, ``\\u202e``,
  ``\\ud800``), never interpreted. Printable text, including non-ASCII letters, is unchanged.
- ``cut(text, width)``: a shown text cut to ``width`` with an ellipsis, never inside an escape.
- ``md(text)``: a Markdown table cell: shown, then ``\\`` ``|`` and Markdown punctuation
  backslash-escaped, ``<`` ``>`` ``&`` as entities (no HTML, no links, no column shift).
- ``csv_cell(text)``: a CSV cell: shown (no raw control character) and formula-safe (OWASP).
- ``json_text(doc)``: JSON text with the C1 controls and DEL that ``json.dumps(ensure_ascii=False)``
  leaves raw written as ``\\u`` escapes (still the same JSON value).
- ``valid_unicode(text)``: text that can be encoded: lone surrogates (from JSON ``\\ud800`` escapes
  or CLIXML ``_xD800_``) replaced with U+FFFD, with the count, for files and machine formats.

Pure functions; no IO.
"""

from __future__ import annotations

import re
from typing import Any

from remote.evidence.textio import valid_unicode, valid_unicode_value  # noqa: F401 - part of this API

# C0 controls but for none, DEL, C1 controls, bidi embeddings/overrides/isolates, LS/PS, BOM-less
# invisible marks that reorder text, and lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_ESCAPE = re.compile(r"\\x[0-9a-f]{2}|\\u[0-9a-f]{4}")
_MD_PUNCT = re.compile(r"([\\`*_{}\[\]()#+!|~])")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_JSON_RAW = re.compile("[\x7f-\x9f]")


def _escape(m: "re.Match[str]") -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def shown(text: Any) -> str:
    """``text`` as it may reach a terminal: every unsafe character escaped (``\\x1b``)."""
    s = "" if text is None else str(text)
    if s.isascii() and s.isprintable():
        return s
    return _UNSAFE.sub(_escape, s)


_UNSAFE_IN_TEXT = re.compile("\r(?!\n)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                             "\u2066-\u2069\ud800-\udfff]")


def terminal_text(text: str) -> str:
    """A whole rendered text (many lines) made safe to print: as ``shown`` but line ends (LF, CRLF)
    and tabs kept. The last line of defence where a renderer outside this module prints host text."""
    return _UNSAFE_IN_TEXT.sub(_escape, text)


def cut(text: Any, width: int) -> str:
    """``shown(text)`` at most ``width`` characters; a cut one ends with ``…`` and never splits an
    escape (a half ``\\x1`` would read as something else)."""
    s = shown(text)
    if len(s) <= width:
        return s
    p = max(0, width - 1)
    for m in _ESCAPE.finditer(s, max(0, p - 5), p + 5):
        if m.start() < p < m.end():
            p = m.start()
            break
    return s[:p] + "…"


def md(text: Any) -> str:
    """A GitHub Markdown table cell: no control character, no column shift, no HTML, no link."""
    s = _MD_PUNCT.sub(r"\\\1", shown(text))
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def csv_cell(value: Any) -> str:
    """A CSV cell with no raw control character that a spreadsheet will not run as a formula."""
    text = shown(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def json_text(doc: str) -> str:
    """JSON text from ``json.dumps(..., ensure_ascii=False)`` with DEL and the C1 controls escaped."""
    if doc.isascii():
        return doc if "\x7f" not in doc else doc.replace("\x7f", "\\u007f")
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", doc)


__all__ = ["shown", "terminal_text", "cut", "md", "csv_cell", "json_text", "valid_unicode", "valid_unicode_value"]
