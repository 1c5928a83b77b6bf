"""Shared helpers for the parsers: line cleanup, labels, URLs, markers, error detection.

Everything here is pure and never raises on any ``str`` input. The damage these helpers undo is
the damage seen in real published copies (tests/fixtures/SOURCES.md): BOM, CRLF (and CR CR LF), trailing spaces, lost
or shifted indentation, Markdown ``\\-`` escapes (azure-sf-requestq-mangled), ``<url>`` wrappers,
author snip markers (``...[snip]...`` htb-overwatch-c, ``(...)`` blog-pid4-abo, ``[...]``
thm-winclr-abon, ``...`` ine-ec2-wmic) and the ``-- More --`` pager line.
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
import unicodedata
from typing import Callable, Iterator, NamedTuple, Optional, TypeVar

T = TypeVar("T")


class Line(NamedTuple):  # a tuple: one small immutable object per line, built fast (5 MB outputs have 100k lines)
    no: int  # 1-based line number in the source text
    raw: str  # tabs expanded, trailing whitespace removed, Markdown "\-" undone
    text: str  # raw.strip()
    indent: int  # leading spaces of raw

    @property
    def blank(self) -> bool:
        return not self.text


_new_line = functools.partial(tuple.__new__, Line)  # Line(*fields) without a Python call per line


def split_lines(text: object) -> list[Line]:
    """Source lines, numbered from 1. Accepts any object; non-str gives []. ``list(iter_lines(text))``,
    made a whole column at a time (no Python step per line)."""
    if not isinstance(text, str) or not text:
        return []
    text = _normalized(text)
    return _lines(text.split("\n"), 1, "\t" in text, "\\-" in text)


_CHUNK = 64 * 1024  # characters of lines made at once by iter_lines


def iter_lines(text: object) -> Iterator[Line]:
    """``split_lines`` a chunk of ~64 K characters at a time: memory stays flat on huge outputs (a 5 MB
    servicestate is 135,000 lines), and each chunk is made a column at a time as ``split_lines`` makes
    them (a Python step per line was ~1.5 us of its ~4.5)."""
    if not isinstance(text, str) or not text:
        return
    text = _normalized(text)
    tabs, escapes = "\t" in text, "\\-" in text
    n, pos, end_all = 1, 0, len(text)
    while pos <= end_all:
        end = text.find("\n", pos + _CHUNK)
        if end < 0:
            end = end_all
        lines = _lines(text[pos:end].split("\n"), n, tabs, escapes)
        pos = end + 1
        n += len(lines)
        yield from lines


def _normalized(text: str) -> str:
    """Without BOMs and NULs, every line break a LF."""
    text = text.replace("\ufeff", "").replace("\x00", "")
    return text.replace("\r\r\n", "\n").replace("\r\n", "\n").replace("\r", "\n")


def _lines(parts: list[str], first: int, tabs: bool, escapes: bool) -> list[Line]:
    """``Line``s of ``parts`` numbered from ``first``, a column at a time."""
    if tabs:
        parts = [p.expandtabs(8) for p in parts]
    raws = list(map(str.rstrip, parts))
    # Markdown escapes a dash as "\-" (azure-sf dash underline); no real netsh/netstat/tasklist
    # value contains a backslash followed by a dash.
    if escapes:
        raws = [r.replace("\\-", "-") for r in raws]
    texts = list(map(str.lstrip, raws))
    indents = map(operator.sub, map(len, raws), map(len, texts))
    return list(map(_new_line, zip(itertools.count(first), raws, texts, indents)))


# --- markers --------------------------------------------------------------------------------------

_MARKER_RE = re.compile(
    r"""^(?:
        \.{2,}\s*[\[(<]?\s*snip(?:ped)?\s*[\])>]?\s*\.{0,}   # ...[snip]...
      | [\[(<]\s*(?:\.{2,}|\u2026|snip(?:ped)?)\s*[\])>]      # (...) [...] [snip] <snip>
      | \.{3,} | \u2026                                      # ... (wmic excerpt)
      | -+\s*more\s*-+.*                                    # -- More --
    )$""",
    re.IGNORECASE | re.VERBOSE,
)


_MARKER_FIRST = frozenset(".[(<\u2026-")


def is_marker(text: str) -> bool:
    """Author truncation markers and pager lines (the line as stripped)."""
    t = text.strip()
    return bool(t) and t[0] in _MARKER_FIRST and bool(_MARKER_RE.match(t))


_RULE_RE = re.compile(r"^[-=\u2500\u2014 ]{3,}$")
_RULE_FIRST = frozenset("-=\u2500\u2014")  # a stripped rule starts with one of these


def is_rule(text: str) -> bool:
    """A dash/equals underline ("-----", "===== ========")."""
    t = text.strip()
    return bool(t) and t[0] in _RULE_FIRST and bool(_RULE_RE.match(t)) and any(c in t for c in "-=\u2500\u2014")


# --- labels ---------------------------------------------------------------------------------------

_LABEL_RE = re.compile(r"^([^:]{1,80}?)\s*:(?:\s+|$)(.*)$")


def strip_accents(s: str) -> str:
    if s.isascii():  # nothing to strip (NFKD leaves ASCII as is): the common case, kept cheap
        return s
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


@functools.lru_cache(maxsize=4096)  # a few dozen distinct labels, seen on every line of big outputs
def norm_label(label: str) -> str:
    """Case-, accent- and spacing-insensitive form of a label."""
    return " ".join(strip_accents(label).casefold().split())


def split_label(text: str) -> Optional[tuple[str, str]]:
    """``"Label   : value"`` → ``(normalized label, value)``; None when the line is not one.

    The colon must be followed by whitespace or end the line, so ``HTTP://x`` and ``C:\\dir`` are
    not labels, while ``SDDL: D:(A;;GX;;;WD)`` is.
    """
    m = _LABEL_RE.match(text.strip())
    if not m:
        return None
    label = m.group(1).strip()
    if not label or "//" in label:
        return None
    return norm_label(label), m.group(2).strip()


# --- URLs -----------------------------------------------------------------------------------------

_URL_RE = re.compile(r"^(?:https?)://\S+$", re.IGNORECASE)
_MD_ESCAPE_RE = re.compile(r"\\([!-/:-@\[-`{-~])")


def unescape_markdown(s: str) -> str:
    """Undo Markdown backslash escapes (``\\_`` ``\\*`` ``\\{`` ...). Only for URLs and SDDL,
    which never contain a backslash; user names and paths keep theirs."""
    return _MD_ESCAPE_RE.sub(r"\1", s)


def clean_url(text: str) -> Optional[str]:
    """A registered/reserved URL as printed, minus ``<>`` wrappers, Markdown escapes and spaces.

    Returns None when the text is not an ``http(s)://`` URL. Case and form are kept
    (``HTTP://127.0.0.1:8000:127.0.0.1/``, ``HTTP://+:80/...``, ``HTTPS://HOST:443/FRVROOT_{..}/``).
    """
    t = text.strip()
    if not t or t[0] not in "hH<>\\":  # cannot become a URL below (the hot path of big outputs)
        return None
    t = unescape_markdown(t)
    while len(t) >= 2 and t[0] == "<" and t[-1] == ">":
        t = t[1:-1].strip()
    t = t.strip("<>").strip()
    return t if _URL_RE.match(t) else None


# --- numbers --------------------------------------------------------------------------------------


def to_int(s: object) -> Optional[int]:
    """Plain decimal integer (as printed by netsh/netstat), else None."""
    if type(s) is str:  # the usual case first
        t = s.strip()
        return int(t) if t.isascii() and t.isdigit() and len(t) < 12 else None
    if isinstance(s, bool):
        return None
    if isinstance(s, int):
        return s
    if isinstance(s, float) and s.is_integer():
        return int(s)
    if isinstance(s, str):
        t = s.strip()
        if t.isascii() and t.isdigit() and len(t) < 12:
            return int(t)
    return None


# --- error detection ------------------------------------------------------------------------------

# Known error sentences. English ones are from the corpus or from netsh/PowerShell's own text;
# the French elevation text is from a third-party fixture (NOTES §7, unverified for netsh http);
# other localized forms are caught by the structural "short prose" rule below.
_ERROR_RE = re.compile(
    r"""requires\ elevation
      | n.cessite\ une\ .l.vation
      | \bthe\ handle\ is\ invalid\b
      | \baccess\ is\ denied\b
      | \bacc.s\ refus.
      | \bzugriff\ verweigert\b
      | \bis\ not\ recognized\ as\ (?:the\ name\ of\ a\ cmdlet|an\ internal\ or\ external\ command)
      | n'est\ pas\ reconnu
      | \bcommandnotfoundexception\b
      | fullyqualifiederrorid
      | \bno\ msft_\w+\ objects\ found\b
      | \bthe\ following\ command\ was\ not\ found\b
      | \bthe\ system\ cannot\ find\ the\b
      | \bthe\ parameter\ is\ incorrect\b
      | \bthe\ rpc\ server\ is\ unavailable\b
      | \bfailed,\ error:\ *\d+
      | ^(?:error|erreur|fehler|errore)\s*:
    """,
    re.IGNORECASE | re.VERBOSE,
)

# Lines that are structure, not content: titles and column headers of the commands we parse.
_HEADER_RE = re.compile(
    r"""^(?:
        snapshot\ of\ http\ service\ state.*
      | url\ reservations\s*:? | url\ prenotati\s*:?
      | ip\ addresses\ present\ in\ the\ ip\ listen\ list\s*:?
      | active\ connections | aktive\ verbindungen | conexiones\ activas | connexions\ actives
      | proto\s.* | image\ name\s.* | localaddress\s.* | processid\s.* | exitcode\s.* | status\s+name\s.*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)

_INFO_RE = re.compile(r"^(?:info|information|informations)\s*:", re.IGNORECASE)
_WORD_RE = re.compile(r"^[^\W\d_][\w'\u2019.,()!-]*$")


def _is_prose(text: str) -> bool:
    """A free-text sentence: several words, mostly letters, ends like a sentence."""
    if clean_url(text) or re.search(r"\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]*\]:\d", text, re.I):
        return False
    words = text.split()
    if len(words) < 3:
        return False
    wordy = sum(1 for w in words if _WORD_RE.match(w))
    return wordy / len(words) >= 0.6 and text.rstrip()[-1:] in (".", "!", ")")


def body_lines(text: object) -> list[str]:
    """Non-blank lines that are neither titles, underlines, column headers nor snip markers."""
    return [
        ln.text[:1000]  # an error message is short; bounds the work on huge lines
        for ln in split_lines(text)
        if ln.text and not is_rule(ln.text) and not is_marker(ln.text) and not _HEADER_RE.match(ln.text)
    ]


def detect_error(text: object) -> Optional[str]:
    """The error message when ``text`` is an error instead of command output, else None (see
    ``_detect_error``). Memoized for short texts: every host prints the same empty listings (no
    certificate bindings, no excluded ranges) and the same error messages."""
    if type(text) is str and len(text) <= 4096:
        return _detect_error_short(text)
    return _detect_error(text)


def _detect_error(text: object) -> Optional[str]:
    """The error message when ``text`` is an error instead of command output, else None.

    Structural heuristic, whatever the language: once titles/underlines/column headers are
    dropped, either a known error sentence comes first (ets2 sample: header + "The handle is
    invalid."; PowerShell records "netsh.exe : ..." / "... : The term 'x' is not recognized ..."),
    or what is left is a few lines of prose (a localized error we have no sample of).
    ``INFO:`` lines (tasklist "no tasks match") are an empty result, not an error.
    """
    body = body_lines(text)
    if not body or _INFO_RE.match(body[0]):
        return None
    for t in body[:4]:
        if _ERROR_RE.search(t):
            return t
    if len(body) <= 6 and _is_prose(body[0]):
        return body[0]
    return None


_detect_error_short = functools.lru_cache(maxsize=256)(_detect_error)


# CACHE_NOTE: the memoized pure functions of the parsers and the analysis (a line's shape, a netstat row,
# a URL, an address) keep a few hosts' worth of entries: what every host of a fleet prints again. Small on
# purpose: the thousands of lines and URLs of one huge host (a 5 MB IIS servicestate) are its own, pass
# through without evicting for long what the fleet shares, and cost what they cost without the cache.


# --- never raise ----------------------------------------------------------------------------------


def never_raise(factory: Callable[[], T]) -> Callable[[Callable[[str], T]], Callable[[object], T]]:
    """Decorator: on any unexpected exception return ``factory()`` with a warning instead.

    Also turns non-str input into "" so callers may pass None.
    """

    def deco(fn: Callable[[str], T]) -> Callable[[object], T]:
        @functools.wraps(fn)
        def wrapper(text: object) -> T:
            if isinstance(text, (bytes, bytearray)):
                text = bytes(text).decode("utf-8", errors="replace")
            if not isinstance(text, str):
                text = ""
            try:
                return fn(text)
            except Exception as exc:  # pragma: no cover - safety net, tests assert it never fires
                res = factory()
                res.warnings.append(f"internal parser error: {type(exc).__name__}: {exc}")  # type: ignore[attr-defined]
                return res

        return wrapper

    return deco


@functools.lru_cache(maxsize=256)  # pure: a few addresses, asked about on every host (CACHE_NOTE)
def is_ip(text: str) -> bool:
    """An IPv4 or IPv6 address, as printed by Windows or in a URL: ``[::1]``, ``fe80::1%4`` (zone id) too.
    The one "is this an IP address" of port80 (parsers, analysis, report and remediation use it)."""
    import ipaddress

    try:
        ipaddress.ip_address(text.strip().strip("[]").split("%", 1)[0])
        return True
    except ValueError:
        return False
