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


@never_raise(UrlAclResult)
def parse_urlacl(text: str) -> UrlAclResult:
    """Parse ``netsh http show urlacl [url=...]``; never raises."""
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
