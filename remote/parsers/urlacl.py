"""``netsh http show urlacl`` → :class:`UrlAclResult`.

Entries are found by their labels (looked up in a small table, English and Italian), never by
indentation. Shapes handled (tests/fixtures/urlacl):

* full list with header and several ``User:`` blocks per entry, one ``SDDL:`` per entry
  (gh-aspnetcore-19969-win10-1909-excerpt, wsman-5985-winrm-wecsvc-two-users), single-entry
  excerpts (blog-pid4-116B50EB-excerpt, darksh3llru-temporary-listen-addresses);
* console-wrapped SDDL whose continuation starts at column 0 (gh-winacme-1418-server-console-wrapped-excerpt);
* Italian labels ``URL prenotati`` / ``Utente:`` / ``In ascolto:`` / ``Delega:`` (gh-onlyt-154-italian-excerpt);
* flattened indentation (msdocs-iis-wmsvc-8172-flattened), 1-space indentation
  (bookofdaniel-ssrs-8082-excerpt), trailing spaces after URL and SDDL (Server 2008 R2 paste);
* the error body instead of entries (gh-ets2telemetry-107-error-handle-invalid → ``error``).

Unknown (localized) labels still work by value shape: a URL starts an entry, a ``DOMAIN\\user``
value is a user, Yes/No values fill Listen then Delegate, ``D:(...)`` is the SDDL.
"""

from __future__ import annotations

import re
from typing import Optional

from . import services
from .records import Reservation, UrlAclResult, UrlAclUser
from .common import (
    clean_url,
    detect_error,
    is_marker,
    is_rule,
    never_raise,
    split_label,
    split_lines,
    unescape_markdown,
)

_LABELS = {
    "reserved url": "url",
    "url prenotati": "url",  # Italian (gh-onlyt-154)
    "reservierte url": "url",  # German, third-party fixture only (unverified)
    "user": "user",
    "utente": "user",
    "listen": "listen",
    "in ascolto": "listen",
    "delegate": "delegate",
    "delega": "delegate",
    "sddl": "sddl",
}
# Values stay "Yes"/"No" on Italian Windows (gh-onlyt-154); the others are unverified guesses.
_BOOL = {"yes": True, "no": False, "true": True, "false": False,
         "si": True, "sì": True, "ja": True, "nein": False, "oui": True, "non": False}
_SDDL_RE = re.compile(r"^[ODGS]:\S*$")
_SDDL_FRAGMENT_RE = re.compile(r"^[A-Za-z0-9;:()\-_{}*.,]+$")


# --- fast path: the listing exactly as English netsh prints it -----------------------------------------
#
# Every entry is ``Reserved URL : <url>``, one or more ``User:`` / ``Listen:`` / ``Delegate:`` triples and
# one ``SDDL:`` line, space-indented; between entries only blank lines, the title and its dash rule. One
# regex match per entry (instead of several Python steps per line). Anything else anywhere (another
# language, a tab, a wrapped SDDL, an entry without users, a Markdown escape, a snip marker) and the
# generic parser below reads the text; the records are the same (tests/test_parsers_fast_paths.py).

_ENTRY = re.compile(
    r"^ *Reserved URL *: +(?P<url>[Hh][Tt][Tt][Pp][Ss]?://[^\s<>\\]+) *\n"
    r"(?P<users>(?: *User: +\S(?:[^\n]*\S)? *\n *Listen: +(?:Yes|No) *\n *Delegate: +(?:Yes|No) *\n)+)"
    r" *SDDL: +(?P<sddl>[^\s\\]+) *(?:\n|\Z)",
    re.MULTILINE,
)
_USER = re.compile(r" *User: +(\S(?:[^\n]*\S)?) *\n *Listen: +(Yes|No) *\n *Delegate: +(Yes|No) *\n")
_FILLER = re.compile(r"(?: *(?:(?:URL Reservations:|-{3,}) *)?\n)* *(?:(?:URL Reservations:|-{3,}) *)?")


def _parse_fast(text: str) -> Optional[UrlAclResult]:
    if "\t" in text or "\\-" in text:
        return None
    text = text.replace("\ufeff", "").replace("\x00", "")
    text = text.replace("\r\r\n", "\n").replace("\r\n", "\n").replace("\r", "\n")
    res = UrlAclResult()
    end, at, line = 0, 0, 1  # end of the last entry; start of the last entry and its line number
    count, filler = text.count, _FILLER.fullmatch
    for m in _ENTRY.finditer(text):
        start = m.start()
        if filler(text, end, start) is None:
            return None
        line += count("\n", at, start)
        at, end = start, m.end()
        users = [UrlAclUser(u, listen == "Yes", delegate == "Yes") for u, listen, delegate in _USER.findall(m["users"])]
        res.reservations.append(Reservation(m["url"], users, m["sddl"], line))
    if not res.reservations or filler(text, end) is None:
        return None
    return res


@never_raise(UrlAclResult)
def parse_urlacl(text: str) -> UrlAclResult:
    """Parse ``netsh http show urlacl [url=...]``; never raises."""
    if services.FAST_PATHS and (fast := _parse_fast(text)) is not None:
        return fast
    res = UrlAclResult()
    cur: Optional[Reservation] = None
    sddl_open = False  # the last line was SDDL (or its continuation): wrapped lines may follow
    for ln in split_lines(text):
        t = ln.text
        if not t or is_rule(t) or is_marker(t):
            continue
        lv = split_label(t)
        if lv is None:
            if cur is not None and sddl_open and _SDDL_FRAGMENT_RE.match(t):
                cur.sddl = (cur.sddl or "") + unescape_markdown(t)  # console hard-wrap (win-acme #1418)
                continue
            url = clean_url(t)
            if url:
                cur = Reservation(url=url, line=ln.no)
                res.reservations.append(cur)
                sddl_open = False
                continue
            if res.reservations or cur is not None:
                res.warnings.append(f"line {ln.no}: unrecognized line {t[:60]!r}")
            continue
        sddl_open = False
        label, value = lv
        key = _LABELS.get(label)
        if key is None:
            key = _guess_key(value, cur)
        if key == "url":
            url = clean_url(value) or value
            if not url:
                continue
            cur = Reservation(url=url, line=ln.no)
            res.reservations.append(cur)
            continue
        if key is None:
            if value and cur is not None:
                res.warnings.append(f"line {ln.no}: unknown label {t[:60]!r}")
            continue  # titles ("URL Reservations:") and unknown labels
        if cur is None:
            res.warnings.append(f"line {ln.no}: {t[:60]!r} before any reserved URL")
            continue
        if key == "user":
            cur.users.append(UrlAclUser(user=value))
        elif key in ("listen", "delegate"):
            if not cur.users:
                cur.users.append(UrlAclUser(user=""))
                res.warnings.append(f"line {ln.no}: {key} without a user")
            flag = _BOOL.get(value.casefold())
            if flag is None:
                res.warnings.append(f"line {ln.no}: {key} value {value!r} not Yes/No")
            setattr(cur.users[-1], key, flag)
        elif key == "sddl":
            cur.sddl = unescape_markdown(value) or None
            sddl_open = True
    if not res.reservations:
        res.error = detect_error(text)
    return res


def _guess_key(value: str, cur: Optional[Reservation]) -> Optional[str]:
    """Label unknown (a language we have no sample of): decide by the shape of the value."""
    if clean_url(value):
        return "url"
    if cur is None:
        return None
    if _SDDL_RE.match(value) and "(" in value:
        return "sddl"
    if value.casefold() in _BOOL and cur.users:
        last = cur.users[-1]
        return "listen" if last.listen is None else "delegate" if last.delegate is None else None
    if "\\" in value:
        return "user"
    return None
